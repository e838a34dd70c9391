//! The async shell every coordinator core runs in: one shard per internal partition this
//! broker leads, each holding its core behind a lock, the requests parked until the core
//! answers them, and the timers the core asked for.
//!
//! The only part of a coordinator that does I/O. It runs the core's actions in order: answers
//! go to the parked request, writes are appended to the shard's partition through the replica
//! layer, timers become tokio sleeps that come back as the core's timer event, and effects (what
//! only one kind of coordinator does, such as sending transaction markers) go to the queue the
//! coordinator was built with. The lock is never held across an await.
//!
//! An append counts as persisted once it is committed — the partition's high watermark passed
//! it, so every ISR member has it — within the commit timeout, as Kafka's coordinators answer
//! only then. A shard's appends run on its partition's log writer lane in the order the core
//! made them, and are reported back to the core strictly in that order, by one committer task
//! per shard.

use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use kafka_protocol::ResponseError;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::clock::now_ms;
use crate::error::KafkaCode;
use crate::internal_batch;
use crate::replica::{Appended, Appender, Partition, ReplicaError, ReplicaManager};

/// The shell's handle for a request the core may answer later. Every request event is
/// answered exactly once.
pub(crate) type RequestId = u64;

/// One record of a coordinator's partition as bytes: (key, value), value `None` for a tombstone.
pub(crate) type RawRecord = (Bytes, Option<Bytes>);

/// Bytes read per step when loading a partition.
const LOAD_READ_BYTES: usize = 1 << 20;

/// What one append of a coordinator writes: one record batch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Write {
    /// Plain records.
    Records(Vec<RawRecord>),
    /// Records of a producer's transaction (TxnOffsetCommit): a transactional batch with the
    /// producer's id and epoch, which take effect only once its COMMIT marker follows.
    Transactional {
        producer_id: i64,
        producer_epoch: i16,
        records: Vec<RawRecord>,
    },
}

/// A record of a coordinator's partition, as a loading core sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LogRecord {
    /// A record; `producer_id` is set when it is part of a transaction.
    Data {
        key: Bytes,
        value: Option<Bytes>,
        producer_id: Option<i64>,
    },
    /// The COMMIT or ABORT marker of `producer_id`'s transaction.
    Marker { producer_id: i64, commit: bool },
}

/// What a core asks its shell to do, in order.
#[derive(Debug, Clone)]
pub(crate) enum Action<R, K, E> {
    /// Send the response of request `req`.
    Respond {
        req: RequestId,
        response: R,
    },
    /// Append `write` to the coordinator's partition, then report it back with the core's
    /// persisted event for `token`. Appends complete in the order they were asked.
    Persist {
        token: u64,
        write: Write,
    },
    /// Deliver the core's timer event for `key` at `at_ms` (replacing any timer of that key).
    ScheduleTimer {
        key: K,
        at_ms: i64,
    },
    CancelTimer {
        key: K,
    },
    /// Something only this kind of coordinator does; handed to the coordinator's effect queue.
    Effect(E),
}

/// The actions of core `C`.
pub(crate) type CoreAction<C> = Action<<C as Core>::Response, <C as Core>::TimerKey, <C as Core>::Effect>;

/// What a core knows about the partition it is loaded for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadContext {
    pub(crate) partition: i32,
    /// The partition's leader epoch at load: Kafka's coordinator epoch.
    pub(crate) coordinator_epoch: i32,
    /// Different at every load (the shell draws it), for ids the core makes up.
    pub(crate) seed: u64,
    pub(crate) now_ms: i64,
}

/// A coordinator's pure core: one per partition this broker leads.
pub(crate) trait Core: Debug + Send + Sized + 'static {
    type Event: Debug + Send + 'static;
    type Response: Debug + Send + 'static;
    type TimerKey: Debug + Clone + Eq + Hash + Send + Sync + 'static;
    type Effect: Debug + Send + 'static;
    type Config: Debug + Clone + Send + Sync + 'static;
    type LoadError: std::fmt::Display;
    /// The internal topic the core's state lives in.
    const TOPIC: &'static str;

    /// Rebuilds the core from its partition's records, in log order, and the actions to start with.
    fn load(
        config: Self::Config,
        ctx: LoadContext,
        records: Vec<LogRecord>,
    ) -> Result<(Self, Vec<CoreAction<Self>>), Self::LoadError>;
    /// Applies one event at `now_ms`.
    fn handle(&mut self, now_ms: i64, event: Self::Event) -> Vec<CoreAction<Self>>;
    /// Lets go of the partition: parked requests are answered, timers cancelled.
    fn unload(self) -> Vec<CoreAction<Self>>;
    /// The event that reports the append of `token` done.
    fn persisted(token: u64, result: Result<(), ResponseError>) -> Self::Event;
    /// The event of a timer that fired.
    fn timer_fired(key: Self::TimerKey) -> Self::Event;
}

