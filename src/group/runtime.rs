//! The async shell around the pure group core: one shard per `__consumer_offsets` partition
//! this broker hosts, each holding its `GroupCoordinatorState` behind a lock, the requests
//! parked until the core answers them, and the timers the core asked for.
//!
//! The only part of `group` that does I/O. It runs the core's actions in order: answers go to
//! the parked request, records are appended to the shard's partition through the replica
//! layer, timers become tokio sleeps that feed `Event::TimerFired`. The lock is never held
//! across an await.
//!
//! An append counts as persisted once it is committed — the partition's high watermark passed
//! it, so every ISR member has it — within `offsets.commit.timeout.ms`, as Kafka's coordinator
//! answers only then. A shard's appends are reported to the core (`Event::Persisted`) strictly
//! in the order they were made, by one committer task per shard.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use kafka_protocol::ResponseError;
use tokio::sync::{oneshot, Notify};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::api::{Action, Event, RawRecord, RequestId, Response, TimerKey};
use super::config::GroupConfig;
use super::coordinator::{handle, GroupCoordinatorState};
use super::replay;
use crate::clock::now_ms;
use crate::error::KafkaCode;
use crate::internal_batch;
use crate::log::BatchHeader;
use crate::replica::{Appended, Appender, Partition, ReplicaError, ReplicaManager};

/// Kafka's name for the topic that holds group metadata and committed offsets.
pub(crate) const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Bytes read per step when loading a partition.
const LOAD_READ_BYTES: usize = 1 << 20;

/// Every shard this broker hosts, by `__consumer_offsets` partition.
#[derive(Debug)]
pub(crate) struct GroupCoordinator {
    config: GroupConfig,
    /// `offsets.topic.num.partitions`: a group's shard is `partition_for(group, this)`.
    pub(crate) partitions: i32,
    shards: RwLock<HashMap<i32, Arc<Shard>>>,
    /// `offsets.commit.timeout.ms`.
    commit_timeout: Duration,
    /// Whether `__consumer_offsets` exists (per the last reconcile): if so, a group whose
    /// partition is not led here has a coordinator elsewhere.
    offsets_topic_exists: AtomicBool,
}

/// Why a group request cannot be served here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unavailable {
    /// `__consumer_offsets` does not exist yet: FindCoordinator creates it.
    NotAvailable,
    /// This broker does not host the group's partition.
    NotCoordinator,
}

impl Unavailable {
    pub(crate) fn error(self) -> ResponseError {
        match self {
            Unavailable::NotAvailable => ResponseError::CoordinatorNotAvailable,
            Unavailable::NotCoordinator => ResponseError::NotCoordinator,
        }
    }
}

impl GroupCoordinator {
    pub(crate) fn new(config: GroupConfig, partitions: i32, commit_timeout: Duration) -> GroupCoordinator {
        GroupCoordinator {
            config,
            partitions,
            commit_timeout,
            shards: RwLock::new(HashMap::new()),
            offsets_topic_exists: AtomicBool::new(false),
        }
    }

    /// The shard of `group_id`, if this broker hosts it.
    pub(crate) fn shard(&self, group_id: &str) -> Result<Arc<Shard>, Unavailable> {
        let partition = super::partition_for(group_id, self.partitions);
        let shards = self.shards.read().expect("shards lock");
        if shards.is_empty() && !self.offsets_topic_exists.load(Ordering::Acquire) {
            return Err(Unavailable::NotAvailable);
        }
        shards.get(&partition).cloned().ok_or(Unavailable::NotCoordinator)
    }

    pub(crate) fn shards(&self) -> Vec<Arc<Shard>> {
        self.shards.read().expect("shards lock").values().cloned().collect()
    }

