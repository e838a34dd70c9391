//! One partition replica: its log, leader epoch, high watermark and fetch waiters.
//!
//! The log sits behind a `Mutex` held only for the synchronous append or read (never across an
//! await). Offsets that readers poll without the lock (log start/end, high watermark, size) are
//! mirrored in atomics after every change.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use kafka_protocol::records::Compression;
use tokio::sync::Notify;
use uuid::Uuid;

use super::recompress::{recompress, topic_codec};
use super::ReplicaError;
use crate::log::{AppendInfo, Log, LogConfig};

/// Stale fetch waiters are pruned once the list grows past this; it bounds the list on idle partitions.
const WAITERS_PRUNE_AT: usize = 64;

#[derive(Debug)]
pub(crate) struct Partition {
    pub(crate) topic: String,
    pub(crate) index: i32,
    pub(crate) topic_id: Uuid,
    node_id: i32,
    /// `None` once the partition has been deleted; in-flight requests then see "unknown".
    log: Mutex<Option<Log>>,
    leader_epoch: AtomicI32,
    /// Whether this node leads the partition (per the last metadata image); only a leader
    /// takes produce and serves fetches.
    leader: AtomicBool,
    high_watermark: AtomicI64,
    log_start_offset: AtomicI64,
    log_end_offset: AtomicI64,
    size_bytes: AtomicU64,
    min_insync_replicas: AtomicI32,
    /// The topic's compression.type codec; `None` keeps the producer's batches as sent.
    recompress_to: Mutex<Option<Compression>>,
    isr: Mutex<Vec<i32>>,
    waiters: Mutex<Vec<Weak<Notify>>>,
}

/// What a fetch gets from one partition.
#[derive(Debug, Clone)]
pub(crate) struct ReadResult {
    pub(crate) records: Bytes,
    pub(crate) high_watermark: i64,
    pub(crate) log_start_offset: i64,
}

impl Partition {
    pub(crate) fn new(
        topic: String,
        index: i32,
        topic_id: Uuid,
        node_id: i32,
        log: Log,
        leader_epoch: i32,
    ) -> Partition {
        let p = Partition {
            topic,
            index,
            topic_id,
            node_id,
            log: Mutex::new(None),
            leader_epoch: AtomicI32::new(leader_epoch),
            leader: AtomicBool::new(false),
            high_watermark: AtomicI64::new(0),
            log_start_offset: AtomicI64::new(0),
            log_end_offset: AtomicI64::new(0),
            size_bytes: AtomicU64::new(0),
            min_insync_replicas: AtomicI32::new(1),
            recompress_to: Mutex::new(None),
            isr: Mutex::new(vec![node_id]),
            waiters: Mutex::new(Vec::new()),
        };
        p.publish_offsets(&log);
        // A lone leader's replica set is its ISR, so everything it holds is committed.
        p.high_watermark.store(log.log_end_offset(), Ordering::Release);
        *p.log.lock().expect("partition log lock") = Some(log);
        p
    }

