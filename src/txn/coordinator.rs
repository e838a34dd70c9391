//! The transaction coordinator state of one `__transaction_state` partition and the single
//! entry point, [`handle`], that applies an event and returns the actions for the shell.
//!
//! Kafka's rules (`TransactionCoordinator`, `TransactionStateManager`): every transition of a
//! transactional id is written to the partition first and takes effect once it is there; while
//! one is being written the id answers CONCURRENT_TRANSACTIONS. EndTxn writes PrepareCommit or
//! PrepareAbort, answers the producer, and asks the shell to write the markers on every
//! partition of the transaction; once all are written it writes CompleteCommit or
//! CompleteAbort. A new coordinator loading PrepareCommit or PrepareAbort from the log sends
//! the markers again (they are idempotent in effect: a marker with no open transaction ends
//! nothing). Periodic sweeps abort transactions open past their timeout (fencing their
//! producer with a bumped epoch) and remove transactional ids idle past their expiration.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use tracing::{debug, info, warn};

use super::api::{
    Action, AddPartitionsRequest, Effect, EndTxnRequest, Event, InitRequest, MarkerJob, RequestId, Response, TimerKey,
    TopicPartition,
};
use super::records::{encode_key, fits_in_key, TxnState};
use super::state::{epoch_exhausted, TxnData, TxnMetadata};
use crate::coordinator::runtime::Write;

