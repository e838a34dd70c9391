//! Committed offsets: OffsetCommit, TxnOffsetCommit (a producer's transaction's offsets),
//! OffsetFetch (single group, and the batched v8+ form; require_stable), OffsetDelete. Commits are events of the group's coordinator shard (they are appended to
//! `__consumer_offsets` before they are answered); fetches read the shard's state.

use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest,
    OffsetFetchResponse, TopicName, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use kafka_protocol::ResponseError;

use super::groups::{call, code, text};
use super::{Ctx, Reply};
use crate::group::api::{self as core, Event, Response, TopicErrors};
use crate::group::query::FetchedOffsets;
use crate::group::OFFSETS_TOPIC;
use crate::txn::verification::{self as txn_verification, Ask};

/// From v8 OffsetFetch asks about a list of groups.
const BATCHED_FETCH_FROM_VERSION: i16 = 8;

fn topic_name(s: &str) -> TopicName {
    TopicName(text(s.to_string()))
}

/// The topics of an OffsetCommit or TxnOffsetCommit request (kafka-protocol's types differ,
/// their fields do not) as the core takes them, committed now.
macro_rules! core_topics {
    ($topics:expr) => {
        $topics
            .into_iter()
            .map(|t| core::CommitTopic {
                name: t.name.to_string(),
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| core::CommitPartition {
                        partition: p.partition_index,
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.committed_metadata.map(|m| m.to_string()),
                        commit_timestamp_ms: -1,
                    })
                    .collect(),
            })
            .collect()
    };
}

pub(super) fn offset_commit(ctx: &Ctx, req: OffsetCommitRequest) -> Reply<OffsetCommitResponse> {
    let topics = core_topics!(req.topics);
    let request = core::CommitRequest {
        req: 0,
        api_version: ctx.version,
        group_id: req.group_id.0.to_string(),
        generation_id: req.generation_id_or_member_epoch,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        retention_time_ms: req.retention_time_ms,
        topics,
        transaction: None,
    };
    commit_through_core(ctx, request, |ctx, topics| {
        OffsetCommitResponse::default().with_topics(commit_topics(ctx, topics))
    })
}

/// TxnOffsetCommit: offsets committed as part of a producer's transaction, visible to
/// OffsetFetch only once its COMMIT marker is written in the group's partition. From v5 the
/// producer speaks transactions v2 and sends no AddOffsetsToTxn: the group's partition is
/// added to the transaction here first, as Kafka's group coordinator does through its
/// partition's verification (KIP-890 part 2).
pub(super) fn txn_offset_commit(ctx: &Ctx, req: TxnOffsetCommitRequest) -> Reply<TxnOffsetCommitResponse> {
    if ctx.version < TXN_OFFSETS_ADD_FROM_VERSION {
        return txn_offset_commit_to_group(ctx, req);
    }
    let ctx = ctx.clone();
    Reply::Later(Box::pin(async move {
        let partition = crate::coordinator::partition_for(&req.group_id, ctx.broker.groups.partitions);
        let added = txn_verification::verify(
            &ctx.broker,
            &req.transactional_id,
            req.producer_id.0,
            req.producer_epoch,
            &[(OFFSETS_TOPIC.to_string(), partition)],
            Ask::Add,
        )
        .await;
        let refused = |e: ResponseError| txn_offset_commit_refused(&ctx, &req, e);
        if let Some(e) = added.into_iter().flatten().next() {
            return refused(e);
        }
        match txn_offset_commit_to_group(&ctx, req.clone()) {
            Reply::Now(r) => r,
            Reply::Later(f) => f.await,
            // The group's commits are always answered.
            _ => refused(ResponseError::UnknownServerError),
        }
    }))
}

/// From v5 TxnOffsetCommit adds the group's partition to the transaction (transactions v2).
const TXN_OFFSETS_ADD_FROM_VERSION: i16 = 5;

