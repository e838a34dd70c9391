//! Starting and stopping a node: data directory, metadata, partitions, listeners, metrics and
//! the log upkeep task. `main` and the integration tests both go through [`Server::start`].

use std::fs::{File, OpenOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::broker::Broker;
use crate::clock::now_ms;
use crate::config::{ConfigError, Listener, Settings};
use crate::group::config::GroupConfig;
use crate::group::runtime::GroupCoordinator;
use crate::log::LogError;
use crate::metadata::{LocalMetadataLog, Metadata, MetadataError};
use crate::metrics::Metrics;
use crate::replica::ReplicaManager;

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
    broker: Arc<Broker>,
    /// The bound Kafka listener addresses (the real port when 0 was asked for).
    pub kafka_addrs: Vec<SocketAddr>,
    pub metrics_addr: SocketAddr,
    shutdown: CancellationToken,
    connections: TaskTracker,
    background: TaskTracker,
    _lock: File,
}

impl Server {
    pub async fn start(settings: Settings) -> Result<Server, StartError> {
        raise_open_files_limit();
        let settings = Arc::new(settings);
        let data_dir = PathBuf::from(&settings.log_dirs);
        let lock = open_data_dir(&data_dir)?;
        let cluster_id = meta_properties(&data_dir, settings.node_id)?;
        let metadata = Metadata::open(Box::new(
            LocalMetadataLog::open(&data_dir).map_err(MetadataError::from)?,
        ))?;
        let started = std::time::Instant::now();
        let replicas = Arc::new(ReplicaManager::open(settings.clone(), &data_dir, &metadata.image())?);
        info!(elapsed_ms = started.elapsed().as_millis() as u64, "logs recovered");

        let mut listeners = Vec::new();
        for l in &settings.listeners {
            listeners.push(bind(&l.bind_addr()).await?);
        }
        let kafka_addrs: Vec<SocketAddr> = listeners.iter().filter_map(|l| l.local_addr().ok()).collect();
        let advertised = advertised(&settings, kafka_addrs[0]);
        let metrics = Arc::new(Metrics::new());
        metrics.watch_partitions(replicas.clone());
        let metrics_listener = bind(&settings.metrics_listener).await?;
        let metrics_addr = metrics_listener.local_addr().map_err(|source| StartError::Bind {
            addr: settings.metrics_listener.clone(),
            source,
        })?;

        let shutdown = CancellationToken::new();
        let broker = Arc::new(Broker {
            node_id: settings.node_id,
            settings: settings.clone(),
            cluster_id,
            advertised,
            metadata,
            replicas,
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
            producer_ids: Default::default(),
            groups: GroupCoordinator::new(group_config(&settings), settings.offsets_topic_num_partitions),
        });
        broker.groups.reconcile(&broker.replicas);
        let connections = TaskTracker::new();
        let background = TaskTracker::new();
        for l in listeners {
            background.spawn(crate::net::accept_loop(
                l,
                broker.clone(),
                shutdown.clone(),
                connections.clone(),
            ));
        }
        let stop = shutdown.clone();
        background.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                r = metrics.serve(metrics_listener) => if let Err(e) = r { warn!(error = %e, "metrics endpoint stopped") },
            }
        });
        background.spawn(upkeep(broker.clone(), shutdown.clone()));
        info!(node_id = broker.node_id, listeners = ?kafka_addrs, advertised = %broker.advertised, "sluice started");
        Ok(Server {
            broker,
            kafka_addrs,
            metrics_addr,
            shutdown,
            connections,
            background,
            _lock: lock,
        })
    }

    /// Stops accepting, lets in-flight requests finish, then flushes and closes every log.
    pub async fn shutdown(self) {
        info!("shutting down");
        self.shutdown.cancel();
        self.connections.close();
        self.connections.wait().await;
        self.background.close();
        self.background.wait().await;
        let replicas = self.broker.replicas.clone();
        match tokio::task::spawn_blocking(move || replicas.shutdown()).await {
            Ok(Ok(())) => info!("logs flushed and closed"),
            Ok(Err(e)) => warn!(error = %e, "log shutdown failed; the next start recovers"),
            Err(e) => warn!(error = %e, "log shutdown task failed; the next start recovers"),
        }
    }
}

fn group_config(s: &Settings) -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: s.group_initial_rebalance_delay_ms,
        min_session_timeout_ms: s.group_min_session_timeout_ms,
        max_session_timeout_ms: s.group_max_session_timeout_ms,
        max_size: s.group_max_size as usize,
        offsets_retention_ms: s.offsets_retention_minutes.saturating_mul(60_000),
        offsets_retention_check_interval_ms: s.offsets_retention_check_interval_ms,
        offset_metadata_max_bytes: s.offset_metadata_max_bytes as usize,
        ..GroupConfig::default()
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
fn advertised(settings: &Settings, bound: SocketAddr) -> Listener {
    if let Some(l) = settings.advertised_listeners.first() {
        return l.clone();
    }
    let mut l = settings.listeners[0].clone();
    l.port = bound.port();
    if l.host.is_empty() || l.host == "0.0.0.0" || l.host == "::" {
        warn!("listener binds every interface; advertising localhost (set advertised.listeners for remote clients)");
        l.host = "localhost".into();
    }
    l
}

/// Creates the data directory and takes an exclusive lock on it, as Kafka's `.lock` file does.
fn open_data_dir(dir: &Path) -> Result<File, StartError> {
    let io = |source| StartError::DataDir {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))
        .map_err(io)?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(StartError::Locked(dir.display().to_string())),
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

/// Reads (or writes, on first start) `meta.properties`; returns the cluster id.
fn meta_properties(dir: &Path, node_id: i32) -> Result<String, StartError> {
    let path = dir.join("meta.properties");
    let io = |source| StartError::DataDir {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let get = |key: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
                    .map(str::trim)
            };
            let stored: Option<i32> = get("node.id").and_then(|v| v.parse().ok());
            if stored != Some(node_id) {
                return Err(StartError::MetaProperties(format!(
                    "{} says node.id={}, but this node is configured with node.id={node_id}",
                    path.display(),
                    get("node.id").unwrap_or("?")
                )));
            }
            get("cluster.id")
                .map(str::to_string)
                .ok_or_else(|| StartError::MetaProperties(format!("{} has no cluster.id", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let cluster_id = uuid::Uuid::new_v4().simple().to_string();
            let text = format!("#Written by sluice\nversion=1\ncluster.id={cluster_id}\nnode.id={node_id}\n");
            let tmp = dir.join("meta.properties.tmp");
            std::fs::write(&tmp, text).map_err(io)?;
            std::fs::rename(&tmp, &path).map_err(io)?;
            Ok(cluster_id)
        }
        Err(e) => Err(io(e)),
    }
}

/// Periodic log upkeep: flush/roll every second, retention on its interval, checkpoint every
/// minute. Runs the blocking file work off the async workers.
async fn upkeep(broker: Arc<Broker>, shutdown: CancellationToken) {
    let retention_every = Duration::from_millis(broker.settings.log_retention_check_interval_ms as u64);
    let mut last_retention = tokio::time::Instant::now();
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
        });
        if let Err(e) = work.await {
            warn!(error = %e, "log upkeep task failed");
        }
    }
}
