//! One partition replica at runtime: its log, its replication core (`core::Core`), and the
//! waiters on both — long-poll fetches of consumers (woken when the high watermark moves),
//! of followers (woken when the log end moves) and acks=all produces (a watch of the
//! committed offset).
//!
//! Locks: the log's `Mutex` and the core's, always taken in that order and held only for
//! synchronous work (an append, a read, a state transition), never across an await. Every
//! change of the log end reaches the core under the log lock, so the core sees log ends in log
//! order. Offsets read without a lock (log start/end, high watermark, size, leadership) are
//! mirrored in atomics after every change.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use kafka_protocol::records::Compression;
use tokio::sync::{mpsc, watch, Notify};
use uuid::Uuid;

use super::core::{Action, Core, Event, LeaderAndIsr};
use super::recompress::{recompress, topic_codec};
use super::ReplicaError;
use crate::log::{AppendInfo, CleanTarget, Log, LogConfig, Origin, TxnVerification};

mod transactions;
use crate::metadata::elections::IsrCommitted;

/// Stale fetch waiters are pruned once the list grows past this; it bounds the list on idle partitions.
const WAITERS_PRUNE_AT: usize = 64;

/// An ISR change the core wants the controller to make.
#[derive(Debug, Clone)]
pub(crate) struct IsrProposal {
    pub(crate) partition: Arc<Partition>,
    pub(crate) isr: Vec<i32>,
    /// The committed ISR it would replace.
    pub(crate) from: Vec<i32>,
    pub(crate) leader_epoch: i32,
    pub(crate) partition_epoch: i32,
}

/// What acks=all waiters watch: the high watermark and the leadership it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Committed {
    high_watermark: i64,
    leader_epoch: i32,
    leading: bool,
    /// The epoch this replica's unbroken leadership began in. A leader never truncates its log,
    /// so an append of an epoch since then is still there as appended, and a new epoch that
    /// keeps this replica the leader (a reassignment that removed another replica) does not
    /// fail the acks=all appends waiting on it, as in Kafka (its DelayedProduce only checks the
    /// high watermark).
    leading_since: i32,
}

#[derive(Debug)]
pub(crate) struct Partition {
    pub(crate) topic: String,
    pub(crate) index: i32,
    pub(crate) topic_id: Uuid,
    /// `None` once the partition has been deleted; in-flight requests then see "unknown".
    log: Mutex<Option<Log>>,
    core: Mutex<Core>,
    leader_epoch: AtomicI32,
    /// Whether this node leads the partition; only a leader takes produce and serves fetches.
    leader: AtomicBool,
    high_watermark: AtomicI64,
    log_start_offset: AtomicI64,
    log_end_offset: AtomicI64,
    /// The log's first unstable offset (`i64::MAX` when every transaction is stable): the last
    /// stable offset is the lower of it and the high watermark.
    first_unstable_offset: AtomicI64,
    size_bytes: AtomicU64,
    /// The topic's compression.type codec; `None` keeps the producer's batches as sent.
    recompress_to: Mutex<Option<Compression>>,
    committed: watch::Sender<Committed>,
    /// Consumer long polls: woken when the high watermark moves or leadership changes.
    hw_waiters: Mutex<Vec<Weak<Notify>>>,
    /// Follower long polls: woken when the log end moves.
    end_waiters: Mutex<Vec<Weak<Notify>>>,
    /// DeleteRecords waiting for the followers' log starts: woken when one moves.
    start_waiters: Mutex<Vec<Weak<Notify>>>,
    /// Where the core's ISR proposals go (the replica manager sends them to the controller).
    proposals: mpsc::UnboundedSender<IsrProposal>,
    me: Weak<Partition>,
}

/// What a consumer fetch gets from one partition.
#[derive(Debug, Clone)]
pub(crate) struct ReadResult {
    pub(crate) records: Bytes,
    pub(crate) high_watermark: i64,
    pub(crate) log_start_offset: i64,
}

