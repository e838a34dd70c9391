//! Between the log and the state: rebuilding the transactional ids of a `__transaction_state`
//! partition from its records ([`load`]), finishing what the previous coordinator left half
//! done, and letting them go ([`unload`]).

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

use super::api::{Action, Response, TimerKey};
use super::coordinator::{send_markers, PendingWrite, TxnConfig, TxnCoordinatorState};
use super::records::{decode, RecordError, TxnState};
use super::state::{TxnData, TxnMetadata};
use crate::coordinator::runtime::RawRecord;

/// Rebuilds one partition's transactional ids from its records in log order (tombstones
/// included; the last record of an id wins). Transactions left in PrepareCommit or
/// PrepareAbort get their markers sent (again), as Kafka's loader does; the periodic sweeps
/// start. A record that does not decode fails the load; records of unknown key types are
/// skipped, as Kafka skips them.
pub(crate) fn load(
    config: TxnConfig,
    now_ms: i64,
    records: impl IntoIterator<Item = RawRecord>,
) -> Result<(TxnCoordinatorState, Vec<Action>), RecordError> {
    let mut txns: BTreeMap<String, TxnMetadata> = BTreeMap::new();
    for (key, value) in records {
        match decode(&key, value.as_deref()) {
            Ok((id, Some(v))) => {
                let meta = TxnMetadata::new(&id, TxnData::from_value(v));
                txns.insert(id, meta);
            }
            Ok((id, None)) => {
                txns.remove(&id);
            }
            Err(RecordError::UnknownKeyType(t)) => {
                tracing::debug!(
                    key_type = t,
                    "skipping a record the transaction coordinator does not use"
                )
            }
            Err(e) => return Err(e),
        }
    }
    let mut state = TxnCoordinatorState::new(config);
    state.txns = txns;
    state.out.now_ms = now_ms;
    let unfinished: Vec<String> = state
        .txns
        .values()
        .filter(|m| matches!(m.data.state, TxnState::PrepareCommit | TxnState::PrepareAbort))
        .map(|m| m.transactional_id.clone())
        .collect();
    if !unfinished.is_empty() {
        tracing::info!(
            transactions = unfinished.len(),
            "finishing the markers of prepared transactions"
        );
    }
    for id in &unfinished {
        send_markers(&mut state, id);
    }
    let (abort_every, expire_every) = (
        state.out.config.abort_timed_out_interval_ms,
        state.out.config.remove_expired_interval_ms,
    );
    state.out.schedule(TimerKey::AbortTimedOut, abort_every);
    state.out.schedule(TimerKey::ExpireIds, expire_every);
    let actions = state.out.take_actions();
    Ok((state, actions))
}

/// Lets go of a partition's transactional ids (its leadership moved): every request waiting
/// for an append is answered NOT_COORDINATOR, every timer is cancelled.
pub(crate) fn unload(mut state: TxnCoordinatorState) -> Vec<Action> {
    let not_coordinator = ResponseError::NotCoordinator;
    for write in std::mem::take(&mut state.out.pending_writes).into_values() {
        let answer = match write {
            PendingWrite::Init { req, .. } => Some((req, Response::init_error(not_coordinator))),
            PendingWrite::FenceAbort { req: Some(req), .. } => Some((req, Response::init_error(not_coordinator))),
            PendingWrite::AddPartitions { req, .. } => Some((
                req,
                Response::AddPartitions {
                    error: Some(not_coordinator),
                },
            )),
            PendingWrite::End { req, .. } => Some((req, Response::end_error(not_coordinator))),
            PendingWrite::FenceAbort { req: None, .. }
            | PendingWrite::Complete { .. }
            | PendingWrite::Expire { .. } => None,
        };
        if let Some((req, response)) = answer {
            state.out.respond(req, response);
        }
    }
    state.out.cancel(TimerKey::AbortTimedOut);
    state.out.cancel(TimerKey::ExpireIds);
    state.out.take_actions()
}
