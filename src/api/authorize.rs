//! Which operation on which resource each request needs, and what a refused part of it is
//! answered with: Kafka's `KafkaApis` checks, request by request. A request refused whole is
//! answered here (`Gate::Deny`); a partly refused one goes on without its refused parts, and
//! their error entries are added to the handler's answer (`Gate::Pass` with a patch), as
//! Kafka's handlers filter by authorization and merge the refused parts back.
//!
//! With no authorizer configured every gate passes at once, so the hot paths pay one branch.
//! Metadata, DescribeTopicPartitions, DescribeCluster and the group administration APIs check
//! inside their handlers (they list what the principal may see); the ACL APIs in `acls`. The
//! share-group APIs' gates are in `share`.
//!
//! May call: `access` (the decision). Never touches a service.

use bytes::Bytes;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::access::Access;
use super::{Ctx, Reply};
use crate::authz::{Operation, ResourceType};

pub(super) mod share;

/// Kafka's message for a described group (KIP-848 or KIP-932) assigned topics the client may
/// not describe: the group answers TOPIC_AUTHORIZATION_FAILED instead of its members.
pub(super) const UNDESCRIBABLE_TOPICS: &str =
    "The group has described topic(s) that the client is not authorized to describe.";

/// What a request may do.
pub(super) enum Gate<R> {
    /// Refused whole: this is the answer.
    Deny(R),
    /// Goes on (without its refused parts); the patch adds their answers.
    Pass(Option<Patch<R>>),
}

pub(super) type Patch<R> = Box<dyn FnOnce(&mut R) + Send>;

fn pass<R>() -> Gate<R> {
    Gate::Pass(None)
}

fn patch<R>(f: impl FnOnce(&mut R) + Send + 'static) -> Gate<R> {
    Gate::Pass(Some(Box::new(f)))
}

/// Runs the handler if the gate lets the request through, and patches its answer.
pub(super) fn guard<R: Send + 'static>(gate: Gate<R>, run: impl FnOnce() -> Reply<R>) -> Reply<R> {
    match gate {
        Gate::Deny(r) => Reply::Now(r),
        Gate::Pass(None) => run(),
        Gate::Pass(Some(p)) => patched(run(), p),
    }
}

fn patched<R: Send + 'static>(reply: Reply<R>, p: Patch<R>) -> Reply<R> {
    match reply {
        Reply::Now(mut r) => {
            p(&mut r);
            Reply::Now(r)
        }
        Reply::Later(fut) => Reply::Later(Box::pin(async move {
            let mut r = fut.await;
            p(&mut r);
            r
        })),
        // Kafka closes an acks=0 producer's connection when any partition fails.
        Reply::Silent => Reply::Close("acks=0 produce to topics the principal may not write".into()),
        Reply::Close(why) => Reply::Close(why),
        Reply::Decided(fut) => Reply::Decided(Box::pin(async move { patched(fut.await, p) })),
    }
}

/// Takes the items `denied` refuses out of `items`.
fn take_denied<T>(items: &mut Vec<T>, mut denied: impl FnMut(&T) -> bool) -> Vec<T> {
    let (out, kept): (Vec<T>, Vec<T>) = std::mem::take(items).into_iter().partition(|t| denied(t));
    *items = kept;
    out
}

/// The answers of refused topics: each with every partition the request named answered by
/// `partition(index)`.
fn refused_topics<T, P, A>(
    denied: Vec<T>,
    indexes: impl Fn(&T) -> Vec<i32>,
    partition: impl Fn(i32) -> P,
    topic: impl Fn(T, Vec<P>) -> A,
) -> Vec<A> {
    denied
        .into_iter()
        .map(|t| {
            let partitions = indexes(&t).into_iter().map(&partition).collect();
            topic(t, partitions)
        })
        .collect()
}

/// The access of a request, or None when no authorizer is configured (everything passes,
/// without building anything: the hot paths pay one branch).
fn checking(ctx: &Ctx) -> Option<Access> {
    ctx.broker.authorizer.enabled().then(|| ctx.access())
}

/// A topic named by id (recent versions) or by name: its name in the current image. None for
/// an unknown id, which the handler answers (UNKNOWN_TOPIC_ID) as Kafka does before any
/// authorization.
fn topic_name(ctx: &Ctx, name: &TopicName, id: Uuid) -> Option<String> {
    if id.is_nil() {
        return Some(name.0.to_string());
    }
    let image = ctx.broker.metadata.image();
    image.topic_by_id(&id).map(|t| t.name.clone())
}

/// Whether `op` on the topic is refused (never for an unknown topic id).
fn topic_refused(ctx: &Ctx, access: &Access, op: Operation, name: &TopicName, id: Uuid) -> bool {
    topic_name(ctx, name, id).is_some_and(|n| !access.topic(op, &n))
}