/// Every partition of a TxnOffsetCommit answered `error`.
fn txn_offset_commit_refused(ctx: &Ctx, req: &TxnOffsetCommitRequest, error: ResponseError) -> TxnOffsetCommitResponse {
    let code = ctx.count(error);
    let topics = req
        .topics
        .iter()
        .map(|t| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// The commit itself, through the group's coordinator.
fn txn_offset_commit_to_group(ctx: &Ctx, req: TxnOffsetCommitRequest) -> Reply<TxnOffsetCommitResponse> {
    let topics = core_topics!(req.topics);
    let request = core::CommitRequest {
        req: 0,
        api_version: ctx.version,
        group_id: req.group_id.0.to_string(),
        generation_id: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        retention_time_ms: -1,
        topics,
        transaction: Some((req.producer_id.0, req.producer_epoch)),
    };
    // PRODUCER_FENCED exists from v3 on; older versions get INVALID_PRODUCER_EPOCH.
    let version = ctx.version;
    commit_through_core(ctx, request, move |ctx, topics| {
        let topics = commit_topics(ctx, topics).into_iter().map(|t| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(
                    t.partitions
                        .into_iter()
                        .map(|p| {
                            let fenced = p.error_code == ResponseError::ProducerFenced.code() && version < 3;
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(if fenced {
                                    ResponseError::InvalidProducerEpoch.code()
                                } else {
                                    p.error_code
                                })
                        })
                        .collect(),
                )
        });
        TxnOffsetCommitResponse::default().with_topics(topics.collect())
    })
}

/// Sends an offset commit to the group's shard (`request.req` is filled in) and builds the
/// response with `respond`. As Kafka: offsets of partitions that do not exist are refused
/// before the coordinator.
fn commit_through_core<R: Send + 'static>(
    ctx: &Ctx,
    mut request: core::CommitRequest,
    respond: impl Fn(&Ctx, Vec<TopicErrors>) -> R + Clone + Send + 'static,
) -> Reply<R> {
    let image = ctx.broker.metadata.image();
    let mut unknown: Vec<TopicErrors> = Vec::new();
    let mut topics: Vec<core::CommitTopic> = Vec::new();
    for t in std::mem::take(&mut request.topics) {
        let exists = |p: i32| {
            image
                .topic(&t.name)
                .is_some_and(|topic| topic.partitions.contains_key(&p))
        };
        let (known, missing): (Vec<_>, Vec<_>) = t.partitions.into_iter().partition(|p| exists(p.partition));
        if !missing.is_empty() {
            unknown.push(TopicErrors {
                name: t.name.clone(),
                partitions: missing
                    .iter()
                    .map(|p| (p.partition, Some(ResponseError::UnknownTopicOrPartition)))
                    .collect(),
            });
        }
        if !known.is_empty() {
            topics.push(core::CommitTopic {
                name: t.name,
                partitions: known,
            });
        }
    }
    request.topics = topics;
    let all_topics = request.topics.clone();
    let group_id = request.group_id.clone();
    let build = move |id| Event::CommitOffsets(core::CommitRequest { req: id, ..request });
    let (c, c2, unknown2, respond2) = (ctx.clone(), ctx.clone(), unknown.clone(), respond.clone());
    call(
        ctx,
        &group_id,
        build,
        move |r| match r {
            Response::OffsetCommit(o) => Some(respond(&c, o.topics.into_iter().chain(unknown).collect())),
            _ => None,
        },
        move |e| {
            let refused = core::OffsetCommitResponse::all(&all_topics, Some(e)).topics;
            respond2(&c2, refused.into_iter().chain(unknown2).collect())
        },
    )
}

fn commit_topics(ctx: &Ctx, topics: Vec<TopicErrors>) -> Vec<OffsetCommitResponseTopic> {
    topics
        .into_iter()
        .map(|t| {
            OffsetCommitResponseTopic::default()
                .with_name(topic_name(&t.name))
                .with_partitions(
                    t.partitions
                        .into_iter()
                        .map(|(p, e)| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p)
                                .with_error_code(code(ctx, e))
                        })
                        .collect(),
                )
        })
        .collect()
}