/// What a follower's fetch gets from its leader.
#[derive(Debug, Clone)]
pub(crate) enum FollowerRead {
    Records(ReadResult),
    /// The follower's log diverged from ours: its last fetched epoch ends here in our log.
    Diverging {
        epoch: i32,
        end_offset: i64,
        high_watermark: i64,
        log_start_offset: i64,
    },
}

/// A follower's fetch, as the leader sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FollowerFetch {
    pub(crate) replica: i32,
    pub(crate) fetch_offset: i64,
    /// The follower's log start offset; -1 when not sent.
    pub(crate) log_start_offset: i64,
    /// The epoch of the follower's last fetched batch; -1 when not sent.
    pub(crate) last_fetched_epoch: i32,
    pub(crate) max_bytes: usize,
    /// Its broker may join the ISR (registered, unfenced, not shutting down).
    pub(crate) eligible: bool,
    pub(crate) now_ms: i64,
}

/// How a partition starts: its log, what it last knew of its high watermark, its settings.
#[derive(Debug)]
pub(crate) struct PartitionSetup {
    pub(crate) topic: String,
    pub(crate) index: i32,
    pub(crate) topic_id: Uuid,
    pub(crate) node_id: i32,
    pub(crate) log: Log,
    pub(crate) high_watermark: i64,
    pub(crate) lag_max_ms: i64,
    pub(crate) min_insync_replicas: i32,
    pub(crate) proposals: mpsc::UnboundedSender<IsrProposal>,
}

impl Partition {
    pub(crate) fn new(setup: PartitionSetup) -> Arc<Partition> {
        let mut log = setup.log;
        log.on_high_watermark(setup.high_watermark);
        let log_end = log.log_end_offset();
        let core = Core::new(
            setup.node_id,
            setup.lag_max_ms,
            setup.min_insync_replicas.max(1) as usize,
            log_end,
            setup.high_watermark,
        );
        let (committed, _) = watch::channel(Committed {
            high_watermark: core.high_watermark(),
            leader_epoch: -1,
            leading: false,
            leading_since: -1,
        });
        Arc::new_cyclic(|me| {
            let p = Partition {
                topic: setup.topic,
                index: setup.index,
                topic_id: setup.topic_id,
                log: Mutex::new(None),
                high_watermark: AtomicI64::new(core.high_watermark()),
                core: Mutex::new(core),
                leader_epoch: AtomicI32::new(-1),
                leader: AtomicBool::new(false),
                log_start_offset: AtomicI64::new(0),
                log_end_offset: AtomicI64::new(0),
                first_unstable_offset: AtomicI64::new(i64::MAX),
                size_bytes: AtomicU64::new(0),
                recompress_to: Mutex::new(None),
                committed,
                hw_waiters: Mutex::new(Vec::new()),
                end_waiters: Mutex::new(Vec::new()),
                start_waiters: Mutex::new(Vec::new()),
                proposals: setup.proposals,
                me: me.clone(),
            };
            p.publish_offsets(&log);
            *p.log.lock().expect("partition log lock") = Some(log);
            p
        })
    }

    pub(crate) fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    pub(crate) fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
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

    /// The committed ISR and the replicas, as this replica last heard them.
    pub(crate) fn isr_and_replicas(&self) -> (Vec<i32>, Vec<i32>) {
        let core = self.core.lock().expect("core lock");
        (core.isr().to_vec(), core.replicas().to_vec())
    }

    /// Whether the ISR is smaller than the effective min ISR (a leader's view).
    pub(crate) fn under_min_isr(&self) -> bool {
        let core = self.core.lock().expect("core lock");
        core.isr().len() < core.min_isr()
    }

