//! FindCoordinator: which broker coordinates a consumer group (v0-v3: one key; v4+: a batch
//! of keys). Creates `__consumer_offsets` on first use, as Kafka does.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tracing::warn;

use super::{Ctx, Reply};

const KEY_TYPE_GROUP: i8 = 0;
/// From v4 the keys come as a list and the answers as a list of coordinators.
const BATCHED_FROM_VERSION: i16 = 4;

pub(super) fn find_coordinator(ctx: &Ctx, req: FindCoordinatorRequest) -> Reply<FindCoordinatorResponse> {
    let keys = if ctx.version >= BATCHED_FROM_VERSION {
        req.coordinator_keys.clone()
    } else {
        vec![req.key.clone()]
    };
    let answers: Vec<Coordinator> = keys.into_iter().map(|k| find(ctx, req.key_type, k)).collect();
    let response = FindCoordinatorResponse::default();
    if ctx.version >= BATCHED_FROM_VERSION {
        return Reply::Now(response.with_coordinators(answers));
    }
    let a = answers.into_iter().next().unwrap_or_default();
    Reply::Now(
        response
            .with_error_code(a.error_code)
            .with_error_message(a.error_message)
            .with_node_id(a.node_id)
            .with_host(a.host)
            .with_port(a.port),
    )
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
    match b.groups.shard(&key) {
        Ok(_) => Coordinator::default()
            .with_key(key.clone())
            .with_node_id(BrokerId(b.node_id))
            .with_host(StrBytes::from_string(b.advertised.host.clone()))
            .with_port(b.advertised.port as i32),
        Err(u) => failed(u.error(), "the group's partition is not hosted here"),
    }
}
