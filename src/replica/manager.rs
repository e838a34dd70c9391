//! The set of partitions this broker hosts, kept in step with the metadata image, plus what
//! runs across them: the replica fetchers of the partitions it follows, the ISR ticks of those
//! it leads, and the periodic log upkeep (flush, roll, retention, the recovery-point and
//! high-watermark checkpoints).
//!
//! Reconciling is by delta: each hosted partition compares its new metadata (leader, epochs,
//! replicas, ISR) with what it had, and only a change reaches its core and the fetchers.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::appender::Appender;
use super::core::{Action, LeaderAndIsr};
use super::dir_moves::{DirMoves, FutureReplica};
use super::fetcher::{FetcherConfig, Fetchers};
use super::partition::{IsrProposal, Partition, PartitionSetup};
use super::ReplicaError;
use crate::clock::now_ms;
use crate::config::Settings;
use crate::log::{
    clean_shutdown, CleanTarget, CleanerConfig, CleanerStats, CleanerTargets, Log, LogCleaner, LogDir, LogDirs,
    LogError,
};
use crate::metadata::{topic_config, MetadataImage, PartitionImage, TopicImage, METADATA_TOPIC};

type Key = (String, i32);

#[derive(Debug)]
pub(crate) struct ReplicaManager {
    node_id: i32,
    settings: Arc<Settings>,
    logs: Arc<LogDirs>,
    /// Shared with the log cleaner, which takes the compacted ones in turn.
    partitions: Arc<RwLock<HashMap<Key, Arc<Partition>>>>,
    /// The image of the last reconcile: tells "led elsewhere" from "no such partition".
    image: RwLock<Arc<MetadataImage>>,
    /// What each hosted partition last got from the metadata (the base of the next delta).
    applied: Mutex<HashMap<Key, PartitionImage>>,
    needs_reconcile: AtomicBool,
    fetchers: Fetchers,
    proposals: mpsc::UnboundedSender<IsrProposal>,
    /// Taken once by whoever sends ISR changes to the controller (`Broker`).
    proposals_rx: Mutex<Option<mpsc::UnboundedReceiver<IsrProposal>>>,
    /// High watermarks from `replication-offset-checkpoint`, for partitions opened later.
    checkpointed_hw: Mutex<HashMap<Key, i64>>,
    appender: Arc<Appender>,
    cleaner: LogCleaner,
    /// AlterReplicaLogDirs moves in progress.
    moves: DirMoves,
    /// The log dir AlterReplicaLogDirs asked for a replica this broker does not host yet
    /// (Kafka's preferred log dir): where it is created when it comes. Only partitions of
    /// topics in the image, so bounded by the cluster's partitions.
    preferred_dirs: Mutex<HashMap<Key, usize>>,
}

