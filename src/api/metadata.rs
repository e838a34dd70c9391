//! Metadata: brokers, the controller, and topics with their partitions' leaders; creates
//! missing topics when auto-creation is on and the client allows it.

use std::sync::Arc;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::access::Access;
use super::Ctx;
use crate::authz::{Operation, ResourceType, CLUSTER_NAME};
use crate::error::KafkaCode;
use crate::metadata::image::Unreachable;
use crate::metadata::topics::{self, NewTopic};
use crate::metadata::{MetadataError, MetadataImage, PartitionImage, TopicImage};

/// "Not requested" for authorized operations fields; any other value breaks some clients.
pub(super) const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

/// Whether answering may create a topic (and so wait for the controller): auto-creation is
/// allowed and a requested name is not in the image.
pub(super) fn may_create(ctx: &Ctx, req: &MetadataRequest) -> bool {
    let image = ctx.broker.metadata.image();
    allows_creation(ctx, req)
        && req
            .topics
            .iter()
            .flatten()
            .any(|t| matches!(asked_for(t), Asked::Name(n) if image.topic(&n).is_none()))
}

/// Auto-creation needs CREATE on the cluster or on the topic (Kafka's).
fn may_auto_create(access: &Access, name: &str) -> bool {
    access.may(Operation::Create, ResourceType::Cluster, CLUSTER_NAME) || access.topic(Operation::Create, name)
}

fn allows_creation(ctx: &Ctx, req: &MetadataRequest) -> bool {
    ctx.broker.settings.auto_create_topics_enable && (ctx.version < 4 || req.allow_auto_topic_creation)
}

pub(super) fn handle(ctx: &Ctx, req: MetadataRequest) -> MetadataResponse {
    let broker = &ctx.broker;
    let allow_create = allows_creation(ctx, &req);
    // v0 has no null: an empty list means every topic. From v1, null means every topic.
    let wanted = match req.topics {
        Some(t) if !(ctx.version == 0 && t.is_empty()) => Some(t),
        _ => None,
    };
    let mut image = broker.metadata.image();
    let access = ctx.access();
    let with_ops = req.include_topic_authorized_operations;
    let topics = match wanted {
        // Every topic the principal may describe; the others are not mentioned (Kafka's).
        None => image
            .topics()
            .filter(|t| access.may(Operation::Describe, ResourceType::Topic, &t.name))
            .map(|t| describe(ctx, t, with_ops))
            .collect(),
        Some(requested) if !ids_allowed(ctx.version, &requested) => refused(ctx, requested),
        Some(requested) => requested
            .into_iter()
            .map(|t| match asked_for(&t) {
                Asked::Id(id) => match image.topic_by_id(&id) {
                    // Ids are not secret: Kafka says which one is refused.
                    Some(topic) if !access.topic(Operation::Describe, &topic.name) => {
                        missing(ctx, None, id, ResponseError::TopicAuthorizationFailed)
                    }
                    Some(topic) => describe(ctx, topic, with_ops),
                    None => missing(ctx, None, id, ResponseError::UnknownTopicId),
                },
                // Refused whether or not it exists, so its existence is not disclosed.
                Asked::Name(name) if !access.topic(Operation::Describe, &name) => {
                    missing(ctx, Some(name), Uuid::nil(), ResponseError::TopicAuthorizationFailed)
                }
                Asked::Name(name) => match image.topic(&name).cloned() {
                    Some(topic) => describe(ctx, &topic, with_ops),
                    None if allow_create && !may_auto_create(&access, &name) => {
                        missing(ctx, Some(name), Uuid::nil(), ResponseError::TopicAuthorizationFailed)
                    }
                    None if allow_create => auto_create(ctx, &mut image, &name.0),
                    None => {
                        let e = unknown_or_invalid(&name);
                        missing(ctx, Some(name), Uuid::nil(), e)
                    }
                },
            })
            .collect(),
    };
    let cluster_ops = if req.include_cluster_authorized_operations && (8..=10).contains(&ctx.version) {
        match access.cluster(Operation::Describe) {
            true => access.operations(ResourceType::Cluster, CLUSTER_NAME),
            false => 0,
        }
    } else {
        OPERATIONS_NOT_REQUESTED
    };
    MetadataResponse::default()
        .with_brokers(brokers(ctx, &image))
        .with_cluster_id(Some(StrBytes::from_string(broker.cluster_id())))
        .with_controller_id(BrokerId(broker.controller_for_clients(&image, ctx.listener())))
        .with_topics(topics)
        .with_cluster_authorized_operations(cluster_ops)
}

/// How a requested topic is named. As in Kafka, a non-zero topic id wins over the name: the
/// Java Admin's `describeTopics(TopicCollection.ofTopicIds(..))` sends each id with the name
/// `""` (its default), not null.
enum Asked {
    Id(Uuid),
    Name(TopicName),
}

fn asked_for(t: &MetadataRequestTopic) -> Asked {
    match &t.name {
        Some(name) if t.topic_id.is_nil() => Asked::Name(name.clone()),
        _ => Asked::Id(t.topic_id),
    }
}

/// Versions 10 and 11 carry a topic id field but, as in Kafka, may not use it (nor a null name).
fn ids_allowed(version: i16, requested: &[MetadataRequestTopic]) -> bool {
    version >= 12 || requested.iter().all(|t| t.name.is_some() && t.topic_id.is_nil())
}

/// Kafka's answer to a request it refuses whole (MetadataRequest.getErrorResponse): every
/// requested topic with INVALID_REQUEST, a null name as "".
fn refused(ctx: &Ctx, requested: Vec<MetadataRequestTopic>) -> Vec<MetadataResponseTopic> {
    requested
        .into_iter()
        .map(|t| {
            let name = t.name.unwrap_or_else(|| TopicName(StrBytes::from_static_str("")));
            missing(ctx, Some(name), t.topic_id, ResponseError::InvalidRequest)
        })
        .collect()
}

