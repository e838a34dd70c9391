//! Client quotas on Produce and Fetch (Kafka's `ClientQuotaManager` use in `KafkaApis`): a
//! produce request's bytes, and a consumer fetch response's, are recorded on the client's
//! quota (`crate::quota`); a client over it gets `throttle_time_ms` in the response and its
//! connection is muted for that long. A throttled fetch is answered without data and its
//! bytes are taken back, as Kafka does, so a consumer converges on its quota. Follower fetches
//! are not client traffic and are never throttled here.

use kafka_protocol::messages::{FetchRequest, FetchResponse, ProduceResponse};

use super::{Ctx, Reply};
use crate::clock::now_ms;
use crate::metadata::client_quotas::{CONSUMER_BYTE_RATE, PRODUCER_BYTE_RATE};
use crate::quota::user_of;

/// Applies `f` to the response whenever it is known, whatever form the reply takes.
fn map_reply<R: Send + 'static>(reply: Reply<R>, f: impl FnOnce(R) -> R + Send + 'static) -> Reply<R> {
    match reply {
        Reply::Now(r) => Reply::Now(f(r)),
        Reply::Later(fut) => Reply::Later(Box::pin(async move { f(fut.await) })),
        Reply::Decided(fut) => Reply::Decided(Box::pin(async move { map_reply(fut.await, f) })),
        other @ (Reply::Silent | Reply::Close(_)) => other,
    }
}

fn now() -> u64 {
    now_ms().max(0) as u64
}

/// Records a produce request of `request_bytes` on the producer's quota and mutes the
/// connection if it is over; the response carries the throttle time.
pub(super) fn produce(ctx: &Ctx, request_bytes: usize, reply: Reply<ProduceResponse>) -> Reply<ProduceResponse> {
    let image = ctx.broker.metadata.image();
    let quotas = image.client_quotas();
    if quotas.is_empty() {
        return reply;
    }
    let t = now();
    let user = user_of(&ctx.principal);
    let throttle_ms = ctx
        .broker
        .quotas
        .produce
        .record(quotas, user, ctx.client_id.as_str(), request_bytes as u64, t);
    if throttle_ms == 0 {
        return reply;
    }
    throttled(ctx, PRODUCER_BYTE_RATE, t, throttle_ms);
    let ms = i32::try_from(throttle_ms).unwrap_or(i32::MAX);
    map_reply(reply, move |r| r.with_throttle_time_ms(ms))
}

/// Mutes the connection and counts the throttle in the metrics.
fn throttled(ctx: &Ctx, quota: &str, now_ms: u64, throttle_ms: u64) {
    ctx.throttle.mute(now_ms, throttle_ms);
    let metrics = &ctx.broker.metrics;
    metrics.quota_throttled.with_label_values(&[quota]).inc();
    metrics
        .quota_throttle_ms
        .with_label_values(&[quota])
        .inc_by(throttle_ms);
}

/// Whether a fetch is a follower's (replication), not a consumer's.
pub(super) fn is_follower(req: &FetchRequest) -> bool {
    req.replica_id.0 >= 0 || req.replica_state.replica_id.0 >= 0
}

/// Records a consumer fetch response's bytes on the consumer's quota when it is ready; over
/// the quota, the connection is muted and the answer is Kafka's throttled one: no data.
pub(super) fn fetch(ctx: &Ctx, reply: Reply<FetchResponse>) -> Reply<FetchResponse> {
    if ctx.broker.metadata.image().client_quotas().is_empty() {
        return reply;
    }
    let ctx = ctx.clone();
    map_reply(reply, move |response| {
        let bytes: u64 = response
            .responses
            .iter()
            .flat_map(|t| t.partitions.iter())
            .filter_map(|p| p.records.as_ref().map(|r| r.len() as u64))
            .sum();
        let image = ctx.broker.metadata.image();
        let quotas = image.client_quotas();
        let user = user_of(&ctx.principal);
        let client_id = ctx.client_id.as_str();
        let t = now();
        let throttle_ms = ctx.broker.quotas.fetch.record(quotas, user, client_id, bytes, t);
        if throttle_ms == 0 {
            return response;
        }
        ctx.broker.quotas.fetch.unrecord(quotas, user, client_id, bytes, t);
        throttled(&ctx, CONSUMER_BYTE_RATE, t, throttle_ms);
        let ms = i32::try_from(throttle_ms).unwrap_or(i32::MAX);
        FetchResponse::default().with_throttle_time_ms(ms)
    })
}