impl ReplicaManager {
    /// Opens (and recovers) every partition log, in every log directory (`(path, directory
    /// id)`, in `log.dirs` order), that the image says this node hosts; directories of
    /// partitions the image does not have are set aside as `-stray`.
    pub(crate) fn open(
        settings: Arc<Settings>,
        log_dirs: &[(PathBuf, uuid::Uuid)],
        image: &MetadataImage,
        shutdown: CancellationToken,
    ) -> Result<ReplicaManager, LogError> {
        let logs = Arc::new(LogDirs::open(log_dirs)?);
        let config_for = |topic: &str| {
            if topic == METADATA_TOPIC {
                return None;
            }
            let overrides = image.topic(topic).map(|t| t.configs.clone()).unwrap_or_default();
            Some(topic_config::log_config(&settings, image.cluster_configs(), &overrides))
        };
        let loaded = logs.load_all(config_for)?;
        let checkpointed_hw = logs
            .read_high_watermarks()?
            .into_iter()
            .map(|(t, p, hw)| ((t, p), hw))
            .collect();
        let (proposals, proposals_rx) = mpsc::unbounded_channel();
        let partitions: Arc<RwLock<HashMap<Key, Arc<Partition>>>> = Arc::default();
        let cleaned = partitions.clone();
        let targets: CleanerTargets = Box::new(move || {
            let map = cleaned.read().expect("partitions lock");
            map.values().map(|p| p.clone() as Arc<dyn CleanTarget>).collect()
        });
        let cleaner = LogCleaner::start(cleaner_config(&settings), logs.clone(), targets);
        let move_threads = settings
            .num_replica_alter_log_dirs_threads
            .map_or(log_dirs.len(), |n| n.max(1) as usize);
        let moves = DirMoves::start(
            logs.clone(),
            move_threads,
            settings.replica_alter_log_dirs_io_max_bytes_per_second,
        );
        let manager = ReplicaManager {
            node_id: settings.node_id,
            fetchers: Fetchers::new(fetcher_config(&settings), shutdown),
            settings: settings.clone(),
            logs,
            partitions,
            cleaner,
            moves,
            preferred_dirs: Mutex::default(),
            image: RwLock::default(),
            applied: Mutex::new(HashMap::new()),
            needs_reconcile: AtomicBool::new(false),
            proposals,
            proposals_rx: Mutex::new(Some(proposals_rx)),
            checkpointed_hw: Mutex::new(checkpointed_hw),
            appender: Arc::new(Appender::start(settings.num_io_threads as usize)),
        };
        let mut map = HashMap::new();
        let (mut scanned, mut truncated) = (0u64, 0u64);
        for (topic, index, log) in loaded {
            let stats = log.recovery_stats();
            scanned += stats.batches_scanned;
            truncated += stats.bytes_truncated;
            match image.topic(&topic).filter(|t| manager.hosts(t, index)) {
                Some(t) => {
                    let p = manager.partition_for(image, t, index, log);
                    map.insert((topic, index), p);
                }
                // Not in the metadata: a topic deleted while this node was down (or just
                // before a crash), or a data directory that met another cluster. Set aside,
                // never deleted: the metadata could be the thing that is wrong.
                None => {
                    let aside = log.set_aside()?;
                    warn!(
                        topic,
                        partition = index,
                        dir = %aside.display(),
                        "partition log not in the metadata: set aside (delete it once not needed)"
                    );
                }
            }
        }
        info!(
            partitions = map.len(),
            batches_scanned = scanned,
            bytes_truncated = truncated,
            "partition logs loaded"
        );
        *manager.partitions.write().expect("partitions lock") = map;
        manager.reconcile(image)?;
        Ok(manager)
    }

    /// The threads that write partition logs (leaders' appends; followers' run on the blocking
    /// pool from their fetchers).
    pub(crate) fn appender(&self) -> &Arc<Appender> {
        &self.appender
    }

    /// The ISR changes the partitions' cores propose, for the broker to send to the controller.
    pub(crate) fn take_isr_proposals(&self) -> Option<mpsc::UnboundedReceiver<IsrProposal>> {
        self.proposals_rx.lock().expect("proposals lock").take()
    }

    fn hosts(&self, topic: &TopicImage, index: i32) -> bool {
        topic
            .partitions
            .get(&index)
            .is_some_and(|p| p.replicas.contains(&self.node_id))
    }

    fn partition_for(&self, image: &MetadataImage, topic: &TopicImage, index: i32, log: Log) -> Arc<Partition> {
        let hw = self
            .checkpointed_hw
            .lock()
            .expect("hw lock")
            .remove(&(topic.name.clone(), index))
            .unwrap_or(0);
        let p = Partition::new(PartitionSetup {
            topic: topic.name.clone(),
            index,
            topic_id: topic.id,
            node_id: self.node_id,
            log,
            high_watermark: hw,
            lag_max_ms: self.settings.replica_lag_time_max_ms,
            min_insync_replicas: topic_config::min_insync_replicas(
                &self.settings,
                image.cluster_configs(),
                &topic.configs,
            ),
            proposals: self.proposals.clone(),
        });
        p.set_compression_type(topic_config::compression_type(&self.settings, &topic.configs));
        p
    }