fn unknown_or_invalid(name: &TopicName) -> ResponseError {
    missing_topic_error(name).kafka_error()
}

/// Why a topic the client named is not in the image: its name is invalid, or it is unknown.
pub(super) fn missing_topic_error(name: &str) -> MetadataError {
    topics::validate_topic_name(name)
        .err()
        .unwrap_or_else(|| MetadataError::UnknownTopic(name.to_string()))
}

/// Every live (registered, unfenced) broker with an endpoint on the client's listener, from
/// the metadata image (Kafka's getAliveBrokerNodes).
fn brokers(ctx: &Ctx, image: &MetadataImage) -> Vec<MetadataResponseBroker> {
    image
        .live_endpoints(ctx.listener())
        .map(|(b, endpoint)| {
            let (host, port) = ctx.endpoint_of(b.id, endpoint);
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.id))
                .with_host(host)
                .with_port(port)
                .with_rack(b.rack.clone().map(StrBytes::from_string))
        })
        .collect()
}

fn auto_create(ctx: &Ctx, image: &mut Arc<MetadataImage>, name: &str) -> MetadataResponseTopic {
    let topic = NewTopic {
        name: name.to_string(),
        num_partitions: -1,
        replication_factor: -1,
        ..Default::default()
    };
    match ctx.broker.create_topic(&topic, false) {
        Ok(next) => {
            *image = next;
            let created = image.topic(name).expect("topic was just created").clone();
            describe(ctx, &created, false)
        }
        // Another request created it first: describe what is there.
        Err(e) if e.kafka_error() == ResponseError::TopicAlreadyExists => {
            *image = ctx.broker.metadata.image();
            match image.topic(name) {
                Some(t) => describe(ctx, &t.clone(), false),
                None => missing(
                    ctx,
                    Some(TopicName(name.to_string().into())),
                    Uuid::nil(),
                    ResponseError::LeaderNotAvailable,
                ),
            }
        }
        Err(e) => missing(
            ctx,
            Some(TopicName(name.to_string().into())),
            Uuid::nil(),
            e.kafka_error(),
        ),
    }
}

fn missing(ctx: &Ctx, name: Option<TopicName>, id: Uuid, err: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(ctx.count(err))
        .with_name(name)
        .with_topic_id(id)
        .with_topic_authorized_operations(OPERATIONS_NOT_REQUESTED)
}

/// A partition as clients are told about it (Metadata, DescribeTopicPartitions).
pub(super) struct PartitionView {
    /// The leader, if it can serve the partition: a live broker with an endpoint on the
    /// client's listener, and when that is this node, with the partition's log open here.
    pub(super) leader: Option<i32>,
    /// No leader because the live leader has no listener of the client's listener name.
    pub(super) leader_without_listener: bool,
    pub(super) replicas: Vec<BrokerId>,
    pub(super) isr: Vec<BrokerId>,
    /// Replicas on brokers that are not live (unregistered or fenced) or that the client cannot
    /// reach (no listener of its listener name), as Kafka's getOfflineReplicas.
    pub(super) offline: Vec<BrokerId>,
}

pub(super) fn partition_view(
    ctx: &Ctx,
    image: &MetadataImage,
    topic: &str,
    index: i32,
    p: &PartitionImage,
) -> PartitionView {
    let reachable = |id: i32| image.live_endpoint(id, ctx.listener()).is_ok();
    // Led here but not open here (its log could not be created), or led by nobody alive (on
    // the client's listener): no usable leader, and clients retry.
    let offline_here = p.leader == ctx.broker.node_id && ctx.broker.replicas.get(topic, index).is_none();
    let leader = image.live_endpoint(p.leader, ctx.listener());
    let ids = |ids: &[i32]| ids.iter().copied().map(BrokerId).collect();
    PartitionView {
        leader: (!offline_here && leader.is_ok()).then_some(p.leader),
        leader_without_listener: leader == Err(Unreachable::NoListener),
        replicas: ids(&p.replicas),
        isr: ids(&p.isr),
        offline: p
            .replicas
            .iter()
            .copied()
            .filter(|r| !reachable(*r))
            .map(BrokerId)
            .collect(),
    }
}

fn describe(ctx: &Ctx, topic: &TopicImage, with_ops: bool) -> MetadataResponseTopic {
    let image = ctx.broker.metadata.image();
    let partitions = topic
        .partitions
        .iter()
        .map(|(&index, p)| {
            let view = partition_view(ctx, &image, &topic.name, index, p);
            // Kafka answers LISTENER_NOT_FOUND from version 6 on when the leader lacks the
            // client's listener (errorUnavailableListeners), LEADER_NOT_AVAILABLE before.
            let error = match view.leader {
                Some(_) => 0,
                None if view.leader_without_listener && ctx.version >= 6 => ctx.count(ResponseError::ListenerNotFound),
                None => ctx.count(ResponseError::LeaderNotAvailable),
            };
            MetadataResponsePartition::default()
                .with_error_code(error)
                .with_partition_index(index)
                .with_leader_id(BrokerId(view.leader.unwrap_or(-1)))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(view.replicas)
                .with_isr_nodes(view.isr)
                .with_offline_replicas(view.offline)
        })
        .collect();
    let ops = if with_ops && ctx.version >= 8 {
        ctx.access().operations(ResourceType::Topic, &topic.name)
    } else {
        OPERATIONS_NOT_REQUESTED
    };
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.id)
        .with_is_internal(topic.is_internal())
        .with_partitions(partitions)
        .with_topic_authorized_operations(ops)
}