/// Produce: WRITE on the transactional id if any (else every partition
/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED), WRITE on each topic.
pub(super) fn produce(ctx: &Ctx, req: &mut ProduceRequest) -> Gate<ProduceResponse> {
    let Some(access) = checking(ctx) else { return pass() };
    let txn = req
        .transactional_id
        .as_ref()
        .map(|t| t.0.to_string())
        .filter(|t| !t.is_empty());
    let txn_denied = txn.is_some_and(|id| !access.transactional_id(Operation::Write, &id));
    let denied = take_denied(&mut req.topic_data, |t| {
        txn_denied || topic_refused(ctx, &access, Operation::Write, &t.name, t.topic_id)
    });
    if denied.is_empty() {
        return pass();
    }
    let error = match txn_denied {
        true => ResponseError::TransactionalIdAuthorizationFailed,
        false => ResponseError::TopicAuthorizationFailed,
    };
    let code = ctx.count(error);
    let answers: Vec<TopicProduceResponse> = refused_topics(
        denied,
        |t| t.partition_data.iter().map(|p| p.index).collect(),
        |i| {
            PartitionProduceResponse::default()
                .with_index(i)
                .with_error_code(code)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1)
        },
        |t, partitions| {
            TopicProduceResponse::default()
                .with_name(t.name)
                .with_topic_id(t.topic_id)
                .with_partition_responses(partitions)
        },
    );
    patch(move |r: &mut ProduceResponse| r.responses.extend(answers))
}

/// Fetch: a follower's needs CLUSTER_ACTION on the cluster, a consumer's READ on each topic.
pub(super) fn fetch(ctx: &Ctx, req: &mut FetchRequest) -> Gate<FetchResponse> {
    let Some(access) = checking(ctx) else { return pass() };
    let follower = super::fetch::follower_id(req, ctx.version).is_some();
    let cluster_denied = follower && !access.cluster(Operation::ClusterAction);
    let denied = take_denied(&mut req.topics, |t| {
        cluster_denied || (!follower && topic_refused(ctx, &access, Operation::Read, &t.topic, t.topic_id))
    });
    if denied.is_empty() {
        return pass();
    }
    if req.topics.is_empty() {
        // Nothing left to wait for: answer the errors at once.
        req.max_wait_ms = 0;
    }
    let code = ctx.count(ResponseError::TopicAuthorizationFailed);
    let answers: Vec<FetchableTopicResponse> = refused_topics(
        denied,
        |t| t.partitions.iter().map(|p| p.partition).collect(),
        |i| {
            PartitionData::default()
                .with_partition_index(i)
                .with_error_code(code)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_records(Some(Bytes::new()))
        },
        |t, partitions| {
            FetchableTopicResponse::default()
                .with_topic(t.topic)
                .with_topic_id(t.topic_id)
                .with_partitions(partitions)
        },
    );
    patch(move |r: &mut FetchResponse| r.responses.extend(answers))
}

/// ListOffsets: DESCRIBE on each topic.
pub(super) fn list_offsets(ctx: &Ctx, req: &mut ListOffsetsRequest) -> Gate<ListOffsetsResponse> {
    let Some(access) = checking(ctx) else { return pass() };
    let denied = take_denied(&mut req.topics, |t| !access.topic(Operation::Describe, &t.name));
    if denied.is_empty() {
        return pass();
    }
    let code = ctx.count(ResponseError::TopicAuthorizationFailed);
    let answers: Vec<ListOffsetsTopicResponse> = refused_topics(
        denied,
        |t| t.partitions.iter().map(|p| p.partition_index).collect(),
        |i| {
            ListOffsetsPartitionResponse::default()
                .with_partition_index(i)
                .with_error_code(code)
                .with_timestamp(-1)
                .with_offset(-1)
        },
        |t, partitions| {
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        },
    );
    patch(move |r: &mut ListOffsetsResponse| r.topics.extend(answers))
}

/// OffsetForLeaderEpoch: a follower's needs CLUSTER_ACTION, a consumer's DESCRIBE on each topic.
pub(super) fn offset_for_leader_epoch(
    ctx: &Ctx,
    req: &mut OffsetForLeaderEpochRequest,
) -> Gate<OffsetForLeaderEpochResponse> {
    use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
    let Some(access) = checking(ctx) else { return pass() };
    let follower = req.replica_id.0 >= 0;
    let (cluster_denied, error) = match follower {
        true => (
            !access.cluster(Operation::ClusterAction),
            ResponseError::ClusterAuthorizationFailed,
        ),
        false => (false, ResponseError::TopicAuthorizationFailed),
    };
    let denied = take_denied(&mut req.topics, |t| {
        cluster_denied || (!follower && !access.topic(Operation::Describe, &t.topic))
    });
    if denied.is_empty() {
        return pass();
    }
    let code = ctx.count(error);
    let answers: Vec<OffsetForLeaderTopicResult> = refused_topics(
        denied,
        |t| t.partitions.iter().map(|p| p.partition).collect(),
        |i| {
            EpochEndOffset::default()
                .with_partition(i)
                .with_error_code(code)
                .with_leader_epoch(-1)
                .with_end_offset(-1)
        },
        |t, partitions| {
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        },
    );
    patch(move |r: &mut OffsetForLeaderEpochResponse| r.topics.extend(answers))
}

/// DeleteRecords: DELETE on each topic.
pub(super) fn delete_records(ctx: &Ctx, req: &mut DeleteRecordsRequest) -> Gate<DeleteRecordsResponse> {
    use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
    let Some(access) = checking(ctx) else { return pass() };
    let denied = take_denied(&mut req.topics, |t| !access.topic(Operation::Delete, &t.name));
    if denied.is_empty() {
        return pass();
    }
    let code = ctx.count(ResponseError::TopicAuthorizationFailed);
    let answers: Vec<DeleteRecordsTopicResult> = refused_topics(
        denied,
        |t| t.partitions.iter().map(|p| p.partition_index).collect(),
        |i| {
            DeleteRecordsPartitionResult::default()
                .with_partition_index(i)
                .with_error_code(code)
                .with_low_watermark(-1)
        },
        |t, partitions| {
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        },
    );
    patch(move |r: &mut DeleteRecordsResponse| r.topics.extend(answers))
}