/// An effect of a shard, with what identifies the shard that made it.
#[derive(Debug)]
pub(crate) struct ShardEffect<E> {
    pub(crate) partition: i32,
    pub(crate) coordinator_epoch: i32,
    pub(crate) effect: E,
}

/// Where a coordinator's shards send their effects. Unbounded: each entry stands for work the
/// core tracks in its own bounded state (one transaction waiting for its markers).
pub(crate) type EffectQueue<E> = mpsc::UnboundedSender<ShardEffect<E>>;

/// Why a coordinator request cannot be served here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unavailable {
    /// The internal topic does not exist yet: FindCoordinator creates it.
    NotAvailable,
    /// This broker does not lead the key's partition.
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

/// Every shard of one coordinator this broker hosts, by partition of its internal topic.
#[derive(Debug)]
pub(crate) struct Coordinator<C: Core> {
    config: C::Config,
    /// The internal topic's partition count: a key's shard is `partition_for(key, this)`.
    pub(crate) partitions: i32,
    shards: RwLock<HashMap<i32, Arc<Shard<C>>>>,
    /// How long an append may take to be committed by the ISR.
    commit_timeout: Duration,
    /// Whether the internal topic exists (per the last reconcile): if so, a key whose partition
    /// is not led here has a coordinator elsewhere.
    topic_exists: AtomicBool,
    effects: Option<EffectQueue<C::Effect>>,
}

impl<C: Core> Coordinator<C> {
    pub(crate) fn new(
        config: C::Config,
        partitions: i32,
        commit_timeout: Duration,
        effects: Option<EffectQueue<C::Effect>>,
    ) -> Coordinator<C> {
        Coordinator {
            config,
            partitions,
            commit_timeout,
            shards: RwLock::new(HashMap::new()),
            topic_exists: AtomicBool::new(false),
            effects,
        }
    }

    /// The shard of `key`, if this broker hosts it.
    pub(crate) fn shard(&self, key: &str) -> Result<Arc<Shard<C>>, Unavailable> {
        self.shard_at(super::partition_for(key, self.partitions))
    }

    /// The shard of partition `partition`, if this broker hosts it.
    pub(crate) fn shard_at(&self, partition: i32) -> Result<Arc<Shard<C>>, Unavailable> {
        let shards = self.shards.read().expect("shards lock");
        if shards.is_empty() && !self.topic_exists.load(Ordering::Acquire) {
            return Err(Unavailable::NotAvailable);
        }
        shards.get(&partition).cloned().ok_or(Unavailable::NotCoordinator)
    }

    pub(crate) fn shards(&self) -> Vec<Arc<Shard<C>>> {
        self.shards.read().expect("shards lock").values().cloned().collect()
    }

    /// Loads a shard for every led partition of the internal topic not loaded yet, and lets go
    /// of those no longer led (their parked requests get NOT_COORDINATOR).
    pub(crate) fn reconcile(&self, replicas: &ReplicaManager) {
        self.topic_exists
            .store(replicas.knows_topic(C::TOPIC), Ordering::Release);
        let hosted: HashMap<i32, Arc<Partition>> = (0..self.partitions)
            .filter_map(|p| replicas.leading(C::TOPIC, p).map(|part| (p, part)))
            .collect();
        let (gone, new): (Vec<Arc<Shard<C>>>, Vec<Arc<Partition>>) = {
            let shards = self.shards.read().expect("shards lock");
            let gone = shards
                .iter()
                .filter(|(p, s)| hosted.get(p).is_none_or(|h| !s.serves(h)))
                .map(|(_, s)| s.clone())
                .collect();
            let new = hosted
                .iter()
                .filter(|(p, h)| shards.get(p).is_none_or(|s| !s.serves(h)))
                .map(|(_, h)| h.clone())
                .collect();
            (gone, new)
        };
        for shard in gone {
            let mut shards = self.shards.write().expect("shards lock");
            if shards
                .get(&shard.partition.index)
                .is_some_and(|s| Arc::ptr_eq(s, &shard))
            {
                shards.remove(&shard.partition.index);
            }
            drop(shards);
            shard.unload();
        }
        let mut loaded = 0;
        for partition in new {
            let index = partition.index;
            match Shard::load(self, partition, replicas.appender().clone()) {
                Ok(shard) => {
                    loaded += 1;
                    self.shards.write().expect("shards lock").insert(index, shard);
                }
                Err(e) => warn!(topic = C::TOPIC, partition = index, error = %e, "cannot load coordinator partition"),
            }
        }
        if loaded > 0 {
            info!(topic = C::TOPIC, partitions = loaded, "coordinator partitions loaded");
        }
    }
}

