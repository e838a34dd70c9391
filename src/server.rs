//! Starting and stopping a node: data directory, the controller (metadata log), registration,
//! partitions, listeners, metrics and the log upkeep task. `main` and the integration tests
//! both go through [`Server::start`].

use std::fs::File;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::authz::Authorizer;
use crate::broker::Broker;
use crate::clock::now_ms;
use crate::config::{ConfigError, Listener, Settings};
use crate::controller::lifecycle::BrokerLifecycle;
use crate::controller::{Controller, Quorum};
use crate::data_dirs::DataDirs;
use crate::group::config::{ConsumerGroupConfig, GroupConfig};
use crate::group::runtime::GroupCoordinator;
use crate::log::LogError;
use crate::metadata::brokers::{BrokerEndpoint, Registration};
use crate::metadata::{Applied, Metadata, MetadataError};
use crate::metrics::Metrics;
use crate::net::SecuredListener;
use crate::replica::ReplicaManager;
use crate::security::plain::PlainUsers;
use crate::security::sasl::SaslConfig;
use crate::security::ssl_principal::SslPrincipalMapper;
use crate::txn::coordinator::TxnConfig;
use crate::txn::runtime::TxnCoordinator;

/// How often the recovery-point checkpoint is written (Kafka's log.flush.offset.checkpoint.interval.ms).
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);
/// How often time-based flush and roll are checked.
const TICK_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("data directory {0} is in use by another process")]
    Locked(String),
    #[error("{0}")]
    MetaProperties(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("metadata: {0}")]
    Metadata(String),
    #[error("partition logs: {0}")]
    Log(String),
    #[error("listener security: {0}")]
    Security(String),
}

impl From<MetadataError> for StartError {
    fn from(e: MetadataError) -> Self {
        StartError::Metadata(e.to_string())
    }
}

impl From<LogError> for StartError {
    fn from(e: LogError) -> Self {
        StartError::Log(e.to_string())
    }
}

/// A running node.
#[derive(Debug)]
pub struct Server {
    /// None on a controller-only node.
    broker: Option<Arc<Broker>>,
    lifecycle: Option<BrokerLifecycle>,
    /// Stops the heartbeats first on shutdown, so none can undo the controlled shutdown.
    heartbeats: CancellationToken,
    controller: Arc<Controller>,
    /// The bound Kafka listener addresses (the real port when 0 was asked for).
    pub kafka_addrs: Vec<SocketAddr>,
    pub metrics_addr: SocketAddr,
    shutdown: CancellationToken,
    connections: TaskTracker,
    background: TaskTracker,
    /// The log directories' `.lock` files, held while the node runs.
    _locks: Vec<File>,
}