    /// Brings the hosted partitions in line with the image: creates logs for new partitions,
    /// deletes those of removed (or deleted and re-created) topics, applies config changes,
    /// and hands each partition whose leader, epochs, replicas or ISR changed its new state.
    pub(crate) fn reconcile(&self, image: &MetadataImage) -> Result<(), LogError> {
        *self.image.write().expect("image lock") = Arc::new(image.clone());
        let mut wanted = HashSet::new();
        let mut first_failure = None;
        let mut failures = 0;
        for topic in image.topics() {
            for &index in topic.partitions.keys().filter(|i| self.hosts(topic, **i)) {
                wanted.insert((topic.name.clone(), index));
                // Keep going past a failure: one bad partition must not leave the rest missing.
                if let Err(e) = self.ensure(image, topic, index) {
                    failures += 1;
                    first_failure.get_or_insert(e);
                }
            }
        }
        self.needs_reconcile.store(failures > 0, Ordering::Release);
        let gone: Vec<Arc<Partition>> = {
            let mut map = self.partitions.write().expect("partitions lock");
            let keys: Vec<Key> = map.keys().filter(|k| !wanted.contains(*k)).cloned().collect();
            keys.iter().filter_map(|k| map.remove(k)).collect()
        };
        for p in gone {
            info!(topic = %p.topic, partition = p.index, "deleting partition");
            self.fetchers.remove(&p.topic, p.index);
            self.applied
                .lock()
                .expect("applied lock")
                .remove(&(p.topic.clone(), p.index));
            if let Err(e) = p.delete() {
                warn!(topic = %p.topic, partition = p.index, error = %e, "could not delete partition log");
            }
        }
        match first_failure {
            None => Ok(()),
            Some(e) => {
                error!(failures, error = %e, "could not create local partitions; retrying every second");
                Err(e)
            }
        }
    }

    /// Whether the last reconcile left partitions missing (the upkeep task retries it).
    pub(crate) fn needs_reconcile(&self) -> bool {
        self.needs_reconcile.load(Ordering::Acquire)
    }

    fn ensure(&self, image: &MetadataImage, topic: &TopicImage, index: i32) -> Result<(), LogError> {
        let cluster = image.cluster_configs();
        let config = topic_config::log_config(&self.settings, cluster, &topic.configs);
        let min_isr = topic_config::min_insync_replicas(&self.settings, cluster, &topic.configs);
        if let Some(p) = self.get(&topic.name, index) {
            if p.topic_id == topic.id {
                if let Err(e) = p.update_config(
                    config,
                    min_isr,
                    topic_config::compression_type(&self.settings, &topic.configs),
                ) {
                    warn!(topic = %topic.name, partition = index, error = %e, "config not applied");
                }
                self.follow(image, topic, index, &p);
                return Ok(());
            }
            // Same name, new id: the topic was deleted and re-created; the old data must go.
            self.partitions
                .write()
                .expect("partitions lock")
                .remove(&(topic.name.clone(), index));
            self.fetchers.remove(&topic.name, index);
            self.applied
                .lock()
                .expect("applied lock")
                .remove(&(topic.name.clone(), index));
            if let Err(e) = p.delete() {
                warn!(topic = %topic.name, partition = index, error = %e, "could not delete old partition log");
            }
        }
        let preferred = self
            .preferred_dirs
            .lock()
            .expect("preferred dirs lock")
            .remove(&(topic.name.clone(), index));
        let created = match preferred {
            Some(dir) => self.logs.create_in(dir, &topic.name, index, config.clone()),
            None => self
                .logs
                .create(&topic.name, index, config.clone(), &self.partitions_per_dir()),
        };
        let log = match created {
            // Left behind by an earlier attempt that failed half way: recover and adopt it.
            Err(LogError::AlreadyExists(dir)) => Log::open(&dir, config, 0)?,
            other => other?,
        };
        let p = self.partition_for(image, topic, index, log);
        self.partitions
            .write()
            .expect("partitions lock")
            .insert((topic.name.clone(), index), p.clone());
        self.follow(image, topic, index, &p);
        Ok(())
    }