/// The error of every partition when the group (or transactional id) is refused, else of the
/// refused topics only; `group_error` first, as Kafka checks the group before the topics.
fn commit_errors<T>(
    ctx: &Ctx,
    topics: &mut Vec<T>,
    whole: Option<ResponseError>,
    topic_denied: impl FnMut(&T) -> bool,
) -> Option<(Vec<T>, i16)> {
    let denied = match whole {
        Some(_) => std::mem::take(topics),
        None => take_denied(topics, topic_denied),
    };
    if denied.is_empty() {
        return None;
    }
    Some((
        denied,
        ctx.count(whole.unwrap_or(ResponseError::TopicAuthorizationFailed)),
    ))
}

/// OffsetCommit: READ on the group, READ on each topic.
pub(super) fn offset_commit(ctx: &Ctx, req: &mut OffsetCommitRequest) -> Gate<OffsetCommitResponse> {
    let Some(access) = checking(ctx) else { return pass() };
    let whole = (!access.group(Operation::Read, &req.group_id)).then_some(ResponseError::GroupAuthorizationFailed);
    let Some((denied, code)) = commit_errors(ctx, &mut req.topics, whole, |t| {
        topic_refused(ctx, &access, Operation::Read, &t.name, t.topic_id)
    }) else {
        return pass();
    };
    let answers: Vec<OffsetCommitResponseTopic> = refused_topics(
        denied,
        |t| t.partitions.iter().map(|p| p.partition_index).collect(),
        |i| {
            OffsetCommitResponsePartition::default()
                .with_partition_index(i)
                .with_error_code(code)
        },
        |t, partitions| {
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_topic_id(t.topic_id)
                .with_partitions(partitions)
        },
    );
    match whole {
        Some(_) => Gate::Deny(OffsetCommitResponse::default().with_topics(answers)),
        None => patch(move |r: &mut OffsetCommitResponse| r.topics.extend(answers)),
    }
}

/// TxnOffsetCommit: WRITE on the transactional id, READ on the group, READ on each topic.
pub(super) fn txn_offset_commit(ctx: &Ctx, req: &mut TxnOffsetCommitRequest) -> Gate<TxnOffsetCommitResponse> {
    use kafka_protocol::messages::txn_offset_commit_response::{
        TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
    };
    let Some(access) = checking(ctx) else { return pass() };
    let whole = if !access.transactional_id(Operation::Write, &req.transactional_id) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !access.group(Operation::Read, &req.group_id) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        None
    };
    let Some((denied, code)) = commit_errors(ctx, &mut req.topics, whole, |t| !access.topic(Operation::Read, &t.name))
    else {
        return pass();
    };
    let answers: Vec<TxnOffsetCommitResponseTopic> = refused_topics(
        denied,
        |t| t.partitions.iter().map(|p| p.partition_index).collect(),
        |i| {
            TxnOffsetCommitResponsePartition::default()
                .with_partition_index(i)
                .with_error_code(code)
        },
        |t, partitions| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        },
    );
    match whole {
        Some(_) => Gate::Deny(TxnOffsetCommitResponse::default().with_topics(answers)),
        None => patch(move |r: &mut TxnOffsetCommitResponse| r.topics.extend(answers)),
    }
}

fn unauthorized_offset(index: i32, code: i16) -> OffsetFetchResponsePartitions {
    OffsetFetchResponsePartitions::default()
        .with_partition_index(index)
        .with_committed_offset(-1)
        .with_committed_leader_epoch(-1)
        .with_metadata(Some(StrBytes::default()))
        .with_error_code(code)
}

/// OffsetFetch: DESCRIBE on each group; on each topic asked for (refused ones answer
/// TOPIC_AUTHORIZATION_FAILED), and of all topics only those the principal may describe.
pub(super) fn offset_fetch(ctx: &Ctx, req: &mut OffsetFetchRequest) -> Gate<OffsetFetchResponse> {
    let Some(access) = checking(ctx) else { return pass() };
    if ctx.version < 8 {
        return offset_fetch_single(ctx, access, req);
    }
    let topic_code = ctx.count(ResponseError::TopicAuthorizationFailed);
    let refusals = group_offsets_refusals(
        &access,
        &mut req.groups,
        |g| (&g.group_id, g.topics.as_mut()),
        |t| t.name.0.as_str(),
        |t| {
            let partitions = t
                .partition_indexes
                .iter()
                .map(|i| unauthorized_offset(*i, topic_code))
                .collect();
            OffsetFetchResponseTopics::default()
                .with_name(t.name)
                .with_topic_id(t.topic_id)
                .with_partitions(partitions)
        },
    );
    if refusals.is_empty() {
        return pass();
    }
    let group_code = refusals.group_code(ctx);
    patch(move |r: &mut OffsetFetchResponse| {
        refusals.answer(
            &access,
            &mut r.groups,
            |g| (&g.group_id, &mut g.topics),
            |t| t.name.0.as_str(),
            |id| {
                kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup::default()
                    .with_group_id(id)
                    .with_error_code(group_code)
            },
        )
    })
}

