//! The set of partitions this broker hosts, kept in step with the metadata image, plus the
//! periodic log upkeep (flush, roll, retention, recovery-point checkpoint).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use tracing::{error, info, warn};

use super::partition::Partition;
use super::ReplicaError;
use crate::config::Settings;
use crate::log::{Log, LogError, LogManager, VolumeSpace};
use crate::metadata::{topic_config, MetadataImage, TopicImage, METADATA_TOPIC};

type Key = (String, i32);

#[derive(Debug)]
pub(crate) struct ReplicaManager {
    node_id: i32,
    settings: Arc<Settings>,
    logs: LogManager,
    partitions: RwLock<HashMap<Key, Arc<Partition>>>,
    /// The image of the last reconcile: tells "led elsewhere" from "no such partition".
    image: RwLock<Arc<MetadataImage>>,
    needs_reconcile: AtomicBool,
}

impl ReplicaManager {
    /// Opens (and recovers) every partition log on disk that the image says this node hosts;
    /// directories of partitions the image does not have are set aside as `-stray`.
    pub(crate) fn open(
        settings: Arc<Settings>,
        log_dir: &Path,
        image: &MetadataImage,
    ) -> Result<ReplicaManager, LogError> {
        let logs = LogManager::open(log_dir)?;
        let config_for = |topic: &str| {
            if topic == METADATA_TOPIC {
                return None;
            }
            let overrides = image.topic(topic).map(|t| t.configs.clone()).unwrap_or_default();
            Some(topic_config::log_config(&settings, &overrides))
        };
        let loaded = logs.load_all(config_for)?;
        let manager = ReplicaManager {
            node_id: settings.node_id,
            settings: settings.clone(),
            logs,
            partitions: RwLock::new(HashMap::new()),
            image: RwLock::default(),
            needs_reconcile: AtomicBool::new(false),
        };
        let mut map = HashMap::new();
        let (mut scanned, mut truncated) = (0u64, 0u64);
        for (topic, index, log) in loaded {
            let stats = log.recovery_stats();
            scanned += stats.batches_scanned;
            truncated += stats.bytes_truncated;
            match image.topic(&topic).filter(|t| manager.hosts(t, index)) {
                Some(t) => {
                    let p = manager.partition_for(t, index, log);
                    map.insert((topic, index), Arc::new(p));
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

    fn hosts(&self, topic: &TopicImage, index: i32) -> bool {
        topic
            .partitions
            .get(&index)
            .is_some_and(|p| p.replicas.contains(&self.node_id))
    }

    fn partition_for(&self, topic: &TopicImage, index: i32, log: Log) -> Partition {
        let epoch = topic.partitions.get(&index).map_or(0, |p| p.leader_epoch);
        let p = Partition::new(topic.name.clone(), index, topic.id, self.node_id, log, epoch);
        self.follow_leadership(topic, index, &p);
        p.set_min_insync_replicas(topic_config::min_insync_replicas(&self.settings, &topic.configs));
        p.set_compression_type(topic_config::compression_type(&self.settings, &topic.configs));
        p
    }

    fn follow_leadership(&self, topic: &TopicImage, index: i32, p: &Partition) {
        if let Some(meta) = topic.partitions.get(&index) {
            p.set_leadership(meta.leader == self.node_id, meta.leader_epoch);
        }
    }

    /// Brings the hosted partitions in line with the image: creates logs for new partitions,
    /// deletes those of removed (or deleted and re-created) topics, applies config changes
    /// and leadership.
    pub(crate) fn reconcile(&self, image: &MetadataImage) -> Result<(), LogError> {
        *self.image.write().expect("image lock") = Arc::new(image.clone());
        let mut wanted = HashSet::new();
        let mut first_failure = None;
        let mut failures = 0;
        for topic in image.topics() {
            for &index in topic.partitions.keys().filter(|i| self.hosts(topic, **i)) {
                wanted.insert((topic.name.clone(), index));
                // Keep going past a failure: one bad partition must not leave the rest missing.
                if let Err(e) = self.ensure(topic, index) {
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

    fn ensure(&self, topic: &TopicImage, index: i32) -> Result<(), LogError> {
        let config = topic_config::log_config(&self.settings, &topic.configs);
        let min_isr = topic_config::min_insync_replicas(&self.settings, &topic.configs);
        if let Some(p) = self.get(&topic.name, index) {
            if p.topic_id == topic.id {
                self.follow_leadership(topic, index, &p);
                if let Err(e) = p.update_config(
                    config,
                    min_isr,
                    topic_config::compression_type(&self.settings, &topic.configs),
                ) {
                    warn!(topic = %topic.name, partition = index, error = %e, "config not applied");
                }
                return Ok(());
            }
            // Same name, new id: the topic was deleted and re-created; the old data must go.
            self.partitions
                .write()
                .expect("partitions lock")
                .remove(&(topic.name.clone(), index));
            if let Err(e) = p.delete() {
                warn!(topic = %topic.name, partition = index, error = %e, "could not delete old partition log");
            }
        }
        let log = match self.logs.create(&topic.name, index, config.clone()) {
            // Left behind by an earlier attempt that failed half way: recover and adopt it.
            Err(LogError::AlreadyExists(dir)) => Log::open(&dir, config, 0)?,
            other => other?,
        };
        let p = Arc::new(self.partition_for(topic, index, log));
        self.partitions
            .write()
            .expect("partitions lock")
            .insert((topic.name.clone(), index), p);
        Ok(())
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
        let known = self
            .image
            .read()
            .expect("image lock")
            .topic(topic)
            .is_some_and(|t| t.partitions.contains_key(&index));
        let (topic, partition) = (topic.to_string(), index);
        Err(if known {
            ReplicaError::NotLeader { topic, partition }
        } else {
            ReplicaError::UnknownTopicOrPartition { topic, partition }
        })
    }

    /// Whether the topic exists, per the image of the last reconcile.
    pub(crate) fn knows_topic(&self, topic: &str) -> bool {
        self.image.read().expect("image lock").topic(topic).is_some()
    }

    /// The partition, if this node hosts it and leads it.
    pub(crate) fn leading(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.get(topic, index).filter(|p| p.is_leader())
    }

    /// The log directory every hosted partition lives in.
    pub(crate) fn log_dir(&self) -> &Path {
        self.logs.dir()
    }

    /// The total and usable bytes of the log directory's file system.
    pub(crate) fn volume_space(&self) -> Result<VolumeSpace, LogError> {
        self.logs.volume_space()
    }

    pub(crate) fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .expect("partitions lock")
            .values()
            .cloned()
            .collect()
    }

    /// Time-based upkeep: fsync when due, roll idle segments past segment.ms.
    pub(crate) fn tick(&self, now_ms: i64) {
        for p in self.all() {
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
                Ok(point) => points.push((p.topic.clone(), p.index, point)),
                Err(e) => log_failure::<()>(&p, "flush for checkpoint", Err(e)),
            }
        }
        self.logs.write_recovery_checkpoint(&points)
    }

    /// Clean shutdown: flush and close every log, then checkpoint their recovery points.
    pub(crate) fn shutdown(&self) -> Result<(), LogError> {
        self.checkpoint()?;
        for p in self.all() {
            log_failure(&p, "close", p.close());
        }
        Ok(())
    }
}

fn log_failure<T>(p: &Partition, what: &str, r: Result<T, ReplicaError>) {
    match r {
        Ok(_) | Err(ReplicaError::UnknownTopicOrPartition { .. }) => {}
        Err(e) => warn!(topic = %p.topic, partition = p.index, error = %e, "{what} failed"),
    }
}