impl Server {
    /// The broker of this node (None on a controller-only node).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn broker(&self) -> Option<Arc<Broker>> {
        self.broker.clone()
    }

    /// Starts a node. A broker returns once it is registered with the controller quorum,
    /// unfenced and serving; in a cluster that means once a quorum of voters is up.
    pub async fn start(settings: Settings) -> Result<Server, StartError> {
        raise_open_files_limit();
        if crate::alloc::overcommit_is_strict() {
            warn!(
                "vm.overcommit_memory is 2: a request declaring a huge count can exhaust the commit \
                 limit and abort the broker (see docs/architecture.md, Input bounds); 0 or 1 is safe"
            );
        }
        let settings = Arc::new(settings);
        let mut data_dirs = DataDirs::open(&settings.log_dir_list(), settings.node_id)?;
        let data_dir = data_dirs.metadata_dir().to_path_buf();
        let (cluster_id, fresh_data_dir) = (data_dirs.cluster_id.clone(), data_dirs.fresh);
        let quorum = Quorum::parse(
            &settings.controller_quorum_voters,
            settings.node_id,
            settings.is_controller(),
        )
        .map_err(|e| StartError::Metadata(e.to_string()))?;
        let shutdown = CancellationToken::new();
        // Bound before anything waits: peers must reach this node while it waits for them.
        let (controller_listener, controller_addr) = match settings.controller_listener() {
            Some(l) if !quorum.is_standalone() => {
                let bound = bind(&l.bind_addr()).await?;
                let port = bound.local_addr().map_or(l.port, |a| a.port());
                (Some(bound), Some(format!("{}:{port}", l.host)))
            }
            _ => (None, None),
        };
        let controller = Controller::start(
            settings.clone(),
            &data_dir,
            quorum.clone(),
            controller_listener,
            cluster_id.clone(),
            fresh_data_dir,
        )
        .await
        .map_err(|e| StartError::Metadata(e.to_string()))?;
        let metrics = Arc::new(Metrics::new());
        metrics.watch_controller(controller.clone());
        let metrics_listener = bind(&settings.metrics_listener).await?;
        let metrics_addr = metrics_listener.local_addr().map_err(|source| StartError::Bind {
            addr: settings.metrics_listener.clone(),
            source,
        })?;
        let background = TaskTracker::new();
        let stop = shutdown.clone();
        let served = metrics.clone();
        background.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                r = served.serve(metrics_listener) => if let Err(e) = r { warn!(error = %e, "metrics endpoint stopped") },
            }
        });
        let mut server = Server {
            broker: None,
            lifecycle: None,
            heartbeats: shutdown.child_token(),
            controller: controller.clone(),
            kafka_addrs: Vec::new(),
            metrics_addr,
            shutdown: shutdown.clone(),
            connections: TaskTracker::new(),
            background,
            _locks: data_dirs.take_locks(),
        };
        if !settings.is_broker() {
            info!(node_id = settings.node_id, "sluice started (controller only)");
            return Ok(server);
        }

        // Kafka listeners are bound now (registration names their ports) but accept only once
        // this broker is unfenced.
        let mut listeners = Vec::new();
        for l in settings.kafka_listeners() {
            listeners.push((bind(&l.bind_addr()).await?, l));
        }
        let kafka_addrs: Vec<SocketAddr> = listeners.iter().filter_map(|(b, _)| b.local_addr().ok()).collect();
        let secured = secure(&settings, &listeners)?;
        // Other brokers replicate from, and the registration names, the inter-broker listener.
        let inter_broker = settings.inter_broker_listener().map(|l| l.name);
        let advertised = secured
            .iter()
            .find(|s| Some(&s.endpoint.name) == inter_broker.as_ref())
            .map_or_else(|| secured[0].endpoint.as_ref().clone(), |s| s.endpoint.as_ref().clone());
        let registration_id = uuid::Uuid::new_v4();
        // Read (and removed) before any log opens, so a crash of this run never looks clean.
        let previous_incarnation = data_dirs.take_clean_shutdown().and_then(|t| t.parse().ok());
        let registration = Registration {
            broker_id: settings.node_id,
            incarnation_id: registration_id,
            host: advertised.host.clone(),
            port: advertised.port,
            rack: settings.broker_rack.clone().filter(|r| !r.is_empty()),
            previous_incarnation,
            log_dirs: data_dirs.dirs.iter().map(|(_, id)| *id).collect(),
            // Every listener, so clients on each are told the other brokers' endpoints on it.
            listeners: secured
                .iter()
                .map(|s| BrokerEndpoint {
                    name: s.endpoint.name.clone(),
                    host: s.endpoint.host.clone(),
                    port: s.endpoint.port,
                    security_protocol: s.protocol.to_string(),
                })
                .collect(),
        };
        // A broker that is not a voter is sent the metadata log as a Raft learner.
        let learner = controller_addr.filter(|_| !quorum.is_voter(settings.node_id));
        let lifecycle = BrokerLifecycle::new(controller.clone(), registration, learner);
        lifecycle
            .register_and_catch_up(&shutdown)
            .await
            .map_err(|e| StartError::Metadata(e.to_string()))?;

        // One receiver from here on, so no image applied during log recovery goes unpublished.
        let mut applied_rx = controller.applied();
        let applied = applied_rx.borrow_and_update().clone();
        data_dirs.adopt_cluster_id(&applied.image, settings.node_id)?;
        let started = std::time::Instant::now();
        let replicas = Arc::new(ReplicaManager::open(
            settings.clone(),
            &data_dirs.dirs,
            &applied.image,
            shutdown.clone(),
        )?);
        info!(elapsed_ms = started.elapsed().as_millis() as u64, "logs recovered");
        metrics.watch_partitions(replicas.clone());
        let (markers, marker_queue) = tokio::sync::mpsc::unbounded_channel();
        let broker = Arc::new(Broker {
            node_id: settings.node_id,
            settings: settings.clone(),
            local_cluster_id: cluster_id,
            advertised,
            metadata: Metadata::new(controller.applied()),
            controller: controller.clone(),
            replicas,
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
            producer_ids: Default::default(),
            groups: GroupCoordinator::new(
                group_config(&settings),
                settings.offsets_topic_num_partitions,
                Duration::from_millis(settings.offsets_commit_timeout_ms as u64),
                None,
            ),
            txns: TxnCoordinator::new(
                txn_config(&settings),
                settings.transaction_state_log_num_partitions,
                Duration::from_millis(settings.request_timeout_ms as u64),
                Some(markers),
            ),
            txn_peers: Default::default(),
            shares: crate::share::ShareService::new(crate::share::service::ShareSettings::from_settings(&settings)),
            share_states: crate::share::state::shard::ShareCoordinator::new(
                (),
                settings.share_coordinator_state_topic_num_partitions,
                Duration::from_millis(settings.request_timeout_ms as u64),
                None,
            ),
            published: tokio::sync::watch::Sender::new(0),
            last_published: std::sync::Mutex::new(applied.image.clone()),
            incarnation_id: registration_id,
            authorizer: Authorizer::new(
                &settings.authorizer_class_name,
                &settings.super_users,
                settings.allow_everyone_if_no_acl_found,
            )
            .map_err(StartError::Security)?,
            quotas: crate::quota::ClientQuotaManagers::new(
                settings.quota_window_num as usize,
                settings.quota_window_size_seconds as u64 * 1000,
            ),
        });
        metrics.watch_groups(Arc::downgrade(&broker));
        server
            .background
            .spawn(crate::txn::marker_sender::run(broker.clone(), marker_queue));
        if let Some(proposals) = broker.replicas.take_isr_proposals() {
            server.background.spawn(broker.clone().send_isr_changes(proposals));
        }
        broker.publish(&applied);
        server
            .background
            .spawn(follow_metadata(broker.clone(), applied_rx, shutdown.clone()));
        lifecycle
            .unfence(&shutdown)
            .await
            .map_err(|e| StartError::Metadata(e.to_string()))?;
        // Serve only once the partitions (and group shards) this broker now leads are open.
        let unfenced_at = controller.applied().borrow().index;
        let _ = broker.published.subscribe().wait_for(|p| *p >= unfenced_at).await;
        let interval = Duration::from_millis(settings.broker_heartbeat_interval_ms as u64);
        server
            .background
            .spawn(lifecycle.clone().heartbeats(interval, server.heartbeats.clone()));
        for ((l, _), secured) in listeners.into_iter().zip(secured) {
            info!(listener = %secured.endpoint.name, protocol = %secured.protocol, "listening");
            server.background.spawn(crate::net::accept_loop(
                l,
                secured,
                broker.clone(),
                shutdown.clone(),
                server.connections.clone(),
            ));
        }
        server.background.spawn(upkeep(broker.clone(), shutdown.clone()));
        info!(node_id = broker.node_id, listeners = ?kafka_addrs, advertised = %broker.advertised, "sluice started");
        server.kafka_addrs = kafka_addrs;
        server.broker = Some(broker);
        server.lifecycle = Some(lifecycle);
        Ok(server)
    }

    /// Hands this broker's partitions off (controlled shutdown), stops accepting, lets
    /// in-flight requests finish, flushes and closes every log, then stops Raft.
    pub async fn shutdown(self) {
        info!("shutting down");
        if let Some(lifecycle) = &self.lifecycle {
            self.heartbeats.cancel();
            lifecycle.controlled_shutdown().await;
        }
        self.shutdown.cancel();
        self.connections.close();
        self.connections.wait().await;
        self.background.close();
        self.background.wait().await;
        if let Some(broker) = &self.broker {
            let replicas = broker.replicas.clone();
            let token = broker.incarnation_id.to_string();
            match tokio::task::spawn_blocking(move || replicas.shutdown(&token)).await {
                Ok(Ok(true)) => info!("logs flushed and closed"),
                Ok(Ok(false)) => warn!("some logs did not close; the next start recovers them"),
                Ok(Err(e)) => warn!(error = %e, "log shutdown failed; the next start recovers"),
                Err(e) => warn!(error = %e, "log shutdown task failed; the next start recovers"),
            }
        }
        self.controller.shutdown().await;
    }
}