/// The refusals of a request for the offsets of several groups (OffsetFetch v8+,
/// DescribeShareGroupOffsets): DESCRIBE on each group and on each topic it names; a group
/// naming no topics asks for all of them, and is shown only those the principal may describe.
struct GroupOffsetsRefusals<A> {
    /// Groups refused DESCRIBE.
    groups: Vec<GroupId>,
    /// The answers of the refused topics of the other groups.
    topics: Vec<(GroupId, A)>,
    /// Groups asking for all their topics.
    every_topic: Vec<GroupId>,
}

/// Takes the groups, and the topics of the others, refused DESCRIBE out of `groups` (each
/// group's id and topics by `parts`, None for all); `answer` answers a refused topic.
fn group_offsets_refusals<G, T, A>(
    access: &Access,
    groups: &mut Vec<G>,
    parts: impl Fn(&mut G) -> (&GroupId, Option<&mut Vec<T>>),
    name: impl Fn(&T) -> &str,
    mut answer: impl FnMut(T) -> A,
) -> GroupOffsetsRefusals<A> {
    let mut out = GroupOffsetsRefusals {
        groups: Vec::new(),
        topics: Vec::new(),
        every_topic: Vec::new(),
    };
    groups.retain_mut(|g| {
        let (id, topics) = parts(g);
        if !access.group(Operation::Describe, id) {
            out.groups.push(id.clone());
            return false;
        }
        match topics {
            None => out.every_topic.push(id.clone()),
            Some(topics) => {
                for t in take_denied(topics, |t| !access.topic(Operation::Describe, name(t))) {
                    out.topics.push((id.clone(), answer(t)));
                }
            }
        }
        true
    });
    out
}

impl<A: Clone> GroupOffsetsRefusals<A> {
    fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.topics.is_empty() && self.every_topic.is_empty()
    }

    /// The code refused groups answer (counted when there are some).
    fn group_code(&self, ctx: &Ctx) -> i16 {
        match self.groups.is_empty() {
            true => 0,
            false => ctx.count(ResponseError::GroupAuthorizationFailed),
        }
    }

    /// Adds the refusals to the handler's answer `groups`: hides the topics the principal may
    /// not describe from groups asking for all, adds the refused topics' answers, and the
    /// refused groups' (`refused_group`).
    fn answer<RG>(
        self,
        access: &Access,
        groups: &mut Vec<RG>,
        parts: impl Fn(&mut RG) -> (&GroupId, &mut Vec<A>),
        name: impl Fn(&A) -> &str,
        refused_group: impl Fn(GroupId) -> RG,
    ) {
        for g in groups.iter_mut() {
            let (id, topics) = parts(g);
            if self.every_topic.contains(id) {
                topics.retain(|t| access.may(Operation::Describe, ResourceType::Topic, name(t)));
            }
            let refused = self.topics.iter().filter(|(group, _)| group == id);
            topics.extend(refused.map(|(_, t)| t.clone()));
        }
        groups.extend(self.groups.into_iter().map(refused_group));
    }
}

