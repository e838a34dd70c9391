//! The share-partition leader's side of KIP-932's persister: it writes a share-partition's
//! state to the share coordinator (`share::state`, `__share_group_state`) after
//! acknowledgements and when the share-partition is created, and reads it back before the
//! first fetch after a restart or leader change, so acknowledged records stay acknowledged.
//!
//! Only a share coordinator on this broker is used (as every coordinator is on a single node);
//! reaching one on another broker (Kafka's Read/WriteShareGroupState RPCs) is not built, and
//! such a share-partition stays in memory only.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use tracing::{debug, warn};

use super::Ctx;
use crate::coordinator::runtime::{Shard, Unavailable};
use crate::share::partition::{Limits, PersistedState, SharePartition};
use crate::share::service::PartitionKey;
use crate::share::state::records::{
    ShareState, StateBatch, StateKey, DELIVERY_ACKNOWLEDGED, DELIVERY_ARCHIVED, DELIVERY_AVAILABLE,
};
use crate::share::state::shard::{Event, Response, ShareStateShard};
use crate::share::state::SHARE_STATE_TOPIC;

fn state_key(key: &PartitionKey) -> StateKey {
    StateKey {
        group_id: key.0.clone(),
        topic_id: key.1,
        partition: key.2,
    }
}

/// Where a share-partition's durable state is.
enum Coordinator {
    Here(Arc<Shard<ShareStateShard>>),
    /// This broker leads its `__share_group_state` partition but has not loaded it yet.
    Loading,
    /// On another broker (or nowhere): not reachable from here.
    Elsewhere,
}

/// The share coordinator shard of `key` if this broker hosts it, creating
/// `__share_group_state` on first use.
async fn coordinator(ctx: &Ctx, key: &StateKey) -> Coordinator {
    let coordinator_key = key.coordinator_key();
    match ctx.broker.share_states.shard(&coordinator_key) {
        Ok(s) => return Coordinator::Here(s),
        Err(Unavailable::NotCoordinator) => {
            let partition = crate::coordinator::partition_for(&coordinator_key, ctx.broker.share_states.partitions);
            let image = ctx.broker.metadata.image();
            let leader = image
                .topic(SHARE_STATE_TOPIC)
                .and_then(|t| t.partitions.get(&partition))
                .map(|p| p.leader);
            if leader == Some(ctx.broker.node_id) {
                return Coordinator::Loading;
            }
            debug!(key = %coordinator_key, "share coordinator elsewhere: state kept in memory only");
            return Coordinator::Elsewhere;
        }
        Err(Unavailable::NotAvailable) => {}
    }
    let broker = ctx.broker.clone();
    match tokio::task::spawn_blocking(move || broker.ensure_share_state_topic()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(error = %e, "cannot create __share_group_state"),
        Err(e) => warn!(error = %e, "creating __share_group_state failed"),
    }
    match ctx.broker.share_states.shard(&coordinator_key) {
        Ok(s) => Coordinator::Here(s),
        Err(_) => Coordinator::Elsewhere,
    }
}

/// The shard of `key` if it is here and loaded.
async fn shard(ctx: &Ctx, key: &StateKey) -> Option<Arc<Shard<ShareStateShard>>> {
    match coordinator(ctx, key).await {
        Coordinator::Here(s) => Some(s),
        Coordinator::Loading | Coordinator::Elsewhere => None,
    }
}

fn to_persisted(state: i8) -> PersistedState {
    match state {
        DELIVERY_ACKNOWLEDGED => PersistedState::Acknowledged,
        DELIVERY_ARCHIVED => PersistedState::Archived,
        _ => PersistedState::Available,
    }
}

fn from_persisted(state: PersistedState) -> i8 {
    match state {
        PersistedState::Available => DELIVERY_AVAILABLE,
        PersistedState::Acknowledged => DELIVERY_ACKNOWLEDGED,
        PersistedState::Archived => DELIVERY_ARCHIVED,
    }
}

/// Reads back the durable state of every share-partition in `keys` this broker does not hold
/// in memory yet. Returns the share-partitions whose state cannot be read yet (its
/// coordinator here is still loading): they must not be started afresh meanwhile.
pub(super) async fn load_missing(ctx: &Ctx, keys: &[PartitionKey], limits: Limits) -> Vec<PartitionKey> {
    let shares = &ctx.broker.shares;
    let mut not_ready = Vec::new();
    for key in keys.iter().filter(|k| !shares.has_partition(k)) {
        let sk = state_key(key);
        let shard = match coordinator(ctx, &sk).await {
            Coordinator::Here(s) => s,
            Coordinator::Loading => {
                not_ready.push(key.clone());
                continue;
            }
            Coordinator::Elsewhere => continue,
        };
        let Some(rx) = shard.request(|req| Event::Read { req, key: sk }) else {
            not_ready.push(key.clone());
            continue;
        };
        if let Ok(Response::Read(Some(state))) = rx.await {
            let runs = state.batches.iter().map(|b| {
                (
                    b.first_offset,
                    b.last_offset,
                    to_persisted(b.delivery_state),
                    b.delivery_count,
                )
            });
            shares.install(key, SharePartition::from_state(state.start_offset, runs, limits));
        }
    }
    not_ready
}

/// Writes the state of each share-partition in `keys` and waits until it is committed. A
/// share-partition whose coordinator is elsewhere counts as written (kept in memory only).
pub(super) async fn persist(ctx: &Ctx, keys: Vec<PartitionKey>) -> BTreeMap<PartitionKey, Result<(), ResponseError>> {
    let mut out = BTreeMap::new();
    for key in keys {
        let sk = state_key(&key);
        let Some(shard) = shard(ctx, &sk).await else {
            out.insert(key, Ok(()));
            continue;
        };
        let rx = ctx.broker.shares.snapshot_then(&key, |start_offset, runs| {
            let state = ShareState {
                start_offset,
                batches: runs
                    .into_iter()
                    .map(|(first, last, state, count)| StateBatch {
                        first_offset: first,
                        last_offset: last,
                        delivery_state: from_persisted(state),
                        delivery_count: count,
                    })
                    .collect(),
                ..ShareState::default()
            };
            shard.request(|req| Event::Write { req, key: sk, state })
        });
        let result = match rx.flatten() {
            None => Ok(()), // No state here (deleted meanwhile): nothing to write.
            Some(rx) => match rx.await {
                Ok(Response::Written(r)) => r,
                _ => Err(ResponseError::NotCoordinator),
            },
        };
        out.insert(key, result);
    }
    out
}

/// Deletes the durable state of each share-partition in `keys` (a tombstone each), waiting
/// until committed.
pub(super) async fn delete(ctx: &Ctx, keys: Vec<PartitionKey>) -> Result<(), ResponseError> {
    for key in keys {
        let sk = state_key(&key);
        let Some(shard) = shard(ctx, &sk).await else { continue };
        let Some(rx) = shard.request(|req| Event::Delete { req, key: sk }) else {
            return Err(ResponseError::NotCoordinator);
        };
        match rx.await {
            Ok(Response::Written(r)) => r?,
            _ => return Err(ResponseError::NotCoordinator),
        }
    }
    Ok(())
}
