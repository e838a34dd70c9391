//! The broker's side of the controller: register at start, heartbeat while running, ask to be
//! fenced on shutdown (Kafka's controlled shutdown), as KRaft brokers do.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::commands::{Command, Reply};
use super::Controller;
use crate::metadata::brokers::Registration;
use crate::metadata::MetadataError;

/// How long a stopping broker waits for the controller to fence it before going anyway.
const SHUTDOWN_FENCE_TIMEOUT: Duration = Duration::from_secs(3);
/// Between heartbeats while waiting to be unfenced.
const UNFENCE_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub(crate) struct BrokerLifecycle {
    controller: Arc<Controller>,
    registration: Registration,
    /// This node's controller-listener address when it follows the log as a learner.
    learner: Option<String>,
}

impl BrokerLifecycle {
    pub(crate) fn new(controller: Arc<Controller>, registration: Registration, learner: Option<String>) -> Self {
        BrokerLifecycle {
            controller,
            registration,
            learner,
        }
    }

    /// Registers and waits until this node's image includes the registration, retrying for as
    /// long as there is no quorum (a cluster whose other nodes are still starting). Returns
    /// early only on shutdown.
    pub(crate) async fn register_and_catch_up(&self, shutdown: &CancellationToken) -> Result<(), MetadataError> {
        self.retrying(shutdown, "registration", || self.register()).await
    }

    /// Heartbeats until the controller unfences this broker; from then on it may lead.
    pub(crate) async fn unfence(&self, shutdown: &CancellationToken) -> Result<(), MetadataError> {
        self.retrying(shutdown, "unfencing", || self.until_unfenced()).await?;
        info!(
            broker = self.registration.broker_id,
            "registered with the controller and unfenced"
        );
        Ok(())
    }

    async fn retrying<F, Fut>(&self, shutdown: &CancellationToken, what: &str, step: F) -> Result<(), MetadataError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), MetadataError>>,
    {
        let mut attempt = 0;
        loop {
            let result = tokio::select! {
                _ = shutdown.cancelled() => return Err(MetadataError::ControllerUnavailable("shutting down".into())),
                r = step() => r,
            };
            match result {
                Ok(()) => return Ok(()),
                Err(e) => {
                    attempt += 1;
                    warn!(attempt, error = %e, "{what}: waiting for the controller quorum");
                }
            }
        }
    }

    async fn register(&self) -> Result<(), MetadataError> {
        let command = Command::Register {
            registration: self.registration.clone(),
            learner: self.learner.clone(),
        };
        match self.controller.submit(command).await? {
            Reply::Committed { index } => self.controller.caught_up(index).await,
            other => Err(MetadataError::UnexpectedReply(format!(
                "registration answered with {other:?}"
            ))),
        }
    }

    /// Heartbeats until the controller unfences this broker and its image shows that.
    async fn until_unfenced(&self) -> Result<(), MetadataError> {
        loop {
            if let Reply::Heartbeat {
                registered,
                fenced,
                index,
            } = self.controller.submit(self.heartbeat(false)).await?
            {
                if !registered {
                    self.register().await?;
                } else if !fenced {
                    return self.controller.caught_up(index).await;
                }
            }
            tokio::time::sleep(UNFENCE_POLL).await;
        }
    }

    fn heartbeat(&self, want_shutdown: bool) -> Command {
        Command::Heartbeat {
            broker_id: self.registration.broker_id,
            incarnation_id: self.registration.incarnation_id,
            want_shutdown,
        }
    }

    /// Heartbeats every `broker.heartbeat.interval.ms` until shutdown. A controller that lost
    /// the registration (or fenced this broker after missed heartbeats) gets it again.
    pub(crate) async fn heartbeats(self, interval: Duration, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            let beat = async {
                match self.controller.submit(self.heartbeat(false)).await? {
                    Reply::Heartbeat { registered: false, .. } => {
                        warn!("the controller does not know this broker: registering again");
                        self.register().await?;
                        self.until_unfenced().await
                    }
                    Reply::Heartbeat { fenced: true, .. } => self.until_unfenced().await,
                    _ => Ok(()),
                }
            };
            let result = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = beat => r,
            };
            if let Err(e) = result {
                warn!(error = %e, "heartbeat to the controller failed");
            }
        }
    }

    /// Asks the controller to fence this broker now, so its partitions lose their leader at
    /// once instead of after the session timeout; gives up quietly after a few seconds.
    pub(crate) async fn controlled_shutdown(&self) {
        let fenced = tokio::time::timeout(SHUTDOWN_FENCE_TIMEOUT, self.controller.submit(self.heartbeat(true))).await;
        match fenced {
            Ok(Ok(_)) => info!("fenced by the controller for shutdown"),
            Ok(Err(e)) => warn!(error = %e, "controlled shutdown: the controller did not fence this broker"),
            Err(_) => warn!("controlled shutdown: no answer from the controller in time"),
        }
    }
}
