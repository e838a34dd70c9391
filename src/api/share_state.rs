//! KIP-932's persister RPCs, answered by the share coordinator (`share::state`) for the
//! share-partitions whose `__share_group_state` partition this broker leads:
//! ReadShareGroupState, WriteShareGroupState, InitializeShareGroupState,
//! DeleteShareGroupState and ReadShareGroupStateSummary. Each partition's answer comes once
//! the coordinator answered (a write: once committed).

use std::future::Future;

use kafka_protocol::messages::{
    delete_share_group_state_response as delete, initialize_share_group_state_response as init,
    read_share_group_state_response as read, read_share_group_state_summary_response as summary,
    write_share_group_state_response as write, DeleteShareGroupStateRequest, DeleteShareGroupStateResponse,
    InitializeShareGroupStateRequest, InitializeShareGroupStateResponse, ReadShareGroupStateRequest,
    ReadShareGroupStateResponse, ReadShareGroupStateSummaryRequest, ReadShareGroupStateSummaryResponse,
    WriteShareGroupStateRequest, WriteShareGroupStateResponse,
};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::{Ctx, Reply};
use crate::share::state::records::{ShareState, StateBatch, StateKey};
use crate::share::state::shard::{Event, Response};

/// Kafka's start offset of a share-partition with no state.
const UNINITIALIZED: i64 = -1;

/// Sends one event to the shard of `key`; the coordinator's answer or why there is none.
fn ask(
    ctx: &Ctx,
    key: StateKey,
    event: impl FnOnce(u64, StateKey) -> Event,
) -> impl Future<Output = Result<Response, ResponseError>> + Send + 'static {
    let rx = ctx
        .broker
        .share_states
        .shard(&key.coordinator_key())
        .map_err(|u| u.error())
        .and_then(|shard| {
            shard
                .request(|req| event(req, key))
                .ok_or(ResponseError::NotCoordinator)
        });
    async move {
        match rx {
            Err(e) => Err(e),
            Ok(rx) => rx.await.map_err(|_| ResponseError::NotCoordinator),
        }
    }
}

fn key(group: &str, topic_id: Uuid, partition: i32) -> StateKey {
    StateKey {
        group_id: group.to_string(),
        topic_id,
        partition,
    }
}

fn written(r: Result<Response, ResponseError>) -> Result<(), ResponseError> {
    match r {
        Ok(Response::Written(r)) => r,
        Ok(_) => Err(ResponseError::UnknownServerError),
        Err(e) => Err(e),
    }
}

fn state_of(r: Result<Response, ResponseError>) -> Result<Option<ShareState>, ResponseError> {
    match r {
        Ok(Response::Read(s)) => Ok(s),
        Ok(_) => Err(ResponseError::UnknownServerError),
        Err(e) => Err(e),
    }
}

/// Asks the coordinator for the state of every partition a read request names, in order.
fn read_asks<'a>(
    ctx: &Ctx,
    group: &str,
    partitions: impl Iterator<Item = (Uuid, i32)> + 'a,
) -> Vec<(
    Uuid,
    i32,
    impl Future<Output = Result<Response, ResponseError>> + Send + 'static,
)> {
    partitions
        .map(|(t, p)| (t, p, ask(ctx, key(group, t, p), |req, key| Event::Read { req, key })))
        .collect()
}

/// Runs the per-partition reads of a request: each partition's result built by `partition`
/// from its state (None: no state yet) or its error code, grouped by topic by `topic`.
async fn read_outcomes<F, T, P>(
    c: &Ctx,
    asks: Vec<(Uuid, i32, F)>,
    topic: impl Fn(Uuid, Vec<P>) -> T,
    partition: impl Fn(i32, Result<Option<ShareState>, i16>) -> P,
) -> Vec<T>
where
    F: Future<Output = Result<Response, ResponseError>>,
{
    let mut done = Vec::with_capacity(asks.len());
    for (topic_id, p, answer) in asks {
        let state = state_of(answer.await).map_err(|e| c.count(e));
        done.push((topic_id, partition(p, state)));
    }
    by_topic(done).into_iter().map(|(t, ps)| topic(t, ps)).collect()
}

pub(super) fn read_share_group_state(ctx: &Ctx, req: ReadShareGroupStateRequest) -> Reply<ReadShareGroupStateResponse> {
    let c = ctx.clone();
    let partitions = req
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, p.partition)));
    let asks = read_asks(ctx, &req.group_id, partitions);
    Reply::Later(Box::pin(async move {
        let results = read_outcomes(
            &c,
            asks,
            |id, ps| read::ReadStateResult::default().with_topic_id(id).with_partitions(ps),
            |partition, state| {
                let base = read::PartitionResult::default().with_partition(partition);
                match state {
                    Err(code) => base.with_error_code(code).with_start_offset(UNINITIALIZED),
                    Ok(None) => base.with_start_offset(UNINITIALIZED),
                    Ok(Some(s)) => base
                        .with_state_epoch(s.state_epoch)
                        .with_start_offset(s.start_offset)
                        .with_state_batches(
                            s.batches
                                .iter()
                                .map(|b| {
                                    read::StateBatch::default()
                                        .with_first_offset(b.first_offset)
                                        .with_last_offset(b.last_offset)
                                        .with_delivery_state(b.delivery_state)
                                        .with_delivery_count(b.delivery_count)
                                })
                                .collect(),
                        ),
                }
            },
        )
        .await;
        ReadShareGroupStateResponse::default().with_results(results)
    }))
}