    /// Hands the partition its metadata if it changed since the last time, and starts or stops
    /// fetching as its core decides.
    fn follow(&self, image: &MetadataImage, topic: &TopicImage, index: i32, p: &Arc<Partition>) {
        let Some(meta) = topic.partitions.get(&index) else {
            return;
        };
        let key = (topic.name.clone(), index);
        {
            let mut applied = self.applied.lock().expect("applied lock");
            if applied.get(&key) == Some(meta) {
                return;
            }
            applied.insert(key, meta.clone());
        }
        let state = LeaderAndIsr {
            leader: meta.leader,
            leader_epoch: meta.leader_epoch,
            partition_epoch: meta.partition_epoch,
            replicas: meta.replicas.clone(),
            isr: meta.isr.clone(),
        };
        for action in p.apply_metadata(state, now_ms()) {
            match action {
                Action::BecomeFollower { leader, epoch } => match image.broker(leader) {
                    Some(b) => self
                        .fetchers
                        .add(p.clone(), leader, format!("{}:{}", b.host, b.port), epoch),
                    None => warn!(topic = %p.topic, partition = p.index, leader, "leader is not a registered broker"),
                },
                Action::BecomeLeader { .. } | Action::Offline => self.fetchers.remove(&p.topic, p.index),
                Action::HighWatermark(_) | Action::ProposeIsr { .. } => {}
            }
        }
    }

    pub(crate) fn get(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        // A (String, i32) key needs an owned String to look up; topic names are short.
        self.partitions
            .read()
            .expect("partitions lock")
            .get(&(topic.to_string(), index))
            .cloned()
    }

    /// The partition if this node leads it, or the Kafka-shaped reason it cannot be served
    /// here: led by another broker (or by none), or not a partition at all.
    pub(crate) fn require(&self, topic: &str, index: i32) -> Result<Arc<Partition>, ReplicaError> {
        if let Some(p) = self.leading(topic, index) {
            return Ok(p);
        }
        let known = self.in_image(topic, index);
        let (topic, partition) = (topic.to_string(), index);
        Err(if known {
            ReplicaError::NotLeader { topic, partition }
        } else {
            ReplicaError::UnknownTopicOrPartition { topic, partition }
        })
    }

    /// Whether the partition exists, per the image of the last reconcile.
    fn in_image(&self, topic: &str, index: i32) -> bool {
        self.image
            .read()
            .expect("image lock")
            .topic(topic)
            .is_some_and(|t| t.partitions.contains_key(&index))
    }

    /// Whether the topic exists, per the image of the last reconcile.
    pub(crate) fn knows_topic(&self, topic: &str) -> bool {
        self.image.read().expect("image lock").topic(topic).is_some()
    }

    /// The partition, if this node hosts it and leads it.
    pub(crate) fn leading(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.get(topic, index).filter(|p| p.is_leader())
    }

    /// The log directories, in `log.dirs` order.
    pub(crate) fn log_dirs(&self) -> &[LogDir] {
        self.logs.dirs()
    }

    /// The hosted partitions, split by the log directory their log is in (in `log.dirs`
    /// order); a partition whose log is closed or deleted is in none.
    pub(crate) fn partitions_by_dir(&self) -> Vec<Vec<Arc<Partition>>> {
        let mut out: Vec<Vec<Arc<Partition>>> = self.logs.dirs().iter().map(|_| Vec::new()).collect();
        for p in self.all() {
            if let Some(i) = self.dir_index(&p) {
                out[i].push(p);
            }
        }
        out
    }

    /// The index of the log dir the partition's log is in.
    fn dir_index(&self, p: &Partition) -> Option<usize> {
        if self.logs.dirs().len() == 1 {
            return Some(0).filter(|_| p.has_log());
        }
        p.with_log(|log| Ok(self.logs.index_of(log.dir()))).ok().flatten()
    }