    /// Loads a shard for every hosted `__consumer_offsets` partition not loaded yet, and lets
    /// go of those no longer hosted (their parked requests get NOT_COORDINATOR).
    pub(crate) fn reconcile(&self, replicas: &ReplicaManager) {
        self.offsets_topic_exists
            .store(replicas.knows_topic(OFFSETS_TOPIC), Ordering::Release);
        let hosted: HashMap<i32, Arc<Partition>> = (0..self.partitions)
            .filter_map(|p| replicas.leading(OFFSETS_TOPIC, p).map(|part| (p, part)))
            .collect();
        let (gone, new): (Vec<Arc<Shard>>, Vec<Arc<Partition>>) = {
            let shards = self.shards.read().expect("shards lock");
            let gone = shards
                .iter()
                .filter(|(p, s)| hosted.get(p).is_none_or(|h| !Arc::ptr_eq(h, &s.partition)))
                .map(|(_, s)| s.clone())
                .collect();
            let new = hosted
                .iter()
                .filter(|(p, h)| shards.get(p).is_none_or(|s| !Arc::ptr_eq(h, &s.partition)))
                .map(|(_, h)| h.clone())
                .collect();
            (gone, new)
        };
        for shard in gone {
            self.shards.write().expect("shards lock").remove(&shard.partition.index);
            shard.unload();
        }
        let (mut loaded, mut groups) = (0, 0);
        for partition in new {
            let index = partition.index;
            match Shard::load(
                self.config.clone(),
                partition,
                self.commit_timeout,
                replicas.appender().clone(),
            ) {
                Ok(shard) => {
                    loaded += 1;
                    groups += shard.query(|s| s.groups.len()).unwrap_or(0);
                    self.shards.write().expect("shards lock").insert(index, shard);
                }
                Err(e) => warn!(partition = index, error = %e, "cannot load group coordinator partition"),
            }
        }
        if loaded > 0 {
            info!(partitions = loaded, groups, "group coordinator partitions loaded");
        }
    }
}

/// The groups of one `__consumer_offsets` partition.
#[derive(Debug)]
pub(crate) struct Shard {
    partition: Arc<Partition>,
    inner: Mutex<ShardInner>,
    /// How long an append may take to be committed by the ISR.
    commit_timeout: Duration,
    /// Where appends run: the log writer lane of this shard's partition, in the order made.
    appender: Arc<Appender>,
    /// Wakes the committer when an append joins `commits`.
    commit_added: Notify,
}

#[derive(Debug)]
struct ShardInner {
    /// `None` once unloaded: requests then get NOT_COORDINATOR.
    state: Option<GroupCoordinatorState>,
    parked: HashMap<RequestId, oneshot::Sender<Response>>,
    timers: HashMap<TimerKey, AbortHandle>,
    next_request: RequestId,
    /// Appends not yet reported to the core, oldest first.
    commits: VecDeque<PendingCommit>,
}

/// An append on its way (on a log writer thread), then waiting to be committed.
#[derive(Debug)]
struct PendingCommit {
    token: u64,
    appended: oneshot::Receiver<Result<Appended, ResponseError>>,
    deadline: Instant,
}

/// Why a shard could not be loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    #[error("record batch at offset {offset} does not decode: {reason}")]
    Decode { offset: i64, reason: String },
    #[error("group record: {0:?}")]
    Record(super::records::RecordError),
}

impl Shard {
    fn load(
        config: GroupConfig,
        partition: Arc<Partition>,
        commit_timeout: Duration,
        appender: Arc<Appender>,
    ) -> Result<Arc<Shard>, LoadError> {
        let records = read_records(&partition)?;
        let count = records.len();
        let seed = uuid::Uuid::new_v4().as_u64_pair().0;
        let loaded = replay::load(config, seed, now_ms(), records).map_err(LoadError::Record)?;
        debug!(
            partition = partition.index,
            records = count,
            skipped = loaded.skipped_records,
            groups = loaded.state.groups.len(),
            "group coordinator partition loaded"
        );
        let shard = Arc::new(Shard {
            partition,
            inner: Mutex::new(ShardInner {
                state: Some(loaded.state),
                parked: HashMap::new(),
                timers: HashMap::new(),
                next_request: 0,
                commits: VecDeque::new(),
            }),
            commit_timeout,
            appender,
            commit_added: Notify::new(),
        });
        tokio::spawn(committer(Arc::downgrade(&shard)));
        shard.run_actions(loaded.actions);
        Ok(shard)
    }