/// Makes the broker follow each image this node's state machine applies, in order.
async fn follow_metadata(broker: Arc<Broker>, mut applied: watch::Receiver<Applied>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = applied.changed() => if changed.is_err() {
                if shutdown.is_cancelled() {
                    return;
                }
                // Raft stopped under a running broker (a storage failure): its metadata would
                // freeze while it went on serving. Kafka exits in this case too.
                error!("the metadata log stopped; this node cannot follow the cluster and exits");
                std::process::exit(1);
            },
        }
        let next = applied.borrow_and_update().clone();
        let b = broker.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || b.publish(&next)).await {
            warn!(error = %e, "applying a metadata change to the partitions failed");
        }
    }
}

fn group_config(s: &Settings) -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: s.group_initial_rebalance_delay_ms,
        min_session_timeout_ms: s.group_min_session_timeout_ms,
        max_session_timeout_ms: s.group_max_session_timeout_ms,
        max_size: s.group_max_size as usize,
        offsets_retention_ms: i64::from(s.offsets_retention_minutes).saturating_mul(60_000),
        offsets_retention_check_interval_ms: s.offsets_retention_check_interval_ms,
        offset_metadata_max_bytes: s.offset_metadata_max_bytes as usize,
        consumer: ConsumerGroupConfig {
            enabled: s
                .group_coordinator_rebalance_protocols
                .split(',')
                .any(|p| p.trim() == "consumer"),
            session_timeout_ms: s.group_consumer_session_timeout_ms,
            heartbeat_interval_ms: s.group_consumer_heartbeat_interval_ms,
            max_size: s.group_consumer_max_size as usize,
            assignors: crate::group::consumer::assignor::configured(&s.group_consumer_assignors),
        },
        ..GroupConfig::default()
    }
}

