//! FindCoordinator: which broker coordinates a consumer group or a transactional id (v0-v3:
//! one key; v4+: a batch of keys): the leader of the key's partition of `__consumer_offsets`
//! or `__transaction_state`. Creates the topic on first use, as Kafka does. And the one way
//! the API layer sends a request to a coordinator shard (`call_shard`).

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tracing::warn;

use super::Ctx;
use crate::coordinator::runtime::{self, Core, RequestId};
use crate::group::OFFSETS_TOPIC;
use crate::txn::TRANSACTION_STATE_TOPIC;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;
/// KIP-932's share coordinator: the key is `group:topicId:partition`.
const KEY_TYPE_SHARE: i8 = 2;
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
    let b = &ctx.broker;
    let (topic, partitions, ensured, loaded) = match key_type {
        KEY_TYPE_GROUP => (
            OFFSETS_TOPIC,
            b.groups.partitions,
            b.ensure_offsets_topic(),
            b.groups.shard(&key).is_ok(),
        ),
        KEY_TYPE_TRANSACTION if key.is_empty() => {
            return failed(ResponseError::InvalidRequest, "the transactional id is empty")
        }
        KEY_TYPE_TRANSACTION => (
            TRANSACTION_STATE_TOPIC,
            b.txns.partitions,
            b.ensure_transaction_state_topic(),
            b.txns.shard(&key).is_ok(),
        ),
        KEY_TYPE_SHARE => (
            crate::share::state::SHARE_STATE_TOPIC,
            b.share_states.partitions,
            b.ensure_share_state_topic(),
            b.share_states.shard(&key).is_ok(),
        ),
        _ => return failed(ResponseError::InvalidRequest, "unknown coordinator key type"),
    };
    if let Err(e) = ensured {
        warn!(topic, error = %e, "cannot create an internal topic");
        return failed(
            ResponseError::CoordinatorNotAvailable,
            "the coordinator's topic is not available",
        );
    }
    let partition = crate::coordinator::partition_for(&key, partitions);
    let image = b.metadata.image();
    let leader = image
        .topic(topic)
        .and_then(|t| t.partitions.get(&partition))
        .map_or(-1, |p| p.leader);
    if leader == b.node_id && !loaded {
        return failed(
            ResponseError::CoordinatorNotAvailable,
            "the coordinator's partition is still loading",
        );
    }
    // As Kafka's getAliveBrokerNode: a leader without the client's listener is not available.
    match image.live_endpoint(leader, ctx.listener()) {
        Ok(endpoint) => {
            let (host, port) = ctx.endpoint_of(leader, endpoint);
            Coordinator::default()
                .with_key(key.clone())
                .with_node_id(BrokerId(leader))
                .with_host(host)
                .with_port(port)
        }
        Err(_) => failed(
            ResponseError::CoordinatorNotAvailable,
            "the coordinator's partition has no leader",
        ),
    }
}

/// A response being awaited from a coordinator shard.
pub(super) type Answer<R> = std::pin::Pin<Box<dyn std::future::Future<Output = R> + Send>>;

/// Sends a request event to the shard that coordinates `key` and turns its eventual answer into
/// the response with `answer`; `refuse` builds the response when the key is not served here
/// (`Err` when that is known at once).
pub(super) fn call_shard<C: Core, R, A, F>(
    coordinator: &runtime::Coordinator<C>,
    key: &str,
    build: impl FnOnce(RequestId) -> C::Event,
    answer: A,
    refuse: F,
) -> Result<Answer<R>, R>
where
    R: Send + 'static,
    A: FnOnce(C::Response) -> Option<R> + Send + 'static,
    F: FnOnce(ResponseError) -> R + Send + 'static,
{
    let shard = match coordinator.shard(key) {
        Ok(s) => s,
        Err(u) => return Err(refuse(u.error())),
    };
    let Some(rx) = shard.request(build) else {
        return Err(refuse(ResponseError::NotCoordinator));
    };
    Ok(Box::pin(async move {
        match rx.await.ok() {
            // The core answers a request with the response of its kind; anything else is a bug
            // best reported to the client as a server error rather than a hang.
            Some(r) => answer(r).unwrap_or_else(|| refuse(ResponseError::UnknownServerError)),
            // The shard was unloaded (or the broker is stopping) with the request parked.
            None => refuse(ResponseError::NotCoordinator),
        }
    }))
}
