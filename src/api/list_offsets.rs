//! ListOffsets: earliest, latest, max timestamp, and offset-by-timestamp per partition.

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use super::{Ctx, Reply};
use crate::replica::{Partition, ReplicaError};

/// Kafka's special timestamps (ListOffsetsRequest.*_TIMESTAMP).
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
const EARLIEST_PENDING_UPLOAD: i64 = -6;

pub(super) fn handle(ctx: &Ctx, req: ListOffsetsRequest) -> Reply<ListOffsetsResponse> {
    let topics = req.topics.into_iter().map(|t| list_topic(ctx, t)).collect();
    Reply::Now(ListOffsetsResponse::default().with_topics(topics))
}

fn list_topic(ctx: &Ctx, topic: ListOffsetsTopic) -> ListOffsetsTopicResponse {
    let partitions = topic
        .partitions
        .iter()
        .map(|p| list_partition(ctx, &topic.name, p))
        .collect();
    ListOffsetsTopicResponse::default()
        .with_name(topic.name)
        .with_partitions(partitions)
}

fn list_partition(ctx: &Ctx, topic: &str, req: &ListOffsetsPartition) -> ListOffsetsPartitionResponse {
    let base = ListOffsetsPartitionResponse::default()
        .with_partition_index(req.partition_index)
        .with_timestamp(-1)
        .with_offset(-1);
    let partition = match ctx.broker.replicas.require(topic, req.partition_index) {
        Ok(p) => p,
        Err(e) => return base.with_error_code(ctx.code(&e)),
    };
    let epoch = partition.leader_epoch();
    // The leader epoch field exists from v4; the codec refuses a value it cannot encode.
    let reported_epoch = if ctx.version >= 4 { epoch } else { -1 };
    if req.current_leader_epoch >= 0 && req.current_leader_epoch != epoch {
        let e = if req.current_leader_epoch > epoch {
            ResponseError::UnknownLeaderEpoch
        } else {
            ResponseError::FencedLeaderEpoch
        };
        return base.with_error_code(ctx.count(e));
    }
    match lookup(&partition, req.timestamp) {
        Ok(Some((offset, timestamp))) => base
            .with_offset(offset)
            .with_timestamp(timestamp)
            .with_leader_epoch(reported_epoch),
        // As Kafka: no offset, no epoch (-1, which the Java client reads as none).
        Ok(None) => base,
        Err(e) => base.with_error_code(ctx.code(&e)),
    }
}

/// (offset, timestamp) for a ListOffsets timestamp; None when no record qualifies.
fn lookup(p: &Partition, timestamp: i64) -> Result<Option<(i64, i64)>, ReplicaError> {
    match timestamp {
        // Consumers may only see committed data, so "latest" is the high watermark: the log end
        // offset once replicated, never the last batch's base offset.
        LATEST => Ok(Some((p.high_watermark(), -1))),
        EARLIEST | EARLIEST_LOCAL => Ok(Some((p.log_start_offset(), -1))),
        // No tiered storage: nothing is tiered or waiting to be.
        LATEST_TIERED | EARLIEST_PENDING_UPLOAD => Ok(None),
        MAX_TIMESTAMP => p.with_log(|log| Ok(log.max_timestamp()?)),
        ts => {
            let hw = p.high_watermark();
            let found = p.with_log(|log| Ok(log.offset_for_timestamp(ts)?))?;
            Ok(found.filter(|(offset, _)| *offset < hw))
        }
    }
}