    /// AlterReplicaLogDirs for one replica: `dir` (a path as the client sent it) must be one of
    /// the log dirs. A hosted replica starts moving there in the background (nothing happens
    /// if it is there already); one of a partition in the image but not hosted here yet gets
    /// `dir` as its preferred log dir and the answer REPLICA_NOT_AVAILABLE, as in Kafka (the
    /// reassignment tool asks again until the replica exists).
    pub(crate) fn alter_log_dir(&self, topic: &str, index: i32, dir: &str) -> Result<(), ReplicaError> {
        let wanted = std::path::absolute(dir).unwrap_or_else(|_| PathBuf::from(dir));
        let target = self
            .logs
            .dirs()
            .iter()
            .position(|d| std::path::absolute(d.path()).is_ok_and(|p| p == wanted))
            .ok_or_else(|| ReplicaError::LogDirNotFound(dir.to_string()))?;
        let not_available = || ReplicaError::ReplicaNotAvailable {
            topic: topic.to_string(),
            partition: index,
        };
        let Some(p) = self.get(topic, index) else {
            if !self.in_image(topic, index) {
                return Err(ReplicaError::UnknownTopicOrPartition {
                    topic: topic.to_string(),
                    partition: index,
                });
            }
            self.preferred_dirs
                .lock()
                .expect("preferred dirs lock")
                .insert((topic.to_string(), index), target);
            return Err(not_available());
        };
        let current = self.dir_index(&p).ok_or_else(not_available)?;
        self.moves.request(p, target, current);
        Ok(())
    }

    /// The future replicas AlterReplicaLogDirs is building, for DescribeLogDirs.
    pub(crate) fn future_replicas(&self) -> Vec<FutureReplica> {
        self.moves.futures()
    }

    /// How many hosted partitions each log directory holds (placement of new ones). With one
    /// log dir there is no choice to make, and no reason to visit every partition (creating
    /// many partitions would cost the square of their number).
    fn partitions_per_dir(&self) -> Vec<usize> {
        if self.logs.dirs().len() == 1 {
            return Vec::new();
        }
        self.partitions_by_dir().iter().map(Vec::len).collect()
    }

    pub(crate) fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .expect("partitions lock")
            .values()
            .cloned()
            .collect()
    }

    /// Partitions this broker follows, per leader.
    pub(crate) fn followed(&self) -> Vec<(i32, usize)> {
        self.fetchers.followed()
    }

    /// Time-based upkeep: lagging followers out of the ISR, fsync when due, roll idle segments
    /// past segment.ms.
    pub(crate) fn tick(&self, now_ms: i64) {
        // A replica changed log dir: both dirs' checkpoints must say so before a crash does.
        if self.moves.take_swapped() {
            if let Err(e) = self.checkpoint() {
                warn!(error = %e, "checkpoint after a log dir move failed");
            }
        }
        for p in self.all() {
            p.tick(now_ms);
            let r = p.with_log(|log| {
                log.flush_if_due(now_ms)?;
                log.roll_if_due(now_ms)?;
                Ok(())
            });
            log_failure(&p, "log upkeep", r);
        }
    }

    /// Forgets idempotent producers idle longer than producer.id.expiration.ms.
    pub(crate) fn expire_producers(&self, now_ms: i64) {
        let max_idle = i64::from(self.settings.producer_id_expiration_ms);
        for p in self.all() {
            let r = p.with_log(|log| Ok(log.expire_producers(now_ms, max_idle)));
            log_failure(&p, "producer expiry", r);
        }
    }

    /// Deletes segments past retention.
    pub(crate) fn enforce_retention(&self, now_ms: i64) {
        for p in self.all() {
            let r = p.with_log(|log| Ok(log.enforce_retention(now_ms)?));
            if let Ok(n) = r.as_ref() {
                if *n > 0 {
                    info!(topic = %p.topic, partition = p.index, segments = n, "retention deleted segments");
                }
            }
            log_failure(&p, "retention", r);
        }
    }

    /// fsyncs every partition with unflushed data and writes the recovery-point checkpoint, so
    /// a restart after a crash rescans only what came after. The fsync of segment data runs
    /// outside each partition's lock: a minute of appends can take seconds to sync, and
    /// producers and fetches of that partition must not wait for it.
    pub(crate) fn checkpoint(&self) -> Result<(), LogError> {
        let mut points = Vec::new();
        for p in self.all() {
            let released = p.with_log(|log| {
                log.release_read_maps();
                Ok(())
            });
            log_failure(&p, "release read maps", released);
            match p.flush_unlocked() {
                Ok(point) => points.extend(p.log_dir().map(|d| (d, (p.topic.clone(), p.index, point)))),
                Err(e) => log_failure::<()>(&p, "flush for checkpoint", Err(e)),
            }
        }
        self.logs.write_recovery_checkpoints(points)?;
        self.checkpoint_log_starts()?;
        self.checkpoint_high_watermarks()
    }

    /// Writes `log-start-offset-checkpoint`: the partitions whose log start lies inside their
    /// first segment (DeleteRecords), so a restart does not show what was deleted.
    pub(crate) fn checkpoint_log_starts(&self) -> Result<(), LogError> {
        let starts: Vec<_> = self
            .all()
            .iter()
            .filter_map(|p| {
                let start = p.with_log(|log| {
                    let dir = log.dir().to_path_buf();
                    Ok(log.log_start_inside_segment().then(|| (dir, log.log_start_offset())))
                });
                start.ok().flatten().map(|(d, s)| (d, (p.topic.clone(), p.index, s)))
            })
            .collect();
        self.logs.write_log_starts(starts)
    }

    /// Writes `replication-offset-checkpoint`: where each partition's committed data ends, so a
    /// restart never exposes what was not committed (`replica.high.watermark.checkpoint.interval.ms`).
    pub(crate) fn checkpoint_high_watermarks(&self) -> Result<(), LogError> {
        let marks: Vec<_> = self
            .all()
            .iter()
            .filter_map(|p| Some((p.log_dir()?, (p.topic.clone(), p.index, p.high_watermark()))))
            .collect();
        self.logs.write_high_watermarks(marks)
    }

    /// The log cleaner's counters, for the metrics.
    pub(crate) fn cleaner_stats(&self) -> Arc<CleanerStats> {
        self.cleaner.stats()
    }

    /// Clean shutdown: stop the log cleaner; checkpoint, flush and close every log; then, only
    /// if all of that worked, leave `clean_token` (this start's registration) as the log dir's
    /// clean-shutdown marker, which lets the controller trust this broker's logs when it comes
    /// back (KIP-966's clean shutdown). Returns whether the marker was left.
    pub(crate) fn shutdown(&self, clean_token: &str) -> Result<bool, LogError> {
        self.cleaner.shutdown();
        self.moves.shutdown();
        self.checkpoint()?;
        let mut all_closed = true;
        for p in self.all() {
            let closed = p.close();
            all_closed &= matches!(closed, Ok(()) | Err(ReplicaError::UnknownTopicOrPartition { .. }));
            log_failure(&p, "close", closed);
        }
        if all_closed {
            // Every directory gets the marker; the next start trusts the stop only if all have it.
            for dir in self.logs.dirs() {
                clean_shutdown::mark(dir.path(), clean_token)?;
            }
        }
        Ok(all_closed)
    }
}