/// The core of one partition of a coordinator's internal topic, and what runs around it.
#[derive(Debug)]
pub(crate) struct Shard<C: Core> {
    partition: Arc<Partition>,
    /// The partition's leader epoch when this shard was loaded.
    coordinator_epoch: i32,
    inner: Mutex<ShardInner<C>>,
    /// How long an append may take to be committed by the ISR.
    commit_timeout: Duration,
    /// Where appends run: the log writer lane of this shard's partition, in the order made.
    appender: Arc<Appender>,
    /// Wakes the committer when an append joins `commits`.
    commit_added: Notify,
    effects: Option<EffectQueue<C::Effect>>,
}

#[derive(Debug)]
struct ShardInner<C: Core> {
    /// `None` once unloaded: requests then get NOT_COORDINATOR.
    state: Option<C>,
    parked: HashMap<RequestId, oneshot::Sender<C::Response>>,
    timers: HashMap<C::TimerKey, AbortHandle>,
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
    #[error("coordinator record: {0}")]
    Record(String),
}

impl<C: Core> Shard<C> {
    fn load(
        coordinator: &Coordinator<C>,
        partition: Arc<Partition>,
        appender: Arc<Appender>,
    ) -> Result<Arc<Shard<C>>, LoadError> {
        let coordinator_epoch = partition.leader_epoch();
        let records = read_records(&partition)?;
        let count = records.len();
        let ctx = LoadContext {
            partition: partition.index,
            coordinator_epoch,
            seed: uuid::Uuid::new_v4().as_u64_pair().0,
            now_ms: now_ms(),
        };
        let (state, actions) =
            C::load(coordinator.config.clone(), ctx, records).map_err(|e| LoadError::Record(e.to_string()))?;
        debug!(
            topic = C::TOPIC,
            partition = partition.index,
            records = count,
            "coordinator partition loaded"
        );
        let shard = Arc::new(Shard {
            partition,
            coordinator_epoch,
            inner: Mutex::new(ShardInner {
                state: Some(state),
                parked: HashMap::new(),
                timers: HashMap::new(),
                next_request: 0,
                commits: VecDeque::new(),
            }),
            commit_timeout: coordinator.commit_timeout,
            appender,
            commit_added: Notify::new(),
            effects: coordinator.effects.clone(),
        });
        tokio::spawn(committer(Arc::downgrade(&shard)));
        shard.run_actions(actions);
        Ok(shard)
    }

    /// Whether this shard is the one loaded for `partition` in its current leadership.
    fn serves(&self, partition: &Arc<Partition>) -> bool {
        Arc::ptr_eq(&self.partition, partition) && self.coordinator_epoch == partition.leader_epoch()
    }

    pub(crate) fn coordinator_epoch(&self) -> i32 {
        self.coordinator_epoch
    }