fn txn_config(s: &Settings) -> TxnConfig {
    TxnConfig {
        max_timeout_ms: s.transaction_max_timeout_ms,
        id_expiration_ms: i64::from(s.transactional_id_expiration_ms),
        abort_timed_out_interval_ms: i64::from(s.transaction_abort_timed_out_transaction_cleanup_interval_ms),
        remove_expired_interval_ms: i64::from(s.transaction_remove_expired_transaction_cleanup_interval_ms),
        ..TxnConfig::default()
    }
}

/// Every partition segment holds open files and every client a socket: raise the soft limit
/// on open files to the hard one, as Kafka's packaging asks operators to, so a default
/// `ulimit -n` of 1024 does not cap the broker at a few hundred partitions.
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => info!(limit, "open files limit"),
        Err(e) => warn!(error = %e, "cannot raise the open files limit"),
    }
}

async fn bind(addr: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).await.map_err(|source| StartError::Bind {
        addr: addr.to_string(),
        source,
    })
}

/// The advertised endpoint: the setting, else the first listener with its real port.
/// Each bound Kafka listener with its security: TLS (one acceptor for all TLS listeners),
/// SASL, and this node's advertised endpoint on it.
fn secure(settings: &Settings, listeners: &[(TcpListener, Listener)]) -> Result<Vec<Arc<SecuredListener>>, StartError> {
    let mut tls = None;
    let mut ssl_principal = None;
    let mut sasl = None;
    let mut secured = Vec::new();
    for (bound, l) in listeners {
        let protocol = settings
            .security_protocol(l)
            .ok_or_else(|| StartError::Security(format!("listener {} has no security protocol", l.name)))?;
        if protocol.uses_tls() && tls.is_none() {
            tls = Some(crate::security::tls::acceptor(settings).map_err(|e| StartError::Security(e.to_string()))?);
            let rules = SslPrincipalMapper::parse(&settings.ssl_principal_mapping_rules)
                .map_err(|e| StartError::Security(format!("ssl.principal.mapping.rules: {e}")))?;
            ssl_principal = Some(Arc::new(rules));
        }
        if protocol.uses_sasl() && sasl.is_none() {
            sasl = Some(Arc::new(sasl_config(settings)?));
        }
        let port = bound.local_addr().map_or(l.port, |a| a.port());
        secured.push(Arc::new(SecuredListener {
            protocol,
            tls: tls.clone().filter(|_| protocol.uses_tls()),
            sasl: sasl.clone().filter(|_| protocol.uses_sasl()),
            ssl_principal: ssl_principal
                .clone()
                .filter(|_| protocol == crate::security::SecurityProtocol::Ssl),
            endpoint: Arc::new(advertised(settings, l, port)),
        }));
    }
    Ok(secured)
}