fn cleaner_config(s: &Settings) -> CleanerConfig {
    CleanerConfig {
        enabled: s.log_cleaner_enable,
        threads: s.log_cleaner_threads.max(0) as usize,
        dedupe_buffer_bytes: s.log_cleaner_dedupe_buffer_size.max(0) as u64,
        load_factor: s.log_cleaner_io_buffer_load_factor,
        io_buffer_bytes: s.log_cleaner_io_buffer_size.max(1) as usize,
        io_max_bytes_per_second: s.log_cleaner_io_max_bytes_per_second,
        backoff: std::time::Duration::from_millis(s.log_cleaner_backoff_ms.max(0) as u64),
    }
}

fn fetcher_config(s: &Settings) -> FetcherConfig {
    FetcherConfig {
        node_id: s.node_id,
        max_bytes: s.replica_fetch_response_max_bytes,
        partition_max_bytes: s.replica_fetch_max_bytes,
        wait_max_ms: s.replica_fetch_wait_max_ms,
        min_bytes: s.replica_fetch_min_bytes,
        backoff: std::time::Duration::from_millis(s.replica_fetch_backoff_ms as u64),
        fetchers_per_broker: s.num_replica_fetchers as usize,
    }
}

fn log_failure<T>(p: &Partition, what: &str, r: Result<T, ReplicaError>) {
    match r {
        Ok(_) | Err(ReplicaError::UnknownTopicOrPartition { .. }) => {}
        Err(e) => warn!(topic = %p.topic, partition = p.index, error = %e, "{what} failed"),
    }
}