    pub(crate) fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    pub(crate) fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }

    /// Follows the metadata: leader or not, at which epoch. Fetchers parked on a partition
    /// that stopped being led here are woken so they answer with the new state.
    pub(crate) fn set_leadership(&self, leader: bool, epoch: i32) {
        self.leader_epoch.store(epoch, Ordering::Release);
        if self.leader.swap(leader, Ordering::AcqRel) && !leader {
            self.wake_waiters();
        }
    }

    pub(crate) fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    pub(crate) fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }

    pub(crate) fn log_end_offset(&self) -> i64 {
        self.log_end_offset.load(Ordering::Acquire)
    }

    pub(crate) fn size_bytes(&self) -> u64 {
        self.size_bytes.load(Ordering::Acquire)
    }

    pub(crate) fn set_min_insync_replicas(&self, n: i32) {
        self.min_insync_replicas.store(n, Ordering::Release);
    }

    /// Sets the topic's `compression.type`.
    pub(crate) fn set_compression_type(&self, compression_type: &str) {
        *self.recompress_to.lock().expect("codec lock") = topic_codec(compression_type);
    }

    /// Runs `f` on the log, or reports the partition as not hosted once it has been deleted.
    pub(crate) fn with_log<T>(&self, f: impl FnOnce(&mut Log) -> Result<T, ReplicaError>) -> Result<T, ReplicaError> {
        let mut guard = self.log.lock().expect("partition log lock");
        let log = guard.as_mut().ok_or_else(|| self.unknown())?;
        let out = f(log);
        self.publish_offsets(log);
        out
    }

    fn unknown(&self) -> ReplicaError {
        ReplicaError::UnknownTopicOrPartition {
            topic: self.topic.clone(),
            partition: self.index,
        }
    }

    fn publish_offsets(&self, log: &Log) {
        self.log_start_offset.store(log.log_start_offset(), Ordering::Release);
        self.log_end_offset.store(log.log_end_offset(), Ordering::Release);
        self.size_bytes.store(log.size_bytes(), Ordering::Release);
    }

    /// Leader append: checks the ISR against min.insync.replicas when `acks=all`, appends,
    /// advances the high watermark and wakes the fetches waiting on this partition.
    pub(crate) fn append_as_leader(
        &self,
        batches: &mut [u8],
        require_isr: bool,
        now_ms: i64,
    ) -> Result<AppendInfo, ReplicaError> {
        if require_isr {
            let isr = self.isr.lock().expect("isr lock").len();
            let min = self.min_insync_replicas.load(Ordering::Acquire);
            if (isr as i32) < min {
                return Err(ReplicaError::NotEnoughReplicas { isr, min });
            }
        }
        let epoch = self.leader_epoch();
        let target = *self.recompress_to.lock().expect("codec lock");
        let mut rewritten = match target {
            Some(codec) => {
                // As Kafka: the batch as received is checked (size, CRC) before it is rewritten,
                // and the rewritten one again by the append.
                let max_message_bytes = self.with_log(|log| Ok(log.validate(batches)?))?;
                recompress(batches, codec, max_message_bytes)?
            }
            None => None,
        };
        let batches = match rewritten.as_mut() {
            Some(r) => &mut r[..],
            None => batches,
        };
        let info = self.with_log(|log| Ok(log.append(batches, epoch, now_ms)?))?;
        self.advance_high_watermark();
        self.wake_waiters();
        Ok(info)
    }

    /// The high watermark is the smallest log end over the ISR; alone in it, ours.
    fn advance_high_watermark(&self) {
        debug_assert_eq!(*self.isr.lock().expect("isr lock"), vec![self.node_id]);
        self.high_watermark.fetch_max(self.log_end_offset(), Ordering::AcqRel);
    }

    /// Reads committed batches (below the high watermark) from `offset`.
    pub(crate) fn read(&self, offset: i64, max_bytes: usize, min_one: bool) -> Result<ReadResult, ReplicaError> {
        let high_watermark = self.high_watermark();
        let records = self.with_log(|log| Ok(log.read(offset, max_bytes, high_watermark, min_one)?))?;
        Ok(ReadResult {
            records,
            high_watermark,
            log_start_offset: self.log_start_offset(),
        })
    }

    /// Registers a long-poll fetch to be woken by the next append.
    pub(crate) fn add_waiter(&self, waiter: &Arc<Notify>) {
        let mut waiters = self.waiters.lock().expect("waiters lock");
        if waiters.len() >= WAITERS_PRUNE_AT {
            waiters.retain(|w| w.strong_count() > 0);
        }
        waiters.push(Arc::downgrade(waiter));
    }

    fn wake_waiters(&self) {
        let waiters = std::mem::take(&mut *self.waiters.lock().expect("waiters lock"));
        for w in waiters.iter().filter_map(Weak::upgrade) {
            w.notify_one();
        }
    }

    pub(crate) fn update_config(
        &self,
        config: LogConfig,
        min_insync_replicas: i32,
        compression_type: &str,
    ) -> Result<(), ReplicaError> {
        self.set_min_insync_replicas(min_insync_replicas);
        self.set_compression_type(compression_type);
        self.with_log(|log| {
            log.update_config(config);
            Ok(())
        })
    }

    /// Flushes the log with its fsyncs outside the log lock; returns the recovery point.
    pub(crate) fn flush_unlocked(&self) -> Result<i64, ReplicaError> {
        let Some(pending) = self.with_log(|log| Ok(log.begin_flush()?))? else {
            return self.with_log(|log| Ok(log.recovery_point()));
        };
        let synced = pending.sync();
        self.with_log(|log| {
            log.end_flush(pending.upto, synced.is_ok());
            Ok(log.recovery_point())
        })
        .and_then(|point| synced.map(|_| point).map_err(ReplicaError::from))
    }

    /// Takes the log out (later calls see the partition as unknown) and deletes it from disk.
    pub(crate) fn delete(&self) -> Result<(), ReplicaError> {
        let log = self.log.lock().expect("partition log lock").take();
        self.wake_waiters();
        match log {
            Some(log) => Ok(log.delete()?),
            None => Ok(()),
        }
    }

    /// Flushes and closes the log (shutdown).
    pub(crate) fn close(&self) -> Result<(), ReplicaError> {
        match self.log.lock().expect("partition log lock").take() {
            Some(log) => Ok(log.close()?),
            None => Ok(()),
        }
    }
}
