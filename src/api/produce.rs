//! Produce: append each partition's record batches to its leader log.
//!
//! The batches are copied once out of the request frame (their offsets are rewritten in place)
//! and appended as they came; records are never decoded. Appends happen in request order
//! because the connection dispatches requests one by one.

use bytes::BytesMut;
use kafka_protocol::messages::produce_request::TopicProduceData;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tracing::warn;

use super::{Ctx, Reply};
use crate::clock::now_ms;
use crate::replica::ReplicaError;

/// Produce from version 13 names topics by id only.
const TOPIC_IDS_FROM_VERSION: i16 = 13;

pub(super) fn handle(ctx: &Ctx, req: ProduceRequest) -> Reply<ProduceResponse> {
    let acks = req.acks;
    let mut failed = false;
    let responses: Vec<TopicProduceResponse> = req
        .topic_data
        .into_iter()
        .map(|topic| {
            let r = produce_topic(ctx, topic, acks);
            failed |= r.partition_responses.iter().any(|p| p.error_code != 0);
            r
        })
        .collect();
    if acks == 0 {
        // Kafka closes the connection when an acks=0 produce fails: the client has no other way
        // to learn about it, and reconnecting makes it refresh its metadata.
        return if failed {
            Reply::Close("acks=0 produce failed".into())
        } else {
            Reply::Silent
        };
    }
    Reply::Now(ProduceResponse::default().with_responses(responses))
}

fn produce_topic(ctx: &Ctx, topic: TopicProduceData, acks: i16) -> TopicProduceResponse {
    let image = ctx.broker.metadata.image();
    let name: Option<String> = if ctx.version >= TOPIC_IDS_FROM_VERSION {
        image.topic_by_id(&topic.topic_id).map(|t| t.name.clone())
    } else {
        Some(topic.name.0.to_string())
    };
    let unknown_id = if ctx.version >= TOPIC_IDS_FROM_VERSION {
        ResponseError::UnknownTopicId
    } else {
        ResponseError::UnknownTopicOrPartition
    };
    let internal = name
        .as_deref()
        .and_then(|n| image.topic(n))
        .is_some_and(|t| t.is_internal());
    let partitions = topic
        .partition_data
        .into_iter()
        .map(|p| {
            let result = match (&name, p.records) {
                _ if !(-1..=1).contains(&acks) => Err(ctx.count(ResponseError::InvalidRequiredAcks)),
                // As Kafka: clients cannot write to internal topics; only the broker's own
                // coordinators do, through the replica layer directly.
                (Some(n), _) if internal => {
                    warn!(topic = %n, client = ?ctx, "produce to an internal topic refused");
                    Err(ctx.count(ResponseError::InvalidTopicException))
                }
                (None, _) => Err(ctx.count(unknown_id)),
                (Some(_), None) => Err(ctx.count(ResponseError::InvalidRecord)),
                (Some(name), Some(records)) => append(ctx, name, p.index, &records, acks),
            };
            partition_response(p.index, result)
        })
        .collect();
    TopicProduceResponse::default()
        .with_name(TopicName(StrBytes::from_string(name.unwrap_or_default())))
        .with_topic_id(topic.topic_id)
        .with_partition_responses(partitions)
}

/// Ok: (base offset, log start offset). Err: the Kafka error code.
fn append(ctx: &Ctx, topic: &str, index: i32, records: &[u8], acks: i16) -> Result<(i64, i64), i16> {
    let broker = &ctx.broker;
    let partition = broker.replicas.require(topic, index).map_err(|e| ctx.code(&e))?;
    let mut batches = BytesMut::from(records);
    match partition.append_as_leader(&mut batches, acks == -1, now_ms()) {
        Ok(info) => {
            // A duplicate (a producer's retry) wrote nothing and reports 0 records.
            broker.metrics.messages_in.inc_by(info.record_count);
            Ok((info.base_offset, partition.log_start_offset()))
        }
        Err(e) => {
            if matches!(e, ReplicaError::Log(_)) {
                warn!(topic, partition = index, client = ?ctx, error = %e, "produce rejected");
            }
            Err(ctx.code(&e))
        }
    }
}

fn partition_response(index: i32, result: Result<(i64, i64), i16>) -> PartitionProduceResponse {
    let r = PartitionProduceResponse::default()
        .with_index(index)
        .with_log_append_time_ms(-1);
    match result {
        Ok((base_offset, log_start)) => r.with_base_offset(base_offset).with_log_start_offset(log_start),
        Err(code) => r.with_error_code(code).with_base_offset(-1).with_log_start_offset(-1),
    }
}