    fn unload(&self) {
        let actions = {
            let mut inner = self.inner.lock().expect("shard lock");
            inner.timers.drain().for_each(|(_, t)| t.abort());
            inner.state.take().map(replay::unload).unwrap_or_default()
        };
        let mut inner = self.inner.lock().expect("shard lock");
        for action in actions {
            if let Action::Respond { req, response } = action {
                if let Some(tx) = inner.parked.remove(&req) {
                    let _ = tx.send(response);
                }
            }
        }
    }

    /// Runs a request through the core; the receiver gets its answer (maybe much later, e.g.
    /// a JoinGroup parked until the rebalance completes). `None` if the shard is unloaded.
    pub(crate) fn request(
        self: &Arc<Self>,
        build: impl FnOnce(RequestId) -> Event,
    ) -> Option<oneshot::Receiver<Response>> {
        let (tx, rx) = oneshot::channel();
        let event = {
            let mut inner = self.inner.lock().expect("shard lock");
            inner.state.as_ref()?;
            inner.next_request += 1;
            let req = inner.next_request;
            inner.parked.insert(req, tx);
            build(req)
        };
        self.run(event);
        Some(rx)
    }

    /// Tells the core about an event no client waits on (e.g. partitions deleted).
    pub(crate) fn notify(self: &Arc<Self>, event: Event) {
        self.run(event);
    }

    /// A read-only look at the state (ListGroups, DescribeGroups, OffsetFetch).
    pub(crate) fn query<T>(&self, f: impl FnOnce(&GroupCoordinatorState) -> T) -> Option<T> {
        self.inner.lock().expect("shard lock").state.as_ref().map(f)
    }

    fn run(self: &Arc<Self>, event: Event) {
        let actions = {
            let mut inner = self.inner.lock().expect("shard lock");
            match inner.state.as_mut() {
                Some(state) => handle(state, now_ms(), event),
                None => return,
            }
        };
        self.run_actions(actions);
    }

    /// Runs actions in order; the result of each append is fed back to the core at once, and
    /// the actions that produces run after those already queued.
    fn run_actions(self: &Arc<Self>, actions: Vec<Action>) {
        let mut queue = VecDeque::from(actions);
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Respond { req, response } => {
                    let tx = self.inner.lock().expect("shard lock").parked.remove(&req);
                    if let Some(tx) = tx {
                        // The client may have gone away; its answer then has nowhere to go.
                        let _ = tx.send(response);
                    }
                }
                Action::Persist { token, records } => {
                    let deadline = Instant::now() + self.commit_timeout;
                    let partition = self.partition.clone();
                    let lane = self.partition.index as u64;
                    let appended = self.appender.run(lane, move || append(&partition, &records));
                    self.inner.lock().expect("shard lock").commits.push_back(PendingCommit {
                        token,
                        appended,
                        deadline,
                    });
                    self.commit_added.notify_one();
                }
                Action::ScheduleTimer { key, at_ms } => self.schedule(key, at_ms),
                Action::CancelTimer { key } => {
                    if let Some(t) = self.inner.lock().expect("shard lock").timers.remove(&key) {
                        t.abort();
                    }
                }
            }
        }
    }

    fn schedule(self: &Arc<Self>, key: TimerKey, at_ms: i64) {
        let delay = Duration::from_millis(at_ms.saturating_sub(now_ms()).max(0) as u64);
        let shard = Arc::downgrade(self);
        let fired = key.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(shard) = shard.upgrade() {
                shard.inner.lock().expect("shard lock").timers.remove(&fired);
                shard.run(Event::TimerFired { key: fired });
            }
        });
        if let Some(old) = self
            .inner
            .lock()
            .expect("shard lock")
            .timers
            .insert(key, task.abort_handle())
        {
            old.abort();
        }
    }
}

