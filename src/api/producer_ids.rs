//! InitProducerId (idempotent producers; with a transactional id it goes to the transaction
//! coordinator, `transactions`) and DescribeProducers (KIP-664).

use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, InitProducerIdRequest, InitProducerIdResponse, ProducerId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tracing::warn;

use super::{Ctx, Reply};

pub(super) fn init_producer_id(ctx: &Ctx, req: InitProducerIdRequest) -> Reply<InitProducerIdResponse> {
    let response = InitProducerIdResponse::default();
    match req.transactional_id.as_ref().map(|t| t.to_string()) {
        // As Kafka: an empty transactional id is an invalid request, not a missing one.
        Some(id) if id.is_empty() => {
            return Reply::Now(
                response
                    .with_error_code(ctx.count(ResponseError::InvalidRequest))
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            )
        }
        Some(id) => return super::transactions::init_transactional(ctx, req, id),
        None => {}
    }
    // Without a transactional id Kafka hands out a fresh id at epoch 0 every time, also for a
    // KIP-360 request that names its current id and epoch.
    let ctx = ctx.clone();
    Reply::Later(Box::pin(async move {
        match ctx.broker.producer_ids.next_id(&ctx.broker.controller).await {
            Ok(id) => response.with_producer_id(ProducerId(id)).with_producer_epoch(0),
            Err(e) => {
                warn!(error = %e, "cannot reserve producer ids");
                response
                    .with_error_code(ctx.code(&e))
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1)
            }
        }
    }))
}

pub(super) fn describe_producers(ctx: &Ctx, req: DescribeProducersRequest) -> Reply<DescribeProducersResponse> {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&index| describe_partition(ctx, &t.name, index))
                .collect();
            TopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    Reply::Now(DescribeProducersResponse::default().with_topics(topics))
}

fn describe_partition(ctx: &Ctx, topic: &str, index: i32) -> PartitionResponse {
    let base = PartitionResponse::default().with_partition_index(index);
    let states = ctx.broker.replicas.require(topic, index).and_then(|p| {
        p.with_log(|log| {
            Ok(log
                .producers()
                .iter()
                .map(|(id, e)| {
                    ProducerState::default()
                        .with_producer_id(ProducerId(*id))
                        .with_producer_epoch(i32::from(e.epoch))
                        .with_last_sequence(e.last_seq().unwrap_or(-1))
                        .with_last_timestamp(e.last_timestamp)
                        .with_coordinator_epoch(e.coordinator_epoch)
                        .with_current_txn_start_offset(e.current_txn_first_offset.unwrap_or(-1))
                })
                .collect())
        })
    });
    match states {
        Ok(active) => base.with_active_producers(active),
        Err(e) => base
            .with_error_code(ctx.code(&e))
            .with_error_message(Some(StrBytes::from_string(e.to_string()))),
    }
}