pub(super) fn read_share_group_state_summary(
    ctx: &Ctx,
    req: ReadShareGroupStateSummaryRequest,
) -> Reply<ReadShareGroupStateSummaryResponse> {
    let c = ctx.clone();
    let partitions = req
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, p.partition)));
    let asks = read_asks(ctx, &req.group_id, partitions);
    Reply::Later(Box::pin(async move {
        let results = read_outcomes(
            &c,
            asks,
            |id, ps| {
                summary::ReadStateSummaryResult::default()
                    .with_topic_id(id)
                    .with_partitions(ps)
            },
            |partition, state| {
                let base = summary::PartitionResult::default().with_partition(partition);
                match state {
                    Err(code) => base.with_error_code(code).with_start_offset(UNINITIALIZED),
                    Ok(None) => base.with_start_offset(UNINITIALIZED),
                    Ok(Some(s)) => base
                        .with_state_epoch(s.state_epoch)
                        .with_leader_epoch(s.leader_epoch)
                        .with_start_offset(s.start_offset),
                }
            },
        )
        .await;
        ReadShareGroupStateSummaryResponse::default().with_results(results)
    }))
}

/// Per-partition results in request order, grouped by topic as the responses carry them.
fn by_topic<P>(items: Vec<(Uuid, P)>) -> Vec<(Uuid, Vec<P>)> {
    let mut out: Vec<(Uuid, Vec<P>)> = Vec::new();
    for (topic_id, p) in items {
        match out.last_mut() {
            Some((t, ps)) if *t == topic_id => ps.push(p),
            _ => out.push((topic_id, vec![p])),
        }
    }
    out
}

/// Runs the per-partition writes of a request: each topic's result built by `topic` from its
/// partitions' results, each built by `partition` from (partition, error code).
async fn outcomes<F, T, P>(
    c: &Ctx,
    asks: Vec<(Uuid, i32, F)>,
    topic: impl Fn(Uuid, Vec<P>) -> T,
    partition: impl Fn(i32, i16) -> P,
) -> Vec<T>
where
    F: Future<Output = Result<Response, ResponseError>>,
{
    let mut done = Vec::with_capacity(asks.len());
    for (topic_id, p, answer) in asks {
        let code = written(answer.await).map_or_else(|e| c.count(e), |()| 0);
        done.push((topic_id, partition(p, code)));
    }
    by_topic(done).into_iter().map(|(t, ps)| topic(t, ps)).collect()
}

pub(super) fn write_share_group_state(
    ctx: &Ctx,
    req: WriteShareGroupStateRequest,
) -> Reply<WriteShareGroupStateResponse> {
    let c = ctx.clone();
    let group = req.group_id.to_string();
    let mut asks = Vec::new();
    for t in req.topics {
        for p in t.partitions {
            let batches = p
                .state_batches
                .iter()
                .map(|b| StateBatch {
                    first_offset: b.first_offset,
                    last_offset: b.last_offset,
                    delivery_state: b.delivery_state,
                    delivery_count: b.delivery_count,
                })
                .collect();
            let answer = ask(ctx, key(&group, t.topic_id, p.partition), move |req, key| {
                Event::Update {
                    req,
                    key,
                    state_epoch: p.state_epoch,
                    leader_epoch: p.leader_epoch,
                    start_offset: p.start_offset,
                    batches,
                }
            });
            asks.push((t.topic_id, p.partition, answer));
        }
    }
    Reply::Later(Box::pin(async move {
        let results = outcomes(
            &c,
            asks,
            |id, ps| write::WriteStateResult::default().with_topic_id(id).with_partitions(ps),
            |p, code| {
                write::PartitionResult::default()
                    .with_partition(p)
                    .with_error_code(code)
            },
        )
        .await;
        WriteShareGroupStateResponse::default().with_results(results)
    }))
}

pub(super) fn initialize_share_group_state(
    ctx: &Ctx,
    req: InitializeShareGroupStateRequest,
) -> Reply<InitializeShareGroupStateResponse> {
    let c = ctx.clone();
    let group = req.group_id.to_string();
    let mut asks = Vec::new();
    for t in req.topics {
        for p in t.partitions {
            let state = ShareState {
                state_epoch: p.state_epoch,
                start_offset: p.start_offset,
                ..ShareState::default()
            };
            let answer = ask(ctx, key(&group, t.topic_id, p.partition), move |req, key| {
                Event::Write { req, key, state }
            });
            asks.push((t.topic_id, p.partition, answer));
        }
    }
    Reply::Later(Box::pin(async move {
        let results = outcomes(
            &c,
            asks,
            |id, ps| {
                init::InitializeStateResult::default()
                    .with_topic_id(id)
                    .with_partitions(ps)
            },
            |p, code| init::PartitionResult::default().with_partition(p).with_error_code(code),
        )
        .await;
        InitializeShareGroupStateResponse::default().with_results(results)
    }))
}

pub(super) fn delete_share_group_state(
    ctx: &Ctx,
    req: DeleteShareGroupStateRequest,
) -> Reply<DeleteShareGroupStateResponse> {
    let c = ctx.clone();
    let group = req.group_id.to_string();
    let mut asks = Vec::new();
    for t in req.topics {
        for p in t.partitions {
            let answer = ask(ctx, key(&group, t.topic_id, p.partition), |req, key| Event::Delete {
                req,
                key,
            });
            asks.push((t.topic_id, p.partition, answer));
        }
    }
    Reply::Later(Box::pin(async move {
        let results = outcomes(
            &c,
            asks,
            |id, ps| {
                delete::DeleteStateResult::default()
                    .with_topic_id(id)
                    .with_partitions(ps)
            },
            |p, code| {
                delete::PartitionResult::default()
                    .with_partition(p)
                    .with_error_code(code)
            },
        )
        .await;
        DeleteShareGroupStateResponse::default().with_results(results)
    }))
}
