//! Accepting connections, with `max.connections` enforced at accept.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::connection::{self, RequestMemory};
use crate::broker::Broker;
use crate::config::Listener;
use crate::security::sasl::SaslConfig;
use crate::security::ssl_principal::SslPrincipalMapper;
use crate::security::SecurityProtocol;

/// A bound listener and what its connections go through before their first request: TLS
/// on SSL and SASL_SSL listeners, SASL authentication on SASL_PLAINTEXT and SASL_SSL ones.
pub(crate) struct SecuredListener {
    pub(crate) protocol: SecurityProtocol,
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) sasl: Option<Arc<SaslConfig>>,
    /// `ssl.principal.mapping.rules`, on TLS listeners: a client certificate's principal.
    pub(crate) ssl_principal: Option<Arc<SslPrincipalMapper>>,
    /// This node's advertised endpoint on this listener.
    pub(crate) endpoint: Arc<Listener>,
}

impl std::fmt::Debug for SecuredListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecuredListener")
            .field("protocol", &self.protocol)
            .field("endpoint", &self.endpoint)
            .field("sasl", &self.sasl)
            .finish_non_exhaustive()
    }
}

/// Accepts connections until `shutdown`; each runs as its own task on `tracker`.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    secured: Arc<SecuredListener>,
    broker: Arc<Broker>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let max = broker.settings.max_connections as i64;
    let memory = RequestMemory::new(broker.settings.queued_max_request_bytes);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                if broker.metrics.connections_open.get() >= max {
                    debug!(%peer, max, "connection refused: max.connections reached");
                    broker.metrics.connections_rejected.inc();
                    continue;
                }
                tracker.spawn(connection::accept(
                    stream,
                    peer,
                    secured.clone(),
                    broker.clone(),
                    memory.clone(),
                    shutdown.clone(),
                ));
            }
            Err(e) => {
                // Typically EMFILE: back off instead of spinning, and keep serving the open ones.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