/// Appends the records as one batch to a shard's partition (on a log writer thread);
/// committing it is the committer's wait (as Kafka's coordinator, which appends with acks=1
/// and answers at the high watermark, so min ISR never refuses it up front).
fn append(partition: &Partition, records: &[RawRecord]) -> Result<Appended, ResponseError> {
    let mut batch = internal_batch::encode(records.iter().map(|(k, v)| (Some(k), v.as_ref())), now_ms());
    match partition.append_as_leader(&mut batch, false, now_ms()) {
        Ok(appended) => Ok(appended),
        Err(ReplicaError::UnknownTopicOrPartition { .. }) => Err(ResponseError::NotLeaderOrFollower),
        Err(e) => {
            warn!(partition = partition.index, error = %e, "group coordinator append failed");
            Err(e.kafka_error())
        }
    }
}

/// Reports a shard's appends to its core in order, each once it is committed (or failed, or
/// timed out). Ends when the shard is unloaded or dropped.
async fn committer(shard: std::sync::Weak<Shard>) {
    loop {
        let Some(s) = shard.upgrade() else {
            return;
        };
        let next = {
            let mut inner = s.inner.lock().expect("shard lock");
            if inner.state.is_none() {
                return;
            }
            inner.commits.pop_front()
        };
        let Some(pending) = next else {
            // Woken by each append (notify_one keeps a wake-up given before this waits); the
            // timeout lets go of an unloaded shard.
            tokio::select! {
                _ = s.commit_added.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        };
        let appended = pending
            .appended
            .await
            .unwrap_or(Err(ResponseError::CoordinatorNotAvailable));
        let result = match appended {
            Err(e) => Err(e),
            Ok(appended) => match s.partition.await_committed(&appended, pending.deadline).await {
                Ok(()) => Ok(()),
                Err(ReplicaError::NotLeader { .. } | ReplicaError::UnknownTopicOrPartition { .. }) => {
                    Err(ResponseError::NotLeaderOrFollower)
                }
                Err(e) => Err(e.kafka_error()),
            },
        };
        s.run(Event::Persisted {
            token: pending.token,
            result,
        });
    }
}

/// Every record of the partition in log order, skipping control and transactional batches.
/// Up to the log end, not only the committed part: a new leader's log holds what its
/// predecessor committed and more that it will commit itself (Kafka's loader does the same).
/// The partition is compacted: offsets have gaps, and a batch may hold no record at all (the
/// cleaner keeps a producer's last batch), so the reading goes on after each batch's last
/// offset, not after its last record.
fn read_records(partition: &Partition) -> Result<Vec<RawRecord>, LoadError> {
    let mut out = Vec::new();
    let mut offset = partition.log_start_offset();
    let end = partition.log_end_offset();
    while offset < end {
        let mut bytes: Bytes = partition.with_log(|log| Ok(log.read(offset, LOAD_READ_BYTES, i64::MAX, true)?))?;
        if bytes.is_empty() {
            break;
        }
        let decode_error = |reason: String| LoadError::Decode { offset, reason };
        let next = next_offset_after(&bytes).map_err(|e| decode_error(e.to_string()))?;
        let sets = RecordBatchDecoder::decode_all(&mut bytes).map_err(|e| decode_error(e.to_string()))?;
        offset = offset.max(next);
        for record in sets.into_iter().flat_map(|s| s.records) {
            offset = offset.max(record.offset + 1);
            if record.control || record.transactional {
                continue;
            }
            if let Some(key) = record.key {
                out.push((key, record.value));
            }
        }
    }
    Ok(out)
}

/// The offset after the last batch of `bytes` (whole batches, as a log read returns them).
fn next_offset_after(bytes: &[u8]) -> Result<i64, crate::log::LogError> {
    let mut position = 0;
    let mut next = -1;
    while position < bytes.len() {
        let header = BatchHeader::parse(&bytes[position..])?;
        next = header.next_offset();
        position += header.size_bytes();
    }
    Ok(next)
}
