//! FindCoordinator: which broker coordinates a consumer group (v0-v3: one key; v4+: a batch
//! of keys): the leader of the group's `__consumer_offsets` partition. Creates the topic on
//! first use, as Kafka does.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tracing::warn;

use super::Ctx;
use crate::group::OFFSETS_TOPIC;

const KEY_TYPE_GROUP: i8 = 0;
/// From v4 the keys come as a list and the answers as a list of coordinators.
const BATCHED_FROM_VERSION: i16 = 4;

pub(super) fn find_coordinator(ctx: &Ctx, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let keys = if ctx.version >= BATCHED_FROM_VERSION {
        req.coordinator_keys.clone()
    } else {
        vec![req.key.clone()]
    };
    let answers: Vec<Coordinator> = keys.into_iter().map(|k| find(ctx, req.key_type, k)).collect();
    let response = FindCoordinatorResponse::default();
    if ctx.version >= BATCHED_FROM_VERSION {
        return response.with_coordinators(answers);
    }
    let a = answers.into_iter().next().unwrap_or_default();
    response
        .with_error_code(a.error_code)
        .with_error_message(a.error_message)
        .with_node_id(a.node_id)
        .with_host(a.host)
        .with_port(a.port)
}

fn find(ctx: &Ctx, key_type: i8, key: StrBytes) -> Coordinator {
    let failed = |e: ResponseError, why: &str| {
        Coordinator::default()
            .with_key(key.clone())
            .with_node_id(BrokerId(-1))
            .with_port(-1)
            .with_error_code(ctx.count(e))
            .with_error_message(Some(StrBytes::from_string(why.to_string())))
    };
    if key_type != KEY_TYPE_GROUP {
        return failed(
            ResponseError::InvalidRequest,
            "transaction coordinators are not supported yet",
        );
    }
    let b = &ctx.broker;
    if let Err(e) = b.ensure_offsets_topic() {
        warn!(error = %e, "cannot create __consumer_offsets");
        return failed(
            ResponseError::CoordinatorNotAvailable,
            "__consumer_offsets is not available",
        );
    }
    let partition = crate::coordinator::partition_for(&key, b.groups.partitions);
    let image = b.metadata.image();
    let leader = image
        .topic(OFFSETS_TOPIC)
        .and_then(|t| t.partitions.get(&partition))
        .map_or(-1, |p| p.leader);
    if leader == b.node_id && b.groups.shard(&key).is_err() {
        return failed(
            ResponseError::CoordinatorNotAvailable,
            "the group's partition is still loading",
        );
    }
    match image.broker(leader).filter(|l| !l.fenced) {
        Some(l) => Coordinator::default()
            .with_key(key.clone())
            .with_node_id(BrokerId(l.id))
            .with_host(StrBytes::from_string(l.host.clone()))
            .with_port(l.port as i32),
        None => failed(
            ResponseError::CoordinatorNotAvailable,
            "the group's partition of __consumer_offsets has no leader",
        ),
    }
}