fn offset_fetch_single(ctx: &Ctx, access: Access, req: &mut OffsetFetchRequest) -> Gate<OffsetFetchResponse> {
    if !access.group(Operation::Describe, &req.group_id) {
        let code = ctx.count(ResponseError::GroupAuthorizationFailed);
        return Gate::Deny(OffsetFetchResponse::default().with_error_code(code));
    }
    let Some(topics) = &mut req.topics else {
        let describable = move |name: &str| access.may(Operation::Describe, ResourceType::Topic, name);
        return patch(move |r: &mut OffsetFetchResponse| r.topics.retain(|t| describable(&t.name)));
    };
    let denied = take_denied(topics, |t| !access.topic(Operation::Describe, &t.name));
    if denied.is_empty() {
        return pass();
    }
    let code = ctx.count(ResponseError::TopicAuthorizationFailed);
    let answers: Vec<OffsetFetchResponseTopic> = denied
        .into_iter()
        .map(|t| {
            let partitions = t
                .partition_indexes
                .iter()
                .map(|i| {
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(*i)
                        .with_committed_offset(-1)
                        .with_committed_leader_epoch(-1)
                        .with_metadata(Some(StrBytes::default()))
                        .with_error_code(code)
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    patch(move |r: &mut OffsetFetchResponse| r.topics.extend(answers))
}

/// OffsetDelete: DELETE on the group, READ on each topic.
pub(super) fn offset_delete(ctx: &Ctx, req: &mut OffsetDeleteRequest) -> Gate<OffsetDeleteResponse> {
    use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
    let Some(access) = checking(ctx) else { return pass() };
    if !access.group(Operation::Delete, &req.group_id) {
        let code = ctx.count(ResponseError::GroupAuthorizationFailed);
        return Gate::Deny(OffsetDeleteResponse::default().with_error_code(code));
    }
    let denied = take_denied(&mut req.topics, |t| !access.topic(Operation::Read, &t.name));
    if denied.is_empty() {
        return pass();
    }
    let code = ctx.count(ResponseError::TopicAuthorizationFailed);
    let answers: Vec<OffsetDeleteResponseTopic> = refused_topics(
        denied,
        |t| t.partitions.iter().map(|p| p.partition_index).collect(),
        |i| {
            OffsetDeleteResponsePartition::default()
                .with_partition_index(i)
                .with_error_code(code)
        },
        |t, partitions| {
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        },
    );
    patch(move |r: &mut OffsetDeleteResponse| r.topics.extend(answers))
}

/// FindCoordinator: DESCRIBE on the group (key type 0) or transactional id (1).
pub(super) fn find_coordinator(ctx: &Ctx, req: &mut FindCoordinatorRequest) -> Gate<FindCoordinatorResponse> {
    let Some(access) = checking(ctx) else { return pass() };
    let (resource, error) = match req.key_type {
        1 => (
            ResourceType::TransactionalId,
            ResponseError::TransactionalIdAuthorizationFailed,
        ),
        // Other key types are refused by the handler.
        0 => (ResourceType::Group, ResponseError::GroupAuthorizationFailed),
        _ => return pass(),
    };
    let refused = |key: &str| !access.allows(Operation::Describe, resource, key);
    if ctx.version < 4 {
        if !refused(&req.key) {
            return pass();
        }
        let code = ctx.count(error);
        return Gate::Deny(
            FindCoordinatorResponse::default()
                .with_error_code(code)
                .with_node_id(BrokerId(-1))
                .with_host(StrBytes::default())
                .with_port(-1),
        );
    }
    let denied = take_denied(&mut req.coordinator_keys, |k| refused(k));
    if denied.is_empty() {
        return pass();
    }
    let code = ctx.count(error);
    let answers: Vec<Coordinator> = denied
        .into_iter()
        .map(|key| {
            Coordinator::default()
                .with_key(key)
                .with_node_id(BrokerId(-1))
                .with_host(StrBytes::default())
                .with_port(-1)
                .with_error_code(code)
        })
        .collect();
    if req.coordinator_keys.is_empty() {
        return Gate::Deny(FindCoordinatorResponse::default().with_coordinators(answers));
    }
    patch(move |r: &mut FindCoordinatorResponse| r.coordinators.extend(answers))
}

/// A group membership request (JoinGroup, SyncGroup, Heartbeat, LeaveGroup): READ on the group.
pub(super) fn group_member<R: Default>(ctx: &Ctx, group: &str, with_error: fn(R, i16) -> R) -> Gate<R> {
    let Some(access) = checking(ctx) else { return pass() };
    match access.group(Operation::Read, group) {
        true => pass(),
        false => Gate::Deny(with_error(
            R::default(),
            ctx.count(ResponseError::GroupAuthorizationFailed),
        )),
    }
}

/// A heartbeat of KIP-848 or KIP-932 membership: READ on the group, then DESCRIBE on every
/// topic it subscribes to by name (one refused refuses the heartbeat,
/// TOPIC_AUTHORIZATION_FAILED), as Kafka's handlers check both.
pub(super) fn group_subscriber<R: Default>(
    ctx: &Ctx,
    group: &str,
    subscribed: Option<&Vec<TopicName>>,
    with_error: fn(R, i16) -> R,
) -> Gate<R> {
    let gate = group_member(ctx, group, with_error);
    let Some(access) = checking(ctx).filter(|_| matches!(gate, Gate::Pass(_))) else {
        return gate;
    };
    // Every subscribed topic is checked (and each refusal counted), as Kafka filters them all.
    let refused = subscribed
        .into_iter()
        .flatten()
        .filter(|t| !access.topic(Operation::Describe, t))
        .count();
    match refused {
        0 => pass(),
        _ => Gate::Deny(with_error(
            R::default(),
            ctx.count(ResponseError::TopicAuthorizationFailed),
        )),
    }
}

/// JoinGroup's refusal: as Kafka's, with the member id asked for and a null protocol name
/// where the version allows it.
pub(super) fn join_group(ctx: &Ctx, req: &JoinGroupRequest) -> Gate<JoinGroupResponse> {
    let v7 = ctx.version >= 7;
    match group_member(ctx, &req.group_id, JoinGroupResponse::with_error_code) {
        Gate::Deny(r) => {
            let r = r.with_member_id(req.member_id.clone());
            Gate::Deny(if v7 { r.with_protocol_name(None) } else { r })
        }
        gate => gate,
    }
}

/// A request refused whole unless `op` on the cluster is allowed (CLUSTER_AUTHORIZATION_FAILED).
pub(super) fn cluster<R: Default>(ctx: &Ctx, op: Operation, with_error: fn(R, i16) -> R) -> Gate<R> {
    cluster_refusal(ctx, op, |code| with_error(R::default(), code))
}

/// A request refused whole unless `op` on the cluster is allowed; `refusal` builds the answer
/// from the error code (for answers that carry it per part, not at the top).
fn cluster_refusal<R>(ctx: &Ctx, op: Operation, refusal: impl FnOnce(i16) -> R) -> Gate<R> {
    let Some(access) = checking(ctx) else { return pass() };
    match access.require_cluster(op) {
        Ok(()) => pass(),
        Err(e) => Gate::Deny(refusal(ctx.count(e))),
    }
}

/// CreateTopics: CREATE on the cluster, else on each topic; a created topic's configs are
/// shown only with DESCRIBE_CONFIGS on it.
pub(super) fn create_topics(ctx: &Ctx, req: &mut CreateTopicsRequest) -> Gate<CreateTopicsResponse> {
    let Some(access) = checking(ctx) else { return pass() };
    let on_cluster = access.may(Operation::Create, ResourceType::Cluster, crate::authz::CLUSTER_NAME);
    let denied = take_denied(&mut req.topics, |t| {
        !on_cluster && !access.topic(Operation::Create, &t.name)
    });
    let code = match denied.is_empty() {
        true => 0,
        false => ctx.count(ResponseError::TopicAuthorizationFailed),
    };
    let answers: Vec<CreatableTopicResult> = denied
        .into_iter()
        .map(|t| {
            CreatableTopicResult::default()
                .with_name(t.name)
                .with_error_code(code)
                .with_num_partitions(-1)
                .with_replication_factor(-1)
        })
        .collect();
    let version = ctx.version;
    patch(move |r: &mut CreateTopicsResponse| {
        for t in &mut r.topics {
            if version >= 5
                && t.error_code == 0
                && !access.may(Operation::DescribeConfigs, ResourceType::Topic, &t.name)
            {
                t.topic_config_error_code = ResponseError::TopicAuthorizationFailed.code();
                t.configs = Some(Vec::new());
            }
        }
        r.topics.extend(answers);
    })
}

/// DeleteTopics: DELETE on each topic (named, or by id: then DESCRIBE too).
pub(super) fn delete_topics(ctx: &Ctx, req: &mut DeleteTopicsRequest) -> Gate<DeleteTopicsResponse> {
    let Some(access) = checking(ctx) else { return pass() };
    let refused = |name: &str| !access.topic(Operation::Delete, name);
    let mut answers: Vec<DeletableTopicResult> = Vec::new();
    for name in take_denied(&mut req.topic_names, |n| refused(n)) {
        answers.push(DeletableTopicResult::default().with_name(Some(name)));
    }
    let image = ctx.broker.metadata.image();
    for t in take_denied(&mut req.topics, |t| match (&t.name, image.topic_by_id(&t.topic_id)) {
        (Some(name), _) if t.topic_id.is_nil() => refused(name),
        (_, Some(topic)) => !access.topic(Operation::Describe, &topic.name) || refused(&topic.name),
        // An unknown id: the handler says so.
        _ => false,
    }) {
        answers.push(
            DeletableTopicResult::default()
                .with_name(t.name)
                .with_topic_id(t.topic_id),
        );
    }
    if answers.is_empty() {
        return pass();
    }
    let code = ctx.count(ResponseError::TopicAuthorizationFailed);
    for a in &mut answers {
        a.error_code = code;
    }
    patch(move |r: &mut DeleteTopicsResponse| r.responses.extend(answers))
}

/// CreatePartitions: ALTER on each topic.
pub(super) fn create_partitions(ctx: &Ctx, req: &mut CreatePartitionsRequest) -> Gate<CreatePartitionsResponse> {
    use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
    let Some(access) = checking(ctx) else { return pass() };
    let denied = take_denied(&mut req.topics, |t| !access.topic(Operation::Alter, &t.name));
    if denied.is_empty() {
        return pass();
    }
    let code = ctx.count(ResponseError::TopicAuthorizationFailed);
    let answers: Vec<CreatePartitionsTopicResult> = denied
        .into_iter()
        .map(|t| {
            CreatePartitionsTopicResult::default()
                .with_name(t.name)
                .with_error_code(code)
        })
        .collect();
    patch(move |r: &mut CreatePartitionsResponse| r.results.extend(answers))
}

/// The resource and refusal a config resource's `op` is checked on: a topic or a group by
/// name, anything of the broker (BROKER, BROKER_LOGGER, CLIENT_METRICS) on the cluster.
fn config_check(access: &Access, op: Operation, resource_type: i8, name: &str) -> Option<ResponseError> {
    let (allowed, error) = match resource_type {
        2 => (access.topic(op, name), ResponseError::TopicAuthorizationFailed),
        32 => (access.group(op, name), ResponseError::GroupAuthorizationFailed),
        4 | 8 | 16 => (access.cluster(op), ResponseError::ClusterAuthorizationFailed),
        // Unknown types are the handler's to refuse.
        _ => (true, ResponseError::UnknownServerError),
    };
    (!allowed).then_some(error)
}

/// DescribeConfigs: DESCRIBE_CONFIGS on each resource.
pub(super) fn describe_configs(ctx: &Ctx, req: &mut DescribeConfigsRequest) -> Gate<DescribeConfigsResponse> {
    let Some(access) = checking(ctx) else { return pass() };
    let mut answers = Vec::new();
    req.resources.retain(|r| {
        match config_check(&access, Operation::DescribeConfigs, r.resource_type, &r.resource_name) {
            None => true,
            Some(e) => {
                answers.push(
                    DescribeConfigsResult::default()
                        .with_error_code(ctx.count(e))
                        .with_error_message(None)
                        .with_resource_type(r.resource_type)
                        .with_resource_name(r.resource_name.clone()),
                );
                false
            }
        }
    });
    if answers.is_empty() {
        return pass();
    }
    patch(move |r: &mut DescribeConfigsResponse| r.results.extend(answers))
}

/// Declares the gate of an AlterConfigs-like request (ALTER_CONFIGS on each resource): both
/// have the same resource and answer fields in different message types.
macro_rules! alter_configs_gate {
    ($name:ident, $req:ty, $resp:ty, $answer:ty) => {
        pub(super) fn $name(ctx: &Ctx, req: &mut $req) -> Gate<$resp> {
            let Some(access) = checking(ctx) else {
                return pass();
            };
            let mut answers = Vec::new();
            req.resources.retain(|r| {
                match config_check(
                    &access,
                    Operation::AlterConfigs,
                    r.resource_type,
                    &r.resource_name,
                ) {
                    None => true,
                    Some(e) => {
                        answers.push(
                            <$answer>::default()
                                .with_error_code(ctx.count(e))
                                .with_error_message(None)
                                .with_resource_type(r.resource_type)
                                .with_resource_name(r.resource_name.clone()),
                        );
                        false
                    }
                }
            });
            if answers.is_empty() {
                return pass();
            }
            patch(move |r: &mut $resp| r.responses.extend(answers))
        }
    };
}

alter_configs_gate!(
    alter_configs,
    AlterConfigsRequest,
    AlterConfigsResponse,
    kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse
);
alter_configs_gate!(
    incremental_alter_configs,
    IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
    kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse
);

/// InitProducerId: WRITE on the transactional id; without one (idempotence), IDEMPOTENT_WRITE
/// on the cluster or WRITE on some topic (Kafka's `authorizeByResourceType`).
pub(super) fn init_producer_id(ctx: &Ctx, req: &InitProducerIdRequest) -> Gate<InitProducerIdResponse> {
    let Some(access) = checking(ctx) else { return pass() };
    let error = match req.transactional_id.as_ref().filter(|t| !t.is_empty()) {
        Some(id) if !access.transactional_id(Operation::Write, id) => ResponseError::TransactionalIdAuthorizationFailed,
        Some(_) => return pass(),
        None if access.may(
            Operation::IdempotentWrite,
            ResourceType::Cluster,
            crate::authz::CLUSTER_NAME,
        ) || access.any_of_type(Operation::Write, ResourceType::Topic) =>
        {
            return pass()
        }
        None => ResponseError::ClusterAuthorizationFailed,
    };
    Gate::Deny(
        InitProducerIdResponse::default()
            .with_error_code(ctx.count(error))
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    )
}

/// A request refused whole unless WRITE on its transactional id (AddOffsetsToTxn also needs
/// READ on its group).
pub(super) fn transactional<R: Default>(
    ctx: &Ctx,
    transactional_id: &str,
    group: Option<&str>,
    with_error: fn(R, i16) -> R,
) -> Gate<R> {
    let Some(access) = checking(ctx) else { return pass() };
    let error = if !access.transactional_id(Operation::Write, transactional_id) {
        ResponseError::TransactionalIdAuthorizationFailed
    } else if group.is_some_and(|g| !access.group(Operation::Read, g)) {
        ResponseError::GroupAuthorizationFailed
    } else {
        return pass();
    };
    Gate::Deny(with_error(R::default(), ctx.count(error)))
}

/// AddPartitionsToTxn: from a client (v3 and below) WRITE on the transactional id and on each
/// topic (the other partitions then answer OPERATION_NOT_ATTEMPTED); from a broker (v4+)
/// CLUSTER_ACTION on the cluster.
pub(super) fn add_partitions_to_txn(ctx: &Ctx, req: &AddPartitionsToTxnRequest) -> Gate<AddPartitionsToTxnResponse> {
    use kafka_protocol::messages::add_partitions_to_txn_response::{
        AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
    };
    let Some(access) = checking(ctx) else { return pass() };
    if ctx.version >= 4 {
        return cluster(
            ctx,
            Operation::ClusterAction,
            AddPartitionsToTxnResponse::with_error_code,
        );
    }
    let txn_denied = !access.transactional_id(Operation::Write, &req.v3_and_below_transactional_id);
    let denied: Vec<bool> = req
        .v3_and_below_topics
        .iter()
        .map(|t| txn_denied || !access.topic(Operation::Write, &t.name))
        .collect();
    if !denied.contains(&true) {
        return pass();
    }
    let refused = match txn_denied {
        true => ResponseError::TransactionalIdAuthorizationFailed,
        false => ResponseError::TopicAuthorizationFailed,
    };
    let refused = ctx.count(refused);
    let not_attempted = ResponseError::OperationNotAttempted.code();
    let results = req
        .v3_and_below_topics
        .iter()
        .zip(denied)
        .map(|(t, denied)| {
            let code = if denied { refused } else { not_attempted };
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*p)
                        .with_partition_error_code(code)
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(partitions)
        })
        .collect();
    Gate::Deny(AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results))
}

/// WriteTxnMarkers (from brokers): CLUSTER_ACTION on the cluster, else every partition
/// CLUSTER_AUTHORIZATION_FAILED.
pub(super) fn write_txn_markers(ctx: &Ctx, req: &WriteTxnMarkersRequest) -> Gate<WriteTxnMarkersResponse> {
    use kafka_protocol::messages::write_txn_markers_response::{
        WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
    };
    let Some(access) = checking(ctx) else { return pass() };
    let Err(e) = access.require_cluster(Operation::ClusterAction) else {
        return pass();
    };
    let code = ctx.count(e);
    let markers = req
        .markers
        .iter()
        .map(|m| {
            let topics = m
                .topics
                .iter()
                .map(|t| {
                    let partitions = t
                        .partition_indexes
                        .iter()
                        .map(|p| {
                            WritableTxnMarkerPartitionResult::default()
                                .with_partition_index(*p)
                                .with_error_code(code)
                        })
                        .collect();
                    WritableTxnMarkerTopicResult::default()
                        .with_name(t.name.clone())
                        .with_partitions(partitions)
                })
                .collect();
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics)
        })
        .collect();
    Gate::Deny(WriteTxnMarkersResponse::default().with_markers(markers))
}

/// DescribeTransactions: DESCRIBE on each transactional id; of its topics only those the
/// principal may describe are shown.
pub(super) fn describe_transactions(
    ctx: &Ctx,
    req: &mut DescribeTransactionsRequest,
) -> Gate<DescribeTransactionsResponse> {
    use kafka_protocol::messages::describe_transactions_response::TransactionState;
    let Some(access) = checking(ctx) else { return pass() };
    let denied = take_denied(&mut req.transactional_ids, |id| {
        !access.transactional_id(Operation::Describe, id)
    });
    let code = match denied.is_empty() {
        true => 0,
        false => ctx.count(ResponseError::TransactionalIdAuthorizationFailed),
    };
    let answers: Vec<TransactionState> = denied
        .into_iter()
        .map(|id| {
            TransactionState::default()
                .with_transactional_id(id)
                .with_error_code(code)
                .with_transaction_state(StrBytes::default())
                .with_transaction_timeout_ms(-1)
                .with_transaction_start_time_ms(-1)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
        })
        .collect();
    patch(move |r: &mut DescribeTransactionsResponse| {
        for s in &mut r.transaction_states {
            s.topics
                .retain(|t| access.may(Operation::Describe, ResourceType::Topic, &t.topic));
        }
        r.transaction_states.extend(answers);
    })
}

/// ListTransactions: only the transactional ids the principal may describe.
pub(super) fn list_transactions(ctx: &Ctx) -> Gate<ListTransactionsResponse> {
    let Some(access) = checking(ctx) else { return pass() };
    patch(move |r: &mut ListTransactionsResponse| {
        r.transaction_states
            .retain(|s| access.may(Operation::Describe, ResourceType::TransactionalId, &s.transactional_id));
    })
}

/// DescribeProducers: READ on each topic.
pub(super) fn describe_producers(ctx: &Ctx, req: &mut DescribeProducersRequest) -> Gate<DescribeProducersResponse> {
    use kafka_protocol::messages::describe_producers_response::{PartitionResponse, TopicResponse};
    let Some(access) = checking(ctx) else { return pass() };
    let denied = take_denied(&mut req.topics, |t| !access.topic(Operation::Read, &t.name));
    if denied.is_empty() {
        return pass();
    }
    let code = ctx.count(ResponseError::TopicAuthorizationFailed);
    let answers: Vec<TopicResponse> = refused_topics(
        denied,
        |t| t.partition_indexes.clone(),
        |i| {
            PartitionResponse::default()
                .with_partition_index(i)
                .with_error_code(code)
        },
        |t, partitions| TopicResponse::default().with_name(t.name).with_partitions(partitions),
    );
    patch(move |r: &mut DescribeProducersResponse| r.topics.extend(answers))
}

/// AlterClientQuotas: ALTER_CONFIGS on the cluster, else every entry
/// CLUSTER_AUTHORIZATION_FAILED.
pub(super) fn alter_client_quotas(ctx: &Ctx, req: &AlterClientQuotasRequest) -> Gate<AlterClientQuotasResponse> {
    use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
    let Some(access) = checking(ctx) else { return pass() };
    let Err(e) = access.require_cluster(Operation::AlterConfigs) else {
        return pass();
    };
    let code = ctx.count(e);
    let entries = req
        .entries
        .iter()
        .map(|entry| {
            let entity = entry
                .entity
                .iter()
                .map(|e| {
                    EntityData::default()
                        .with_entity_type(e.entity_type.clone())
                        .with_entity_name(e.entity_name.clone())
                })
                .collect();
            EntryData::default()
                .with_error_code(code)
                .with_error_message(None)
                .with_entity(entity)
        })
        .collect();
    Gate::Deny(AlterClientQuotasResponse::default().with_entries(entries))
}

/// AlterUserScramCredentials: ALTER on the cluster, else every user named
/// CLUSTER_AUTHORIZATION_FAILED.
pub(super) fn alter_user_scram_credentials(
    ctx: &Ctx,
    req: &AlterUserScramCredentialsRequest,
) -> Gate<AlterUserScramCredentialsResponse> {
    use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
    let Some(access) = checking(ctx) else { return pass() };
    let Err(e) = access.require_cluster(Operation::Alter) else {
        return pass();
    };
    let code = ctx.count(e);
    let mut users: Vec<&StrBytes> = req.deletions.iter().map(|d| &d.name).collect();
    users.extend(req.upsertions.iter().map(|u| &u.name));
    users.sort();
    users.dedup();
    let results = users
        .into_iter()
        .map(|user| {
            AlterUserScramCredentialsResult::default()
                .with_user(user.clone())
                .with_error_code(code)
                .with_error_message(None)
        })
        .collect();
    Gate::Deny(AlterUserScramCredentialsResponse::default().with_results(results))
}
