//! The authorization gates of the share-group APIs (KIP-932), as Kafka's `KafkaApis` checks
//! them: READ on the group to be a member (ShareFetch, ShareAcknowledge; the heartbeat's gate,
//! with DESCRIBE on its subscribed topics, is `group_subscriber`, shared with KIP-848), READ on
//! each topic fetched or acknowledged, DESCRIBE on each group (and on its assigned topics) to
//! describe it, the share offsets APIs as their consumer-group counterparts, and
//! CLUSTER_ACTION for the share-state RPCs (only brokers call them).
//!
//! A ShareFetch session keeps the partitions it was given even when their topic is refused
//! (as Kafka's): each fetch answers them TOPIC_AUTHORIZATION_FAILED until READ is granted,
//! then serves them; `unreadable_session_partitions` is that per-fetch check.
//!
//! May call: the parent's helpers and `access`. Never touches a service.

use std::collections::BTreeSet;

use bytes::Bytes;
use kafka_protocol::messages::alter_share_group_offsets_response::{
    AlterShareGroupOffsetsResponsePartition, AlterShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic;
use kafka_protocol::messages::describe_share_group_offsets_response::{
    DescribeShareGroupOffsetsResponseGroup, DescribeShareGroupOffsetsResponsePartition,
    DescribeShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::share_acknowledge_response::{self as ack_response, ShareAcknowledgeTopicResponse};
use kafka_protocol::messages::share_fetch_response::{PartitionData, ShareFetchableTopicResponse};
use kafka_protocol::messages::share_group_describe_response::DescribedGroup;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::{
    checking, cluster_refusal, group_member, group_offsets_refusals, pass, patch, refused_topics, take_denied,
    topic_name, Gate, UNDESCRIBABLE_TOPICS,
};
use crate::api::access::Access;
use crate::api::Ctx;
use crate::authz::Operation;

/// Whether READ on the topic of `id` is refused. An unknown (or null) id is not: the handler
/// answers it UNKNOWN_TOPIC_ID, as Kafka does before checking.
fn unreadable(ctx: &Ctx, access: &Access, id: Uuid) -> bool {
    !id.is_nil() && topic_name(ctx, &TopicName::default(), id).is_some_and(|n| !access.topic(Operation::Read, &n))
}

/// ShareGroupDescribe: DESCRIBE on each group (refused ones answer GROUP_AUTHORIZATION_FAILED,
/// first, as Kafka's); a described group assigned topics the client may not describe answers
/// TOPIC_AUTHORIZATION_FAILED instead of its members.
pub(in crate::api) fn share_group_describe(
    ctx: &Ctx,
    req: &mut ShareGroupDescribeRequest,
) -> Gate<ShareGroupDescribeResponse> {
    let Some(access) = checking(ctx) else { return pass() };
    let denied = take_denied(&mut req.group_ids, |g| !access.group(Operation::Describe, g));
    let group_code = match denied.is_empty() {
        true => 0,
        false => ctx.count(ResponseError::GroupAuthorizationFailed),
    };
    let topic_code = ResponseError::TopicAuthorizationFailed.code();
    let c = ctx.clone();
    patch(move |r: &mut ShareGroupDescribeResponse| {
        for g in r.groups.iter_mut().filter(|g| g.error_code == 0) {
            let assigned: BTreeSet<&str> = g
                .members
                .iter()
                .flat_map(|m| &m.assignment.topic_partitions)
                .map(|t| t.topic_name.0.as_str())
                .collect();
            if access.refuses_any_topic(Operation::Describe, assigned) {
                c.count(ResponseError::TopicAuthorizationFailed);
                *g = DescribedGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_error_code(topic_code)
                    .with_error_message(Some(StrBytes::from_static_str(UNDESCRIBABLE_TOPICS)))
                    .with_authorized_operations(g.authorized_operations);
            }
        }
        let refused = denied.into_iter().map(|id| {
            DescribedGroup::default()
                .with_group_id(id)
                .with_error_code(group_code)
                .with_authorized_operations(crate::api::metadata::OPERATIONS_NOT_REQUESTED)
        });
        r.groups.splice(0..0, refused);
    })
}

/// The answer of a ShareFetch partition refused READ on its topic.
fn refused_fetch_partition(index: i32, code: i16) -> PartitionData {
    PartitionData::default()
        .with_partition_index(index)
        .with_error_code(code)
        .with_records(Some(Bytes::new()))
}

/// ShareFetch: READ on the group. The acknowledgements of partitions of topics refused READ
/// are not applied and answer TOPIC_AUTHORIZATION_FAILED; the partitions themselves stay in
/// the request (they join the session, as in Kafka) and are refused when read
/// (`unreadable_session_partitions`).
pub(in crate::api) fn share_fetch(ctx: &Ctx, req: &mut ShareFetchRequest) -> Gate<ShareFetchResponse> {
    let group = req.group_id.as_ref().map_or("", |g| g.0.as_str());
    let gate = group_member(ctx, group, ShareFetchResponse::with_error_code);
    let Some(access) = checking(ctx).filter(|_| matches!(gate, Gate::Pass(_))) else {
        return gate;
    };
    if req.share_session_epoch == crate::share::sessions::OPEN_EPOCH {
        // An opening fetch carries no acknowledgements (the handler refuses those that do).
        return pass();
    }
    let mut refused_acks: Vec<(Uuid, i32)> = Vec::new();
    for t in &mut req.topics {
        let acking = t.partitions.iter().any(|p| !p.acknowledgement_batches.is_empty());
        if !acking || !unreadable(ctx, &access, t.topic_id) {
            continue;
        }
        for p in t
            .partitions
            .iter_mut()
            .filter(|p| !p.acknowledgement_batches.is_empty())
        {
            p.acknowledgement_batches.clear();
            refused_acks.push((t.topic_id, p.partition_index));
        }
    }
    if refused_acks.is_empty() {
        return pass();
    }
    let code = ctx.count(ResponseError::TopicAuthorizationFailed);
    patch(move |r: &mut ShareFetchResponse| {
        for (topic_id, index) in refused_acks {
            let topic = match r.responses.iter().position(|t| t.topic_id == topic_id) {
                Some(i) => &mut r.responses[i],
                None => {
                    r.responses
                        .push(ShareFetchableTopicResponse::default().with_topic_id(topic_id));
                    r.responses.last_mut().expect("just pushed")
                }
            };
            match topic.partitions.iter_mut().find(|p| p.partition_index == index) {
                Some(p) => p.acknowledge_error_code = code,
                None => topic
                    .partitions
                    .push(refused_fetch_partition(index, code).with_acknowledge_error_code(code)),
            }
        }
    })
}

/// Takes the session partitions whose topic the principal may not READ out of `partitions`,
/// and returns their answers (TOPIC_AUTHORIZATION_FAILED): Kafka checks every partition of
/// the session on each fetch, so a revoked READ stops the reads of an open session.
pub(in crate::api) fn unreadable_session_partitions(
    ctx: &Ctx,
    partitions: &mut Vec<(Uuid, i32)>,
) -> Vec<ShareFetchableTopicResponse> {
    let Some(access) = checking(ctx) else { return Vec::new() };
    let mut refused_topics_seen: BTreeSet<Uuid> = BTreeSet::new();
    let mut allowed_topics: BTreeSet<Uuid> = BTreeSet::new();
    let denied = take_denied(partitions, |(id, _)| {
        if allowed_topics.contains(id) {
            return false;
        }
        if refused_topics_seen.contains(id) {
            return true;
        }
        // One decision (and one counted refusal) per topic.
        let refused = unreadable(ctx, &access, *id);
        match refused {
            true => refused_topics_seen.insert(*id),
            false => allowed_topics.insert(*id),
        };
        refused
    });
    if denied.is_empty() {
        return Vec::new();
    }
    let code = ctx.count(ResponseError::TopicAuthorizationFailed);
    let by_topic: Vec<(Uuid, Vec<i32>)> = refused_topics_seen
        .into_iter()
        .map(|id| (id, denied.iter().filter(|(t, _)| *t == id).map(|(_, p)| *p).collect()))
        .collect();
    refused_topics(
        by_topic,
        |(_, ps)| ps.clone(),
        |i| refused_fetch_partition(i, code),
        |(id, _), partitions| {
            ShareFetchableTopicResponse::default()
                .with_topic_id(id)
                .with_partitions(partitions)
        },
    )
}

/// ShareAcknowledge: READ on the group, READ on each topic (refused partitions answer
/// TOPIC_AUTHORIZATION_FAILED, their acknowledgements not applied).
pub(in crate::api) fn share_acknowledge(
    ctx: &Ctx,
    req: &mut ShareAcknowledgeRequest,
) -> Gate<ShareAcknowledgeResponse> {
    let group = req.group_id.as_ref().map_or("", |g| g.0.as_str());
    let gate = group_member(ctx, group, ShareAcknowledgeResponse::with_error_code);
    let Some(access) = checking(ctx).filter(|_| matches!(gate, Gate::Pass(_))) else {
        return gate;
    };
    let denied = take_denied(&mut req.topics, |t| unreadable(ctx, &access, t.topic_id));
    if denied.is_empty() {
        return pass();
    }
    let code = ctx.count(ResponseError::TopicAuthorizationFailed);
    let answers: Vec<ShareAcknowledgeTopicResponse> = refused_topics(
        denied,
        |t| t.partitions.iter().map(|p| p.partition_index).collect(),
        |i| {
            ack_response::PartitionData::default()
                .with_partition_index(i)
                .with_error_code(code)
        },
        |t, partitions| {
            ShareAcknowledgeTopicResponse::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions)
        },
    );
    patch(move |r: &mut ShareAcknowledgeResponse| r.responses.extend(answers))
}

/// DescribeShareGroupOffsets: DESCRIBE on each group; DESCRIBE on each topic asked for
/// (refused ones answer TOPIC_AUTHORIZATION_FAILED), and of all topics only those the
/// principal may describe.
pub(in crate::api) fn describe_share_group_offsets(
    ctx: &Ctx,
    req: &mut DescribeShareGroupOffsetsRequest,
) -> Gate<DescribeShareGroupOffsetsResponse> {
    let Some(access) = checking(ctx) else { return pass() };
    let topic_code = ResponseError::TopicAuthorizationFailed.code();
    let refusals = group_offsets_refusals(
        &access,
        &mut req.groups,
        |g| (&g.group_id, g.topics.as_mut()),
        |t| t.topic_name.0.as_str(),
        |t| {
            ctx.count(ResponseError::TopicAuthorizationFailed);
            let partitions = t
                .partitions
                .iter()
                .map(|i| {
                    DescribeShareGroupOffsetsResponsePartition::default()
                        .with_partition_index(*i)
                        .with_start_offset(-1)
                        .with_leader_epoch(-1)
                        .with_error_code(topic_code)
                })
                .collect();
            DescribeShareGroupOffsetsResponseTopic::default()
                .with_topic_name(t.topic_name)
                .with_partitions(partitions)
        },
    );
    if refusals.is_empty() {
        return pass();
    }
    let group_code = refusals.group_code(ctx);
    patch(move |r: &mut DescribeShareGroupOffsetsResponse| {
        refusals.answer(
            &access,
            &mut r.groups,
            |g| (&g.group_id, &mut g.topics),
            |t| t.topic_name.0.as_str(),
            |id| {
                DescribeShareGroupOffsetsResponseGroup::default()
                    .with_group_id(id)
                    .with_error_code(group_code)
            },
        )
    })
}

/// AlterShareGroupOffsets: READ on the group (else GROUP_AUTHORIZATION_FAILED), READ on each
/// topic (refused ones answer TOPIC_AUTHORIZATION_FAILED on each partition).
pub(in crate::api) fn alter_share_group_offsets(
    ctx: &Ctx,
    req: &mut AlterShareGroupOffsetsRequest,
) -> Gate<AlterShareGroupOffsetsResponse> {
    let gate = group_member(ctx, &req.group_id, AlterShareGroupOffsetsResponse::with_error_code);
    let Some(access) = checking(ctx).filter(|_| matches!(gate, Gate::Pass(_))) else {
        return gate;
    };
    let denied = take_denied(&mut req.topics, |t| !access.topic(Operation::Read, &t.topic_name));
    if denied.is_empty() {
        return pass();
    }
    let code = ctx.count(ResponseError::TopicAuthorizationFailed);
    let image = ctx.broker.metadata.image();
    let answers: Vec<AlterShareGroupOffsetsResponseTopic> = refused_topics(
        denied,
        |t| t.partitions.iter().map(|p| p.partition_index).collect(),
        |i| {
            AlterShareGroupOffsetsResponsePartition::default()
                .with_partition_index(i)
                .with_error_code(code)
        },
        |t, partitions| {
            let id = image.topic(&t.topic_name).map_or(Uuid::nil(), |tp| tp.id);
            AlterShareGroupOffsetsResponseTopic::default()
                .with_topic_name(t.topic_name)
                .with_topic_id(id)
                .with_partitions(partitions)
        },
    );
    patch(move |r: &mut AlterShareGroupOffsetsResponse| r.responses.extend(answers))
}

/// DeleteShareGroupOffsets: DELETE on the group (else GROUP_AUTHORIZATION_FAILED), READ on
/// each topic (refused ones answer TOPIC_AUTHORIZATION_FAILED).
pub(in crate::api) fn delete_share_group_offsets(
    ctx: &Ctx,
    req: &mut DeleteShareGroupOffsetsRequest,
) -> Gate<DeleteShareGroupOffsetsResponse> {
    let Some(access) = checking(ctx) else { return pass() };
    if !access.group(Operation::Delete, &req.group_id) {
        let code = ctx.count(ResponseError::GroupAuthorizationFailed);
        return Gate::Deny(DeleteShareGroupOffsetsResponse::default().with_error_code(code));
    }
    let denied = take_denied(&mut req.topics, |t| !access.topic(Operation::Read, &t.topic_name));
    if denied.is_empty() {
        return pass();
    }
    let code = ctx.count(ResponseError::TopicAuthorizationFailed);
    let image = ctx.broker.metadata.image();
    let answers: Vec<DeleteShareGroupOffsetsResponseTopic> = denied
        .into_iter()
        .map(|t| {
            let id = image.topic(&t.topic_name).map_or(Uuid::nil(), |tp| tp.id);
            DeleteShareGroupOffsetsResponseTopic::default()
                .with_topic_name(t.topic_name)
                .with_topic_id(id)
                .with_error_code(code)
        })
        .collect();
    patch(move |r: &mut DeleteShareGroupOffsetsResponse| r.responses.extend(answers))
}

/// Declares the gate of a share-state RPC (inter-broker): CLUSTER_ACTION on the cluster, else
/// every partition it names answers CLUSTER_AUTHORIZATION_FAILED (Kafka's `getErrorResponse`).
/// The five have the same topic/partition shape in different message types.
macro_rules! share_state_gate {
    ($name:ident, $req:ty, $resp:ty, $module:ident, $result:ident) => {
        pub(in crate::api) fn $name(ctx: &Ctx, req: &$req) -> Gate<$resp> {
            use kafka_protocol::messages::$module::{$result, PartitionResult};
            cluster_refusal(ctx, Operation::ClusterAction, |code| {
                let results = req
                    .topics
                    .iter()
                    .map(|t| {
                        let partitions = t
                            .partitions
                            .iter()
                            .map(|p| {
                                PartitionResult::default()
                                    .with_partition(p.partition)
                                    .with_error_code(code)
                            })
                            .collect();
                        $result::default()
                            .with_topic_id(t.topic_id)
                            .with_partitions(partitions)
                    })
                    .collect();
                <$resp>::default().with_results(results)
            })
        }
    };
}

share_state_gate!(
    read_share_group_state,
    ReadShareGroupStateRequest,
    ReadShareGroupStateResponse,
    read_share_group_state_response,
    ReadStateResult
);
share_state_gate!(
    write_share_group_state,
    WriteShareGroupStateRequest,
    WriteShareGroupStateResponse,
    write_share_group_state_response,
    WriteStateResult
);
share_state_gate!(
    initialize_share_group_state,
    InitializeShareGroupStateRequest,
    InitializeShareGroupStateResponse,
    initialize_share_group_state_response,
    InitializeStateResult
);
share_state_gate!(
    delete_share_group_state,
    DeleteShareGroupStateRequest,
    DeleteShareGroupStateResponse,
    delete_share_group_state_response,
    DeleteStateResult
);
share_state_gate!(
    read_share_group_state_summary,
    ReadShareGroupStateSummaryRequest,
    ReadShareGroupStateSummaryResponse,
    read_share_group_state_summary_response,
    ReadStateSummaryResult
);