    fn unload(&self) {
        let actions = {
            let mut inner = self.inner.lock().expect("shard lock");
            inner.timers.drain().for_each(|(_, t)| t.abort());
            inner.state.take().map(C::unload).unwrap_or_default()
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
        build: impl FnOnce(RequestId) -> C::Event,
    ) -> Option<oneshot::Receiver<C::Response>> {
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
    pub(crate) fn notify(self: &Arc<Self>, event: C::Event) {
        self.run(event);
    }

    /// A read-only look at the state.
    pub(crate) fn query<T>(&self, f: impl FnOnce(&C) -> T) -> Option<T> {
        self.inner.lock().expect("shard lock").state.as_ref().map(f)
    }

    fn run(self: &Arc<Self>, event: C::Event) {
        let actions = {
            let mut inner = self.inner.lock().expect("shard lock");
            match inner.state.as_mut() {
                Some(state) => state.handle(now_ms(), event),
                None => return,
            }
        };
        self.run_actions(actions);
    }

    /// Runs actions in order. Appends are queued on the partition's lane at once, so they run
    /// in the order the core made them.
    fn run_actions(self: &Arc<Self>, actions: Vec<CoreAction<C>>) {
        for action in actions {
            match action {
                Action::Respond { req, response } => {
                    let tx = self.inner.lock().expect("shard lock").parked.remove(&req);
                    if let Some(tx) = tx {
                        // The client may have gone away; its answer then has nowhere to go.
                        let _ = tx.send(response);
                    }
                }
                Action::Persist { token, write } => self.persist(token, write),
                Action::ScheduleTimer { key, at_ms } => self.schedule(key, at_ms),
                Action::CancelTimer { key } => {
                    if let Some(t) = self.inner.lock().expect("shard lock").timers.remove(&key) {
                        t.abort();
                    }
                }
                Action::Effect(effect) => match &self.effects {
                    Some(queue) => {
                        let _ = queue.send(ShardEffect {
                            partition: self.partition.index,
                            coordinator_epoch: self.coordinator_epoch,
                            effect,
                        });
                    }
                    None => warn!(topic = C::TOPIC, ?effect, "a coordinator effect with nowhere to go"),
                },
            }
        }
    }

    fn persist(&self, token: u64, write: Write) {
        let deadline = Instant::now() + self.commit_timeout;
        let partition = self.partition.clone();
        let lane = self.partition.index as u64;
        let appended = self.appender.run(lane, move || append(&partition, &write));
        self.inner.lock().expect("shard lock").commits.push_back(PendingCommit {
            token,
            appended,
            deadline,
        });
        self.commit_added.notify_one();
    }

    fn schedule(self: &Arc<Self>, key: C::TimerKey, at_ms: i64) {
        let delay = Duration::from_millis(at_ms.saturating_sub(now_ms()).max(0) as u64);
        let shard = Arc::downgrade(self);
        let fired = key.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(shard) = shard.upgrade() {
                shard.inner.lock().expect("shard lock").timers.remove(&fired);
                shard.run(C::timer_fired(fired));
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

/// Appends one write as one batch to a shard's partition (on a log writer thread); committing
/// it is the committer's wait (as Kafka's coordinators, which append with acks=1 and answer at
/// the high watermark, so min ISR never refuses them up front).
fn append(partition: &Partition, write: &Write) -> Result<Appended, ResponseError> {
    let mut batch = match write {
        Write::Records(records) => internal_batch::encode(records.iter().map(|(k, v)| (Some(k), v.as_ref())), now_ms()),
        Write::Transactional {
            producer_id,
            producer_epoch,
            records,
        } => internal_batch::encode_transactional(
            *producer_id,
            *producer_epoch,
            records.iter().map(|(k, v)| (Some(k), v.as_ref())),
            now_ms(),
        ),
    };
    match partition.append_for_coordinator(&mut batch, now_ms()) {
        Ok(appended) => Ok(appended),
        Err(ReplicaError::UnknownTopicOrPartition { .. }) => Err(ResponseError::NotLeaderOrFollower),
        Err(e) => {
            warn!(topic = %partition.topic, partition = partition.index, error = %e, "coordinator append failed");
            Err(e.kafka_error())
        }
    }
}

/// Reports a shard's appends to its core in order, each once it is committed (or failed, or
/// timed out). Ends when the shard is unloaded or dropped.
async fn committer<C: Core>(shard: Weak<Shard<C>>) {
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
        s.run(C::persisted(pending.token, result));
    }
}

/// Every record of the partition in log order, transactional ones with their producer, and the
/// transaction markers (other control records are skipped). Up to the log end, not only the
/// committed part: a new leader's log holds what its predecessor committed and more that it
/// will commit itself (Kafka's loaders do the same). The partition is compacted: offsets have
/// gaps, and a batch may hold no record at all (the cleaner keeps a producer's last batch), so
/// the reading goes on after each batch's last offset, not after its last record.
fn read_records(partition: &Partition) -> Result<Vec<LogRecord>, LoadError> {
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
            let Some(key) = record.key else { continue };
            if record.control {
                if let Some(commit) = crate::log::marker_type(&key) {
                    out.push(LogRecord::Marker {
                        producer_id: record.producer_id,
                        commit,
                    });
                }
                continue;
            }
            out.push(LogRecord::Data {
                key,
                value: record.value,
                producer_id: record.transactional.then_some(record.producer_id),
            });
        }
    }
    Ok(out)
}

/// The offset after the last batch of `bytes` (whole batches, as a log read returns them).
fn next_offset_after(bytes: &[u8]) -> Result<i64, crate::log::LogError> {
    let mut position = 0;
    let mut next = -1;
    while position < bytes.len() {
        let header = crate::log::BatchHeader::parse(&bytes[position..])?;
        next = header.next_offset();
        position += header.size_bytes();
    }
    Ok(next)
}