fn sasl_config(settings: &Settings) -> Result<SaslConfig, StartError> {
    let users = settings.sasl_plain_users.as_deref().unwrap_or_default();
    let plain = PlainUsers::parse(users).map_err(|e| StartError::Security(format!("sasl.plain.users: {e}")))?;
    let mechanisms = settings
        .sasl_enabled_mechanisms
        .split(',')
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .collect();
    Ok(SaslConfig { mechanisms, plain })
}

/// What clients are told to connect to for listener `l` (bound to `port`): its entry in
/// `advertised.listeners` by name, else the listener itself.
fn advertised(settings: &Settings, l: &Listener, port: u16) -> Listener {
    if let Some(a) = settings
        .advertised_listeners
        .iter()
        .flatten()
        .find(|a| a.name == l.name)
    {
        return a.clone();
    }
    let mut l = l.clone();
    l.port = port;
    if l.host.is_empty() || l.host == "0.0.0.0" || l.host == "::" {
        warn!("listener binds every interface; advertising localhost (set advertised.listeners for remote clients)");
        l.host = "localhost".into();
    }
    l
}

/// Periodic log upkeep: flush/roll every second, retention on its interval, checkpoint every
/// minute. Runs the blocking file work off the async workers.
async fn upkeep(broker: Arc<Broker>, shutdown: CancellationToken) {
    let retention_every = Duration::from_millis(broker.settings.log_retention_check_interval_ms as u64);
    let hw_every = Duration::from_millis(broker.settings.replica_high_watermark_checkpoint_interval_ms as u64);
    let mut last_retention = tokio::time::Instant::now();
    let mut last_hw_checkpoint = tokio::time::Instant::now();
    let mut last_checkpoint = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(TICK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = tokio::time::Instant::now();
        let retention = now.duration_since(last_retention) >= retention_every;
        let checkpoint = now.duration_since(last_checkpoint) >= CHECKPOINT_INTERVAL;
        if retention {
            last_retention = now;
        }
        if checkpoint {
            last_checkpoint = now;
        }
        // The full checkpoint writes the high watermarks too.
        let hw_checkpoint = !checkpoint && now.duration_since(last_hw_checkpoint) >= hw_every;
        if hw_checkpoint || checkpoint {
            last_hw_checkpoint = now;
        }
        let b = broker.clone();
        let work = tokio::task::spawn_blocking(move || {
            let now_ms = now_ms();
            b.retry_reconcile();
            let replicas = &b.replicas;
            replicas.tick(now_ms);
            if retention {
                replicas.enforce_retention(now_ms);
            }
            if checkpoint {
                replicas.expire_producers(now_ms);
                if let Err(e) = replicas.checkpoint() {
                    warn!(error = %e, "recovery checkpoint failed");
                }
            }
            if hw_checkpoint {
                if let Err(e) = replicas.checkpoint_high_watermarks() {
                    warn!(error = %e, "high watermark checkpoint failed");
                }
            }
        });
        if let Err(e) = work.await {
            warn!(error = %e, "log upkeep task failed");
        }
    }
}