/// The committed offsets of one group, or the reason it is not served here.
fn fetch_group(
    ctx: &Ctx,
    group_id: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
    member: (Option<&str>, i32),
) -> FetchedOffsets {
    let fetch = |s: &crate::group::coordinator::GroupCoordinatorState| {
        if let Err(e) = s.validate_consumer_offset_fetch(group_id, member.0, member.1) {
            return FetchedOffsets {
                error: Some(e),
                topics: Vec::new(),
            };
        }
        let mut fetched = s.fetch_offsets(group_id, topics.as_deref());
        if require_stable {
            s.mark_unstable(group_id, &mut fetched);
        }
        fetched
    };
    let fetched = ctx
        .broker
        .groups
        .shard(group_id)
        .map_err(|u| u.error())
        .and_then(|shard| shard.query(fetch).ok_or(ResponseError::NotCoordinator));
    fetched.unwrap_or_else(|e| FetchedOffsets {
        error: Some(e),
        topics: Vec::new(),
    })
}

pub(super) fn offset_fetch(ctx: &Ctx, req: OffsetFetchRequest) -> Reply<OffsetFetchResponse> {
    if ctx.version >= BATCHED_FETCH_FROM_VERSION {
        let groups = req
            .groups
            .into_iter()
            .map(|g| {
                let topics = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name.to_string(), t.partition_indexes))
                        .collect()
                });
                let member = (g.member_id.as_deref(), g.member_epoch);
                let f = fetch_group(ctx, &g.group_id, topics, req.require_stable, member);
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id)
                    .with_error_code(code(ctx, f.error))
                    .with_topics(
                        f.topics
                            .into_iter()
                            .map(|t| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(topic_name(&t.name))
                                    .with_partitions(
                                        t.partitions
                                            .into_iter()
                                            .map(|p| {
                                                OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(p.partition)
                                                    .with_committed_offset(p.offset)
                                                    .with_committed_leader_epoch(p.leader_epoch)
                                                    .with_metadata(Some(text(p.metadata)))
                                                    .with_error_code(code(ctx, p.error))
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    )
            })
            .collect();
        return Reply::Now(OffsetFetchResponse::default().with_groups(groups));
    }
    let topics = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.to_string(), t.partition_indexes))
            .collect()
    });
    let f = fetch_group(ctx, &req.group_id, topics, req.require_stable, (None, -1));
    let topics = f
        .topics
        .into_iter()
        .map(|t| {
            OffsetFetchResponseTopic::default()
                .with_name(topic_name(&t.name))
                .with_partitions(
                    t.partitions
                        .into_iter()
                        .map(|p| {
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(p.partition)
                                .with_committed_offset(p.offset)
                                .with_committed_leader_epoch(p.leader_epoch)
                                .with_metadata(Some(text(p.metadata)))
                                .with_error_code(code(ctx, p.error))
                        })
                        .collect(),
                )
        })
        .collect();
    Reply::Now(
        OffsetFetchResponse::default()
            .with_topics(topics)
            .with_error_code(code(ctx, f.error)),
    )
}

pub(super) fn offset_delete(ctx: &Ctx, req: OffsetDeleteRequest) -> Reply<OffsetDeleteResponse> {
    let group_id = req.group_id.0.to_string();
    let topics: Vec<(String, Vec<i32>)> = req
        .topics
        .into_iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let request = |id| {
        Event::OffsetDelete(core::OffsetDeleteRequest {
            req: id,
            group_id: group_id.clone(),
            topics,
        })
    };
    let c = ctx.clone();
    call(
        ctx,
        &group_id,
        request,
        move |r| match r {
            Response::OffsetDelete(o) => Some(
                OffsetDeleteResponse::default()
                    .with_error_code(code(&c, o.error))
                    .with_topics(delete_topics(&c, o.topics)),
            ),
            _ => None,
        },
        |e| OffsetDeleteResponse::default().with_error_code(e.code()),
    )
}

fn delete_topics(ctx: &Ctx, topics: Vec<TopicErrors>) -> Vec<OffsetDeleteResponseTopic> {
    topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .into_iter()
                .map(|(p, e)| {
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p)
                        .with_error_code(code(ctx, e))
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(topic_name(&t.name))
                .with_partitions(partitions)
        })
        .collect()
}