/// The coordinator's settings (Kafka's `transaction.*` and `transactional.id.*` configs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TxnConfig {
    /// `transaction.max.timeout.ms`: the longest transaction timeout a producer may ask for.
    pub(crate) max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`.
    pub(crate) id_expiration_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub(crate) abort_timed_out_interval_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub(crate) remove_expired_interval_ms: i64,
    /// The cluster's `transaction.version`: from 1 on, records are written at value version 1.
    pub(crate) transaction_version: i16,
    /// How long to wait before writing a transaction's completion again after a failure.
    pub(crate) retry_backoff_ms: i64,
}

impl Default for TxnConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        TxnConfig {
            max_timeout_ms: 900_000,
            id_expiration_ms: 604_800_000,
            abort_timed_out_interval_ms: 10_000,
            remove_expired_interval_ms: 3_600_000,
            transaction_version: 0,
            retry_backoff_ms: 100,
        }
    }
}

/// Tombstones per append when transactional ids expire.
const TOMBSTONES_PER_WRITE: usize = 1000;

/// Every transactional id of one `__transaction_state` partition.
#[derive(Debug)]
pub(crate) struct TxnCoordinatorState {
    pub(crate) txns: BTreeMap<String, TxnMetadata>,
    pub(crate) out: Outbox,
}

/// What a handler needs besides the transactional ids.
#[derive(Debug)]
pub(crate) struct Outbox {
    pub(crate) config: TxnConfig,
    /// The time of the event being handled.
    pub(crate) now_ms: i64,
    actions: Vec<Action>,
    /// Appends in flight and what to do when each is done.
    pub(crate) pending_writes: BTreeMap<u64, PendingWrite>,
    next_token: u64,
}

/// A transition being written, and what follows once it is in the log (or failed).
#[derive(Debug, Clone)]
pub(crate) enum PendingWrite {
    /// InitProducerId: answer with the new producer id and epoch.
    Init {
        req: RequestId,
        transactional_id: String,
        data: TxnData,
    },
    /// An open transaction aborted by the coordinator with its producer fenced (a new
    /// InitProducerId, answered CONCURRENT_TRANSACTIONS so it retries; or the timeout).
    FenceAbort {
        req: Option<RequestId>,
        transactional_id: String,
        data: TxnData,
    },
    AddPartitions {
        req: RequestId,
        transactional_id: String,
        data: TxnData,
    },
    /// EndTxn's PrepareCommit or PrepareAbort: answer, then send the markers.
    End {
        req: RequestId,
        transactional_id: String,
        data: TxnData,
    },
    /// CompleteCommit or CompleteAbort, once every marker is written.
    Complete { transactional_id: String, data: TxnData },
    /// Tombstones of expired transactional ids.
    Expire { transactional_ids: Vec<String> },
}

impl TxnCoordinatorState {
    /// An empty coordinator without its timers; the shell uses [`super::replay::load`].
    pub(crate) fn new(config: TxnConfig) -> Self {
        Self {
            txns: BTreeMap::new(),
            out: Outbox {
                config,
                now_ms: 0,
                actions: Vec::new(),
                pending_writes: BTreeMap::new(),
                next_token: 1,
            },
        }
    }
}

/// Applies one event at time `now_ms` and returns what the shell must do, in order.
pub(crate) fn handle(state: &mut TxnCoordinatorState, now_ms: i64, event: Event) -> Vec<Action> {
    state.out.now_ms = now_ms;
    match event {
        Event::InitProducerId(r) => init_producer_id(state, r),
        Event::AddPartitions(r) => add_partitions(state, r),
        Event::EndTxn(r) => end_txn(state, r),
        Event::MarkersWritten {
            transactional_id,
            producer_id,
            producer_epoch,
            partitions,
        } => markers_written(state, &transactional_id, producer_id, producer_epoch, &partitions),
        Event::TimerFired { key } => timer_fired(state, key),
        Event::Persisted { token, result } => persisted(state, token, result),
    }
    state.out.take_actions()
}

fn init_producer_id(state: &mut TxnCoordinatorState, r: InitRequest) {
    let TxnCoordinatorState { txns, out } = state;
    let fail = |out: &mut Outbox, e| out.respond(r.req, Response::init_error(e));
    if r.transactional_id.is_empty() || !fits_in_key(&r.transactional_id) {
        return fail(out, ResponseError::InvalidRequest);
    }
    if r.timeout_ms <= 0 || r.timeout_ms > out.config.max_timeout_ms {
        return fail(out, ResponseError::InvalidTransactionTimeout);
    }
    let now_ms = out.now_ms;
    let meta = txns.entry(r.transactional_id.clone()).or_insert_with(|| {
        TxnMetadata::new(
            &r.transactional_id,
            TxnData::new(r.fresh_producer_id, r.timeout_ms, now_ms),
        )
    });
    if meta.pending.is_some() {
        return fail(out, ResponseError::ConcurrentTransactions);
    }
    // KIP-360: a producer naming its id and epoch is fenced unless the id is still this
    // transactional id's (the epoch is checked below), the metadata is brand new, or it is a
    // retry across an id rotation.
    if let Some((pid, epoch)) = r.expected {
        let d = &meta.data;
        let valid = d.producer_epoch == super::state::NO_PRODUCER_EPOCH
            || pid == d.producer_id
            || (pid == d.previous_producer_id && epoch_exhausted(epoch));
        if !valid {
            return fail(out, ResponseError::ProducerFenced);
        }
    }
    match meta.data.state {
        TxnState::PrepareAbort | TxnState::PrepareCommit => fail(out, ResponseError::ConcurrentTransactions),
        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
            let expected_epoch = r.expected.map(|(_, e)| e);
            let exhausted = epoch_exhausted(meta.data.producer_epoch)
                && expected_epoch.is_none_or(|e| e == meta.data.producer_epoch);
            let data = if exhausted {
                Ok(meta.prepare_rotation(r.fresh_producer_id, r.timeout_ms, now_ms, r.expected.is_some()))
            } else {
                meta.prepare_increment_epoch(r.timeout_ms, expected_epoch, now_ms)
            };
            match data {
                Ok(data) => out.transit(
                    meta,
                    data.clone(),
                    PendingWrite::Init {
                        req: r.req,
                        transactional_id: r.transactional_id,
                        data,
                    },
                ),
                Err(e) => fail(out, e),
            }
        }
        TxnState::Ongoing => {
            // Abort the open transaction, fencing its producer; the new producer retries on
            // CONCURRENT_TRANSACTIONS and then gets an epoch bumped once more.
            let data = meta.prepare_fence_abort(now_ms);
            info!(transactional_id = %r.transactional_id, epoch = data.producer_epoch, "fencing the producer of an open transaction");
            out.transit(
                meta,
                data.clone(),
                PendingWrite::FenceAbort {
                    req: Some(r.req),
                    transactional_id: r.transactional_id,
                    data,
                },
            )
        }
        TxnState::Dead | TxnState::PrepareEpochFence => fail(out, ResponseError::ConcurrentTransactions),
    }
}

fn add_partitions(state: &mut TxnCoordinatorState, r: AddPartitionsRequest) {
    let TxnCoordinatorState { txns, out } = state;
    let respond = |out: &mut Outbox, error| out.respond(r.req, Response::AddPartitions { error });
    let Some(meta) = txns.get_mut(&r.transactional_id) else {
        return respond(out, Some(ResponseError::InvalidProducerIdMapping));
    };
    if let Err(e) = meta.is_current(r.producer_id, r.producer_epoch) {
        return respond(out, Some(e));
    }
    if meta.pending.is_some() || matches!(meta.data.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
        return respond(out, Some(ResponseError::ConcurrentTransactions));
    }
    if meta.data.state == TxnState::Ongoing && r.partitions.iter().all(|p| meta.data.partitions.contains(p)) {
        return respond(out, None);
    }
    let data = meta.prepare_add_partitions(&r.partitions, r.client_transaction_version, out.now_ms);
    out.transit(
        meta,
        data.clone(),
        PendingWrite::AddPartitions {
            req: r.req,
            transactional_id: r.transactional_id,
            data,
        },
    );
}

fn end_txn(state: &mut TxnCoordinatorState, r: EndTxnRequest) {
    let TxnCoordinatorState { txns, out } = state;
    let fail = |out: &mut Outbox, e| out.respond(r.req, Response::end_error(e));
    let Some(meta) = txns.get_mut(&r.transactional_id) else {
        return fail(out, ResponseError::InvalidProducerIdMapping);
    };
    let v2 = r.client_transaction_version >= 2;
    let check = end_check(meta, &r);
    if let Err(e) = check.valid {
        return fail(out, e);
    }
    if meta.pending.is_some() {
        return fail(out, ResponseError::ConcurrentTransactions);
    }
    let d = &meta.data;
    // Transactions v2 may abort with nothing added (the producer cannot know whether a leader
    // added a partition for it): a new, empty transaction is prepared and aborted at once.
    let abort_nothing = v2 && !r.commit && !check.retry;
    match (d.state, r.commit) {
        (TxnState::Ongoing, _) => {}
        (TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort, false) if abort_nothing => {}
        // A retry of an EndTxn that got through: the producer id and epoch it continues with.
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) if check.retry || !v2 => {
            let (producer_id, producer_epoch) = (d.producer_id, d.producer_epoch);
            return out.respond(
                r.req,
                Response::EndTxn {
                    error: None,
                    producer_id,
                    producer_epoch,
                },
            );
        }
        (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
            return fail(out, ResponseError::ConcurrentTransactions)
        }
        (state, _) => {
            warn!(transactional_id = %r.transactional_id, state = state.name(), commit = r.commit, "EndTxn in a state that cannot end that way");
            return fail(out, ResponseError::InvalidTxnState);
        }
    }
    let next_producer_id = if v2 && epoch_exhausted(d.producer_epoch) {
        match r.fresh_producer_id {
            Some(id) => id,
            // The shell read the state before the epochs ran out: let the producer retry.
            None => return fail(out, ResponseError::ConcurrentTransactions),
        }
    } else {
        super::state::NO_PRODUCER_ID
    };
    let data = meta.prepare_end(r.commit, r.client_transaction_version, next_producer_id, out.now_ms);
    out.transit(
        meta,
        data.clone(),
        PendingWrite::End {
            req: r.req,
            transactional_id: r.transactional_id,
            data,
        },
    );
}

/// Whether an EndTxn's producer id and epoch may end the transaction (Kafka's
/// `TransactionCoordinator.endTransaction`), and whether it is a transactions-v2 retry.
struct EndCheck {
    valid: Result<(), ResponseError>,
    retry: bool,
}

fn end_check(meta: &TxnMetadata, r: &EndTxnRequest) -> EndCheck {
    let d = &meta.data;
    let fencing = meta.pending == Some(TxnState::PrepareEpochFence);
    let current_v2 = !fencing && d.client_transaction_version >= 2;
    // A v2 producer retrying an end that bumped its epoch names the epoch before the bump; one
    // whose end moved it to a new producer id names the old id at the last epoch.
    let retry_on_overflow = current_v2
        && d.previous_producer_id == r.producer_id
        && r.producer_epoch == i16::MAX - 1
        && d.producer_epoch == 0;
    let retry_on_bump = current_v2 && i32::from(d.producer_epoch) == i32::from(r.producer_epoch) + 1;
    let valid_epoch = if current_v2 {
        // The same epoch in a completed state is the next transaction's end, not a retry.
        match d.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => retry_on_bump,
            TxnState::CompleteCommit | TxnState::CompleteAbort => {
                retry_on_bump || retry_on_overflow || r.producer_epoch == d.producer_epoch
            }
            _ => r.producer_epoch == d.producer_epoch,
        }
    } else {
        r.producer_epoch == d.producer_epoch
    };
    let retry = (retry_on_bump || retry_on_overflow) && d.state != TxnState::Ongoing;
    let valid = if d.producer_id != r.producer_id && !retry_on_overflow {
        Err(ResponseError::InvalidProducerIdMapping)
    } else if !valid_epoch {
        Err(ResponseError::ProducerFenced)
    } else if r.client_transaction_version >= 2 && d.producer_epoch == i16::MAX && !retry {
        // Only a fence reaches the last epoch, and it never hands it to a producer.
        Err(ResponseError::ProducerFenced)
    } else {
        Ok(())
    };
    EndCheck { valid, retry }
}

/// Markers are written on some partitions of a transaction being completed.
fn markers_written(
    state: &mut TxnCoordinatorState,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[TopicPartition],
) {
    let Some(meta) = state.txns.get_mut(transactional_id) else {
        return;
    };
    let preparing = matches!(meta.data.state, TxnState::PrepareCommit | TxnState::PrepareAbort);
    if !preparing || meta.data.producer_id != producer_id || meta.data.producer_epoch != producer_epoch {
        debug!(transactional_id, "markers written for a transaction that moved on");
        return;
    }
    for p in partitions {
        meta.data.partitions.remove(p);
    }
    try_complete(state, transactional_id);
}

/// Writes CompleteCommit or CompleteAbort once every marker of a prepared transaction is in.
fn try_complete(state: &mut TxnCoordinatorState, transactional_id: &str) {
    let TxnCoordinatorState { txns, out } = state;
    let Some(meta) = txns.get_mut(transactional_id) else {
        return;
    };
    let preparing = matches!(meta.data.state, TxnState::PrepareCommit | TxnState::PrepareAbort);
    if !preparing || meta.pending.is_some() || !meta.data.partitions.is_empty() {
        return;
    }
    let data = meta.prepare_complete(out.now_ms);
    out.transit(
        meta,
        data.clone(),
        PendingWrite::Complete {
            transactional_id: transactional_id.to_owned(),
            data,
        },
    );
}

fn timer_fired(state: &mut TxnCoordinatorState, key: TimerKey) {
    match key {
        TimerKey::AbortTimedOut => {
            abort_timed_out(state);
            let every = state.out.config.abort_timed_out_interval_ms;
            state.out.schedule(TimerKey::AbortTimedOut, every);
        }
        TimerKey::ExpireIds => {
            expire_ids(state);
            let every = state.out.config.remove_expired_interval_ms;
            state.out.schedule(TimerKey::ExpireIds, every);
        }
        TimerKey::RetryComplete { transactional_id } => try_complete(state, &transactional_id),
    }
}

/// Kafka's `abortTimedOutTransactions`: an open transaction past its timeout is aborted and
/// its producer fenced.
fn abort_timed_out(state: &mut TxnCoordinatorState) {
    let TxnCoordinatorState { txns, out } = state;
    let now_ms = out.now_ms;
    for meta in txns.values_mut() {
        let timed_out = meta.data.state == TxnState::Ongoing
            && meta.pending.is_none()
            && meta.data.start_ms.saturating_add(i64::from(meta.data.timeout_ms)) < now_ms;
        if !timed_out {
            continue;
        }
        let data = meta.prepare_fence_abort(now_ms);
        info!(transactional_id = %meta.transactional_id, timeout_ms = meta.data.timeout_ms, "aborting a transaction open past its timeout");
        let then = PendingWrite::FenceAbort {
            req: None,
            transactional_id: meta.transactional_id.clone(),
            data: data.clone(),
        };
        out.transit(meta, data, then);
    }
}

/// Kafka's `removeExpiredTransactionalIds`: ids without an open transaction and untouched for
/// `transactional.id.expiration.ms` get a tombstone, and go once it is in the log.
fn expire_ids(state: &mut TxnCoordinatorState) {
    let TxnCoordinatorState { txns, out } = state;
    let cutoff = out.now_ms.saturating_sub(out.config.id_expiration_ms);
    let expired: Vec<String> = txns
        .values()
        .filter(|m| m.pending.is_none() && m.data.state.may_expire() && m.data.last_update_ms <= cutoff)
        .map(|m| m.transactional_id.clone())
        .collect();
    for chunk in expired.chunks(TOMBSTONES_PER_WRITE) {
        for id in chunk {
            if let Some(meta) = txns.get_mut(id) {
                meta.pending = Some(TxnState::Dead);
            }
        }
        let records = chunk.iter().map(|id| (encode_key(id), None)).collect();
        info!(count = chunk.len(), "expiring idle transactional ids");
        out.persist(
            Write::Records(records),
            PendingWrite::Expire {
                transactional_ids: chunk.to_vec(),
            },
        );
    }
}

fn persisted(state: &mut TxnCoordinatorState, token: u64, result: Result<(), ResponseError>) {
    let Some(write) = state.out.pending_writes.remove(&token) else {
        return;
    };
    let error = result.err().map(append_error);
    match write {
        PendingWrite::Init {
            req,
            transactional_id,
            data,
        } => {
            let response = match error {
                None => Response::InitProducerId {
                    error: None,
                    producer_id: data.producer_id,
                    producer_epoch: data.producer_epoch,
                },
                Some(e) => Response::init_error(e),
            };
            state.settle(&transactional_id, data, error);
            state.out.respond(req, response);
        }
        PendingWrite::FenceAbort {
            req,
            transactional_id,
            data,
        } => {
            if error.is_some() {
                if let Some(meta) = state.txns.get_mut(&transactional_id) {
                    meta.has_failed_epoch_fence = true;
                }
            }
            state.settle(&transactional_id, data, error);
            if error.is_none() {
                send_markers(state, &transactional_id);
            }
            if let Some(req) = req {
                let e = error.unwrap_or(ResponseError::ConcurrentTransactions);
                state.out.respond(req, Response::init_error(e));
            }
        }
        PendingWrite::AddPartitions {
            req,
            transactional_id,
            data,
        } => {
            state.settle(&transactional_id, data, error);
            state.out.respond(req, Response::AddPartitions { error });
        }
        PendingWrite::End {
            req,
            transactional_id,
            data,
        } => {
            let response = match error {
                None => {
                    let (producer_id, producer_epoch) = TxnMetadata::continues_as(&data);
                    Response::EndTxn {
                        error: None,
                        producer_id,
                        producer_epoch,
                    }
                }
                Some(e) => Response::end_error(e),
            };
            state.settle(&transactional_id, data, error);
            state.out.respond(req, response);
            if error.is_none() {
                send_markers(state, &transactional_id);
            }
        }
        PendingWrite::Complete { transactional_id, data } => {
            state.settle(&transactional_id, data, error);
            if error == Some(ResponseError::CoordinatorNotAvailable) {
                let backoff = state.out.config.retry_backoff_ms;
                state
                    .out
                    .schedule(TimerKey::RetryComplete { transactional_id }, backoff);
            } else if let Some(e) = error {
                warn!(%transactional_id, error = %e, "completing a transaction failed; a new coordinator finishes it");
            }
        }
        PendingWrite::Expire { transactional_ids } => {
            for id in transactional_ids {
                let dead = state.txns.get(&id).is_some_and(|m| m.pending == Some(TxnState::Dead));
                match (dead, error) {
                    (true, None) => {
                        state.txns.remove(&id);
                    }
                    (true, Some(_)) => {
                        if let Some(meta) = state.txns.get_mut(&id) {
                            meta.pending = None;
                        }
                    }
                    (false, _) => {}
                }
            }
        }
    }
}

/// Asks the shell to write the markers of a prepared transaction; one without partitions
/// completes at once.
pub(crate) fn send_markers(state: &mut TxnCoordinatorState, transactional_id: &str) {
    let Some(meta) = state.txns.get(transactional_id) else {
        return;
    };
    let d = &meta.data;
    if d.partitions.is_empty() {
        return try_complete(state, transactional_id);
    }
    let job = MarkerJob {
        transactional_id: transactional_id.to_owned(),
        producer_id: d.producer_id,
        producer_epoch: d.producer_epoch,
        commit: d.state == TxnState::PrepareCommit,
        partitions: d.partitions.iter().cloned().collect(),
    };
    state.out.actions.push(Action::Effect(Effect::SendMarkers(job)));
}

/// Kafka's mapping of an append's error to what a coordinator answers.
fn append_error(e: ResponseError) -> ResponseError {
    use ResponseError::*;
    match e {
        UnknownTopicOrPartition | NotEnoughReplicas | NotEnoughReplicasAfterAppend | RequestTimedOut => {
            CoordinatorNotAvailable
        }
        NotLeaderOrFollower | KafkaStorageError => NotCoordinator,
        MessageTooLarge | RecordListTooLarge => UnknownServerError,
        other => other,
    }
}

impl TxnCoordinatorState {
    /// A transition's write is done: on success it takes effect, else the id is free again.
    fn settle(&mut self, transactional_id: &str, data: TxnData, error: Option<ResponseError>) {
        let Some(meta) = self.txns.get_mut(transactional_id) else {
            return;
        };
        meta.pending = None;
        if error.is_none() {
            meta.has_failed_epoch_fence = false;
            meta.data = data;
        }
    }
}

impl Outbox {
    pub(crate) fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    pub(crate) fn respond(&mut self, req: RequestId, response: Response) {
        self.actions.push(Action::Respond { req, response });
    }

    pub(crate) fn schedule(&mut self, key: TimerKey, delay_ms: i64) {
        let at_ms = self.now_ms.saturating_add(delay_ms.max(0));
        self.actions.push(Action::ScheduleTimer { key, at_ms });
    }

    pub(crate) fn cancel(&mut self, key: TimerKey) {
        self.actions.push(Action::CancelTimer { key });
    }

    /// Writes a transition of `meta` to `data`; `then` says what follows once it is in the log.
    fn transit(&mut self, meta: &mut TxnMetadata, data: TxnData, then: PendingWrite) {
        meta.pending = Some(data.state);
        let version = if self.config.transaction_version >= 1 { 1 } else { 0 };
        let record = (
            encode_key(&meta.transactional_id),
            Some(data.to_value().encode(version)),
        );
        self.persist(Write::Records(vec![record]), then);
    }

    fn persist(&mut self, write: Write, then: PendingWrite) {
        let token = self.next_token;
        self.next_token += 1;
        self.pending_writes.insert(token, then);
        self.actions.push(Action::Persist { token, write });
    }
}