    /// How far each follower is behind this leader's log end (leader only; unknown: None).
    pub(crate) fn follower_lags(&self) -> Vec<(i32, Option<i64>)> {
        let core = self.core.lock().expect("core lock");
        let end = self.log_end_offset();
        core.replicas()
            .iter()
            .filter_map(|&r| core.follower(r).map(|f| (r, f.log_end.map(|e| (end - e).max(0)))))
            .collect()
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

    /// Like `with_log`, then tells the core where the log now ends (still under the log lock,
    /// so the core sees log ends in order) and carries out what it decides.
    fn with_log_then_core<T>(&self, f: impl FnOnce(&mut Log) -> Result<T, ReplicaError>) -> Result<T, ReplicaError> {
        let mut guard = self.log.lock().expect("partition log lock");
        let log = guard.as_mut().ok_or_else(|| self.unknown())?;
        let out = f(log);
        self.publish_offsets(log);
        let log_end = log.log_end_offset();
        self.step(log, Event::LogEnd { log_end });
        out
    }

    /// Feeds one event to the core and carries out its actions; the caller holds the log.
    fn step(&self, log: &mut Log, event: Event) -> Vec<Action> {
        let actions = self.core.lock().expect("core lock").handle(event);
        let mut external = Vec::new();
        for action in actions {
            match action {
                Action::HighWatermark(hw) => {
                    // Transactions decided below it become stable before readers see it move.
                    log.on_high_watermark(hw);
                    self.publish_offsets(log);
                    self.publish_high_watermark(hw);
                }
                Action::ProposeIsr {
                    isr,
                    leader_epoch,
                    partition_epoch,
                } => {
                    if let Some(me) = self.me.upgrade() {
                        let from = self.core.lock().expect("core lock").isr().to_vec();
                        // Unbounded, but the core keeps one proposal in flight per partition.
                        let _ = self.proposals.send(IsrProposal {
                            partition: me,
                            isr,
                            from,
                            leader_epoch,
                            partition_epoch,
                        });
                    }
                }
                Action::BecomeLeader { epoch } => {
                    // The new epoch starts at our log end, before anything is written in it.
                    if let Err(e) = log.assign_epoch(epoch, log.log_end_offset()) {
                        tracing::warn!(topic = %self.topic, partition = self.index, error = %e, "epoch cache not written");
                    }
                    self.set_leadership(true, epoch);
                    external.push(Action::BecomeLeader { epoch });
                }
                other @ (Action::BecomeFollower { .. } | Action::Offline) => {
                    let epoch = self.core.lock().expect("core lock").leader_epoch();
                    self.set_leadership(false, epoch);
                    external.push(other);
                }
            }
        }
        external
    }

    fn set_leadership(&self, leading: bool, epoch: i32) {
        self.leader_epoch.store(epoch, Ordering::Release);
        let was = self.leader.swap(leading, Ordering::AcqRel);
        let hw = self.high_watermark();
        let since = self.committed.borrow().leading_since;
        self.committed.send_replace(Committed {
            high_watermark: hw,
            leader_epoch: epoch,
            leading,
            leading_since: if was && leading { since } else { epoch },
        });
        if was && !leading {
            // Parked fetches answer with the new state (NOT_LEADER_OR_FOLLOWER).
            wake(&self.hw_waiters);
            wake(&self.end_waiters);
            wake(&self.start_waiters);
        }
    }

    fn publish_high_watermark(&self, hw: i64) {
        self.high_watermark.store(hw, Ordering::Release);
        self.committed.send_modify(|c| c.high_watermark = hw);
        wake(&self.hw_waiters);
    }

    /// The metadata's leader and ISR for this partition. Returns what the replica manager must
    /// do beyond this partition: start or stop fetching.
    pub(crate) fn apply_metadata(&self, state: LeaderAndIsr, now_ms: i64) -> Vec<Action> {
        let mut guard = self.log.lock().expect("partition log lock");
        let Some(log) = guard.as_mut() else {
            return Vec::new();
        };
        self.step(log, Event::Metadata { state, now_ms })
    }

    /// Time passes: lagging followers leave the ISR (proposals go to the controller).
    pub(crate) fn tick(&self, now_ms: i64) {
        let mut guard = self.log.lock().expect("partition log lock");
        if let Some(log) = guard.as_mut() {
            self.step(log, Event::Tick { now_ms });
        }
    }

    /// The controller did not make the proposed ISR change; the core may propose again.
    pub(crate) fn proposal_failed(&self) {
        self.core.lock().expect("core lock").handle(Event::AlterPartitionFailed);
    }

    /// The controller committed the proposed ISR change (or found nothing to change): its state
    /// applies now, before the metadata that carries it arrives (as Kafka's leader does).
    pub(crate) fn proposal_committed(&self, committed: &IsrCommitted) {
        let mut guard = self.log.lock().expect("partition log lock");
        if let Some(log) = guard.as_mut() {
            self.step(
                log,
                Event::IsrCommitted {
                    leader_epoch: committed.leader_epoch,
                    partition_epoch: committed.partition_epoch,
                    isr: committed.isr.clone(),
                },
            );
        }
    }

    pub(crate) fn set_min_insync_replicas(&self, n: i32) {
        let mut guard = self.log.lock().expect("partition log lock");
        if let Some(log) = guard.as_mut() {
            self.step(
                log,
                Event::MinIsr {
                    min_isr: n.max(1) as usize,
                },
            );
        }
    }

    /// `append_from_client` without transaction verification (the tests' way in).
    #[cfg(test)]
    pub(crate) fn append_as_leader(
        &self,
        batches: &mut [u8],
        acks_all: bool,
        now_ms: i64,
    ) -> Result<Appended, ReplicaError> {
        self.append_from_client(batches, acks_all, now_ms, TxnVerification::Off)
    }

    /// Leader append of a producer's batches, whose transaction may start here only as
    /// `verification` allows (KIP-890). With `acks_all`, refused up front when the ISR is under
    /// the effective min ISR (NOT_ENOUGH_REPLICAS); the caller then waits for
    /// `Appended::end_offset` to be committed (`await_committed`).
    pub(crate) fn append_from_client(
        &self,
        batches: &mut [u8],
        acks_all: bool,
        now_ms: i64,
        verification: TxnVerification,
    ) -> Result<Appended, ReplicaError> {
        if !self.is_leader() {
            return Err(self.not_leader());
        }
        if acks_all {
            let core = self.core.lock().expect("core lock");
            let (isr, min) = (core.isr().len(), core.configured_min_isr());
            if isr < min {
                return Err(ReplicaError::NotEnoughReplicas { isr, min: min as i32 });
            }
        }
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
        let epoch = self.leader_epoch();
        let origin = Origin::Client(verification);
        let info = self.with_log_then_core(|log| Ok(log.append_from(batches, epoch, now_ms, origin)?))?;
        wake(&self.end_waiters);
        Ok(Appended {
            end_offset: info.last_offset + 1,
            leader_epoch: epoch,
            info,
        })
    }

    /// Waits until everything below `appended.end_offset` is committed (the high watermark
    /// passed it), until `deadline`. Errors: leadership moved (NOT_LEADER_OR_FOLLOWER; not a
    /// new epoch of this replica's unbroken leadership, see `Committed`), the
    /// ISR fell under min ISR on the way (NOT_ENOUGH_REPLICAS_AFTER_APPEND), or the time ran
    /// out (REQUEST_TIMED_OUT; the records may still commit later).
    pub(crate) async fn await_committed(
        &self,
        appended: &Appended,
        deadline: tokio::time::Instant,
    ) -> Result<(), ReplicaError> {
        let mut rx = self.committed.subscribe();
        let (end, epoch) = (appended.end_offset, appended.leader_epoch);
        let done = |c: &Committed| c.high_watermark >= end || !c.leading || c.leading_since > epoch;
        let outcome = match tokio::time::timeout_at(deadline, rx.wait_for(done)).await {
            Ok(Ok(c)) => *c,
            Ok(Err(_)) => return Err(self.unknown()),
            Err(_) => return Err(ReplicaError::Timeout),
        };
        if !outcome.leading || outcome.leading_since > epoch {
            return Err(self.not_leader());
        }
        if self.under_min_isr() {
            let core = self.core.lock().expect("core lock");
            return Err(ReplicaError::NotEnoughReplicasAfterAppend {
                isr: core.isr().len(),
                min: core.min_isr() as i32,
            });
        }
        Ok(())
    }

    /// A consumer's read: committed batches (below the high watermark) from `offset`.
    pub(crate) fn read(&self, offset: i64, max_bytes: usize, min_one: bool) -> Result<ReadResult, ReplicaError> {
        let high_watermark = self.high_watermark();
        let records = self.with_log(|log| Ok(log.read(offset, max_bytes, high_watermark, min_one)?))?;
        Ok(ReadResult {
            records,
            high_watermark,
            log_start_offset: self.log_start_offset(),
        })
    }

    /// A follower's fetch on this leader: batches up to our log end (not only committed ones),
    /// or where its log diverged from ours. The fetch offset is the follower's log end, which
    /// the core records (ISR membership, high watermark).
    pub(crate) fn read_for_follower(&self, fetch: FollowerFetch, min_one: bool) -> Result<FollowerRead, ReplicaError> {
        let mut guard = self.log.lock().expect("partition log lock");
        let log = guard.as_mut().ok_or_else(|| self.unknown())?;
        // The high watermark before this fetch moves it, as Kafka reports it.
        let high_watermark = self.high_watermark();
        let log_start_offset = log.log_start_offset();
        if fetch.last_fetched_epoch >= 0 && fetch.fetch_offset >= log_start_offset {
            let (epoch, end_offset) = log.end_offset_for_epoch(fetch.last_fetched_epoch);
            if epoch < 0 || end_offset < 0 {
                return Err(ReplicaError::Log(crate::log::LogError::OffsetOutOfRange {
                    offset: fetch.fetch_offset,
                    log_start: log_start_offset,
                    log_end: log.log_end_offset(),
                }));
            }
            if epoch < fetch.last_fetched_epoch || end_offset < fetch.fetch_offset {
                return Ok(FollowerRead::Diverging {
                    epoch,
                    end_offset,
                    high_watermark,
                    log_start_offset,
                });
            }
        }
        let records = log.read(fetch.fetch_offset, fetch.max_bytes, i64::MAX, min_one)?;
        let start_before = self
            .core
            .lock()
            .expect("core lock")
            .follower(fetch.replica)
            .and_then(|f| f.log_start);
        self.step(
            log,
            Event::FollowerFetched {
                replica: fetch.replica,
                fetch_offset: fetch.fetch_offset,
                log_start_offset: fetch.log_start_offset,
                eligible: fetch.eligible,
                now_ms: fetch.now_ms,
            },
        );
        if start_before != (fetch.log_start_offset >= 0).then_some(fetch.log_start_offset) {
            wake(&self.start_waiters);
        }
        Ok(FollowerRead::Records(ReadResult {
            records,
            high_watermark,
            log_start_offset,
        }))
    }

    /// Follower append of the leader's batches, then its high watermark. `fetched_in` is the
    /// leader epoch the fetch was made in: an answer that arrives after this replica moved on
    /// (it leads now, or follows a newer leader) is refused under the same lock that moves it,
    /// so a deposed leader's late answer never lands in a log.
    pub(crate) fn append_as_follower(
        &self,
        fetched_in: i32,
        batches: &[u8],
        leader: LeaderOffsets,
        now_ms: i64,
    ) -> Result<Option<AppendInfo>, ReplicaError> {
        let mut guard = self.log.lock().expect("partition log lock");
        let log = guard.as_mut().ok_or_else(|| self.unknown())?;
        self.check_following(fetched_in)?;
        let info = if batches.is_empty() {
            None
        } else {
            let info = log.append_as_follower(batches, now_ms);
            self.publish_offsets(log);
            let log_end = log.log_end_offset();
            self.step(log, Event::LogEnd { log_end });
            Some(info?)
        };
        self.step(
            log,
            Event::LeaderHighWatermark {
                high_watermark: leader.high_watermark,
            },
        );
        // Kafka's follower raises its log start to its leader's (DeleteRecords, retention
        // there), never past its own high watermark.
        let start = leader.log_start_offset.min(self.high_watermark());
        if start > log.log_start_offset() {
            log.advance_log_start(start, start)?;
            self.publish_offsets(log);
        }
        Ok(info)
    }

    /// DeleteRecords on this leader (Kafka's `deleteRecordsOnLeader`): moves the log start to
    /// `offset` (-1: the high watermark), which may not pass the high watermark, and deletes
    /// the segments wholly below it. Only a log whose cleanup.policy includes `delete` allows
    /// it. Returns the offset the start moved to, which the low watermark must reach.
    pub(crate) fn delete_records(&self, offset: i64) -> Result<i64, ReplicaError> {
        if !self.is_leader() {
            return Err(self.not_leader());
        }
        self.with_log(|log| {
            if !log.config().delete_policy {
                return Err(ReplicaError::PolicyViolation(format!(
                    "Records of partition {}-{} can not be deleted due to the configured policy",
                    self.topic, self.index
                )));
            }
            let high_watermark = self.high_watermark();
            let target = if offset == DELETE_TO_HIGH_WATERMARK {
                high_watermark
            } else {
                offset
            };
            if target < 0 {
                return Err(ReplicaError::Log(crate::log::LogError::OffsetOutOfRange {
                    offset: target,
                    log_start: log.log_start_offset(),
                    log_end: high_watermark,
                }));
            }
            log.advance_log_start(target, high_watermark)?;
            Ok(target)
        })
    }

    /// Kafka's low watermark: the smallest log start offset over this leader and the replicas
    /// on live brokers (`alive`). What a DeleteRecords waits to reach.
    pub(crate) fn low_watermark(&self, alive: impl Fn(i32) -> bool) -> Result<i64, ReplicaError> {
        let own = self.log_start_offset();
        self.core
            .lock()
            .expect("core lock")
            .low_watermark(own, alive)
            .ok_or_else(|| self.not_leader())
    }

    /// Registers a DeleteRecords wait, woken when a follower's log start moves (or leadership).
    pub(crate) fn add_start_waiter(&self, waiter: &Arc<Notify>) {
        add_waiter(&self.start_waiters, waiter);
    }

    /// Cuts this follower's log at `offset` (where it diverged from its leader's, as its leader
    /// in `fetched_in` said).
    pub(crate) fn truncate_to(&self, fetched_in: i32, offset: i64) -> Result<(), ReplicaError> {
        self.with_log_then_core(|log| {
            self.check_following(fetched_in)?;
            Ok(log.truncate_diverged(offset)?)
        })
    }

    /// Empties this follower's log and restarts it at `offset` (its leader's log start).
    pub(crate) fn restart_from(&self, fetched_in: i32, offset: i64) -> Result<(), ReplicaError> {
        self.with_log_then_core(|log| {
            self.check_following(fetched_in)?;
            Ok(log.restart_from(offset)?)
        })
    }

    /// Whether this replica still follows in `epoch` (the caller holds the log lock, which
    /// every leadership change takes too).
    fn check_following(&self, epoch: i32) -> Result<(), ReplicaError> {
        if self.is_leader() || self.leader_epoch() != epoch {
            return Err(ReplicaError::StaleFetch { epoch });
        }
        Ok(())
    }

    /// (latest epoch, log end) of this replica's log, for its next fetch.
    pub(crate) fn fetch_position(&self) -> Result<(i64, i32), ReplicaError> {
        self.with_log(|log| Ok((log.log_end_offset(), log.latest_epoch().unwrap_or(-1))))
    }

    /// Kafka's `endOffsetFor` on this log (OffsetForLeaderEpoch, a follower's truncation).
    pub(crate) fn end_offset_for_epoch(&self, epoch: i32) -> Result<(i32, i64), ReplicaError> {
        self.with_log(|log| Ok(log.end_offset_for_epoch(epoch)))
    }

    /// Where the current leader epoch starts in this log (ListOffsets answers
    /// OFFSET_NOT_AVAILABLE while the high watermark is below it).
    pub(crate) fn epoch_start_offset(&self) -> Result<i64, ReplicaError> {
        let epoch = self.leader_epoch();
        self.with_log(|log| {
            Ok(log
                .epoch_entries()
                .iter()
                .rev()
                .find(|e| e.epoch <= epoch)
                .map_or(0, |e| e.start_offset))
        })
    }

    /// (offset, timestamp) of the first record at or after `timestamp`, or of the largest
    /// timestamp with `None`. The batch is found under the log's lock and its records searched
    /// after it is released: a large compressed batch must not hold the partition's appends.
    pub(crate) fn offset_for_timestamp(&self, timestamp: Option<i64>) -> Result<Option<(i64, i64)>, ReplicaError> {
        let found = self.with_log(|log| {
            Ok(match timestamp {
                Some(ts) => log.batch_for_timestamp(ts)?,
                None => log.batch_for_max_timestamp()?,
            })
        })?;
        Ok(crate::log::search_batch(found)?)
    }

    /// Registers a consumer long-poll fetch, woken when the high watermark moves.
    pub(crate) fn add_waiter(&self, waiter: &Arc<Notify>) {
        add_waiter(&self.hw_waiters, waiter);
    }

    /// Registers a follower long-poll fetch, woken when the log end moves.
    pub(crate) fn add_end_waiter(&self, waiter: &Arc<Notify>) {
        add_waiter(&self.end_waiters, waiter);
    }

    fn publish_offsets(&self, log: &Log) {
        self.log_start_offset.store(log.log_start_offset(), Ordering::Release);
        self.log_end_offset.store(log.log_end_offset(), Ordering::Release);
        let unstable = log.first_unstable_offset().unwrap_or(i64::MAX);
        self.first_unstable_offset.store(unstable, Ordering::Release);
        self.size_bytes.store(log.size_bytes(), Ordering::Release);
    }

    fn unknown(&self) -> ReplicaError {
        ReplicaError::UnknownTopicOrPartition {
            topic: self.topic.clone(),
            partition: self.index,
        }
    }

    fn not_leader(&self) -> ReplicaError {
        ReplicaError::NotLeader {
            topic: self.topic.clone(),
            partition: self.index,
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

    /// The last step of a log dir move, under the partition lock: `f` gets the log and returns
    /// the one the partition keeps from now on (the swapped-in future log, or the same one
    /// back; none if both failed, which leaves the partition unavailable).
    pub(crate) fn replace_log<T>(&self, f: impl FnOnce(Log) -> (Option<Log>, T)) -> Result<T, ReplicaError> {
        let mut guard = self.log.lock().expect("partition log lock");
        let current = guard.take().ok_or_else(|| self.unknown())?;
        let (kept, out) = f(current);
        *guard = kept;
        if let Some(log) = guard.as_ref() {
            self.publish_offsets(log);
        }
        Ok(out)
    }

    /// Whether the log is open (not closed or deleted).
    pub(crate) fn has_log(&self) -> bool {
        self.log.lock().expect("partition log lock").is_some()
    }

    /// The partition's directory on disk (`<log dir>/<topic>-<partition>`); `None` once the
    /// log is closed or deleted.
    pub(crate) fn log_dir(&self) -> Option<std::path::PathBuf> {
        self.log
            .lock()
            .expect("partition log lock")
            .as_ref()
            .map(|log| log.dir().to_path_buf())
    }

    /// Takes the log out (later calls see the partition as unknown) and deletes it from disk.
    pub(crate) fn delete(&self) -> Result<(), ReplicaError> {
        let log = self.log.lock().expect("partition log lock").take();
        self.set_leadership(false, self.leader_epoch());
        wake(&self.hw_waiters);
        wake(&self.end_waiters);
        wake(&self.start_waiters);
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

/// What a leader's fetch answer says of its log, for its follower.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeaderOffsets {
    pub(crate) high_watermark: i64,
    pub(crate) log_start_offset: i64,
}

/// DeleteRecords' offset meaning "up to the high watermark" (Kafka's `HIGH_WATERMARK`).
const DELETE_TO_HIGH_WATERMARK: i64 = -1;

/// The log cleaner reaches the partition's log through this, under the same lock as
/// everything else; it cleans nothing at or past the high watermark.
impl CleanTarget for Partition {
    fn name(&self) -> (String, i32) {
        (self.topic.clone(), self.index)
    }

    fn lock_log(&self, f: &mut dyn FnMut(&mut Log)) -> bool {
        let mut guard = self.log.lock().expect("partition log lock");
        let Some(log) = guard.as_mut() else {
            return false;
        };
        f(log);
        self.publish_offsets(log);
        true
    }

    fn upper_bound(&self) -> i64 {
        // Kafka's cleaner stops at the last stable offset: an open transaction may still abort.
        self.last_stable_offset()
    }
}

/// A leader append: what was written, and where it ends for an acks=all wait.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Appended {
    pub(crate) info: AppendInfo,
    pub(crate) end_offset: i64,
    pub(crate) leader_epoch: i32,
}

fn add_waiter(list: &Mutex<Vec<Weak<Notify>>>, waiter: &Arc<Notify>) {
    let mut waiters = list.lock().expect("waiters lock");
    if waiters.len() >= WAITERS_PRUNE_AT {
        waiters.retain(|w| w.strong_count() > 0);
    }
    waiters.push(Arc::downgrade(waiter));
}

fn wake(list: &Mutex<Vec<Weak<Notify>>>) {
    let waiters = std::mem::take(&mut *list.lock().expect("waiters lock"));
    for w in waiters.iter().filter_map(Weak::upgrade) {
        w.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

    use super::*;

    fn one_record_batch() -> BytesMut {
        let record = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: 1000,
            key: None,
            value: Some(Bytes::from_static(b"v")),
            headers: Default::default(),
        };
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, &[record], &options).unwrap();
        buf
    }

    /// Node 1 hosting "t-0" with ISR [1, 2], led by `leader` in `epoch`.
    fn state(leader: i32, epoch: i32, replicas: Vec<i32>) -> LeaderAndIsr {
        LeaderAndIsr {
            leader,
            leader_epoch: epoch,
            partition_epoch: epoch,
            replicas,
            isr: vec![1, 2],
        }
    }

    fn partition(dir: &std::path::Path) -> Arc<Partition> {
        let log = Log::open(&dir.join("t-0"), LogConfig::default(), 0).unwrap();
        let (proposals, _) = mpsc::unbounded_channel();
        Partition::new(PartitionSetup {
            topic: "t".into(),
            index: 0,
            topic_id: Uuid::nil(),
            node_id: 1,
            log,
            high_watermark: 0,
            lag_max_ms: 30_000,
            min_insync_replicas: 2,
            proposals,
        })
    }

    /// Follower 2 fetches up to `offset`: the high watermark follows.
    fn follower_reaches(p: &Partition, offset: i64, epoch: i32) {
        let fetch = FollowerFetch {
            replica: 2,
            fetch_offset: offset,
            log_start_offset: 0,
            last_fetched_epoch: epoch,
            max_bytes: 1 << 20,
            eligible: true,
            now_ms: 1,
        };
        p.read_for_follower(fetch, true).unwrap();
    }

    #[tokio::test]
    async fn acks_all_append_survives_a_new_epoch_of_the_same_leader() {
        let dir = tempfile::tempdir().unwrap();
        let p = partition(dir.path());
        p.apply_metadata(state(1, 0, vec![1, 2, 3]), 0);
        let appended = p.append_as_leader(&mut one_record_batch(), true, 0).unwrap();
        // A reassignment completes and removes replica 3: a new epoch, the same leader.
        p.apply_metadata(state(1, 1, vec![1, 2]), 0);
        follower_reaches(&p, appended.end_offset, 0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        p.await_committed(&appended, deadline).await.unwrap();
    }

    #[tokio::test]
    async fn acks_all_append_fails_once_leadership_was_lost_in_between() {
        let dir = tempfile::tempdir().unwrap();
        let p = partition(dir.path());
        p.apply_metadata(state(1, 0, vec![1, 2]), 0);
        let appended = p.append_as_leader(&mut one_record_batch(), true, 0).unwrap();
        // Node 2 led in epoch 1; node 1 leads again in epoch 2 (what it appended in epoch 0
        // may have been truncated meanwhile): the waiting append is not acknowledged.
        p.apply_metadata(state(2, 1, vec![1, 2]), 0);
        p.apply_metadata(state(1, 2, vec![1, 2]), 0);
        follower_reaches(&p, appended.end_offset, 0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let outcome = p.await_committed(&appended, deadline).await;
        assert!(matches!(outcome, Err(ReplicaError::NotLeader { .. })), "{outcome:?}");
    }
}
