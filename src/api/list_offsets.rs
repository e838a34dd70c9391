//! ListOffsets: earliest, latest, max timestamp, and offset-by-timestamp per partition.
//!
//! A consumer sees committed data only: "latest" is the high watermark (the last stable offset
//! for a read_committed one: no open or undecided transaction below it), and a new leader whose
//! high watermark has not reached the start of its epoch yet answers OFFSET_NOT_AVAILABLE
//! (what it would say could go backwards). A follower (replica id >= 0) asking its leader
//! sees the log end.

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

/// Whether answering reads records (a timestamp or max-timestamp lookup): such a request is
/// run on the blocking pool, since a compressed batch may take a while to search.
pub(super) fn reads_records(req: &ListOffsetsRequest) -> bool {
    req.topics
        .iter()
        .flat_map(|t| &t.partitions)
        .any(|p| p.timestamp >= 0 || p.timestamp == MAX_TIMESTAMP)
}

pub(super) fn handle(ctx: &Ctx, req: ListOffsetsRequest) -> Reply<ListOffsetsResponse> {
    Reply::Now(reply(ctx, req))
}

/// ListOffsets' isolation level of a read_committed consumer (v2+).
const READ_COMMITTED: i8 = 1;

/// Who asks: a follower (the log end), or a consumer of either isolation level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asker {
    Replica,
    Consumer { read_committed: bool },
}

pub(super) fn reply(ctx: &Ctx, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let asker = if req.replica_id.0 >= 0 {
        Asker::Replica
    } else {
        Asker::Consumer {
            read_committed: req.isolation_level == READ_COMMITTED,
        }
    };
    let topics = req.topics.into_iter().map(|t| list_topic(ctx, t, asker)).collect();
    ListOffsetsResponse::default().with_topics(topics)
}

fn list_topic(ctx: &Ctx, topic: ListOffsetsTopic, asker: Asker) -> ListOffsetsTopicResponse {
    let partitions = topic
        .partitions
        .iter()
        .map(|p| list_partition(ctx, &topic.name, p, asker))
        .collect();
    ListOffsetsTopicResponse::default()
        .with_name(topic.name)
        .with_partitions(partitions)
}

fn list_partition(ctx: &Ctx, topic: &str, req: &ListOffsetsPartition, asker: Asker) -> ListOffsetsPartitionResponse {
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
    let Asker::Consumer { read_committed } = asker else {
        let offset = match req.timestamp {
            LATEST => partition.log_end_offset(),
            _ => partition.log_start_offset(),
        };
        return base.with_offset(offset).with_leader_epoch(reported_epoch);
    };
    if !matches!(req.timestamp, EARLIEST | EARLIEST_LOCAL) && behind_its_epoch(&partition) {
        let e = if ctx.version >= 5 {
            ResponseError::OffsetNotAvailable
        } else {
            ResponseError::LeaderNotAvailable
        };
        return base.with_error_code(ctx.count(e));
    }
    match lookup(&partition, req.timestamp, read_committed) {
        Ok(Some((offset, timestamp))) => base
            .with_offset(offset)
            .with_timestamp(timestamp)
            .with_leader_epoch(reported_epoch),
        // Nothing found: offset, timestamp and leader epoch all -1, as Kafka answers.
        Ok(None) => base,
        Err(e) => base.with_error_code(ctx.code(&e)),
    }
}

/// A newly elected leader whose high watermark is still below where its epoch started.
fn behind_its_epoch(p: &Partition) -> bool {
    p.epoch_start_offset().is_ok_and(|start| p.high_watermark() < start)
}

/// (offset, timestamp) for a ListOffsets timestamp; None when no record qualifies.
fn lookup(p: &Partition, timestamp: i64, read_committed: bool) -> Result<Option<(i64, i64)>, ReplicaError> {
    match timestamp {
        // Consumers may only see committed data, so "latest" is the high watermark: the log end
        // offset once replicated, never the last batch's base offset; for read_committed, the
        // last stable offset.
        LATEST if read_committed => Ok(Some((p.last_stable_offset(), -1))),
        LATEST => Ok(Some((p.high_watermark(), -1))),
        EARLIEST | EARLIEST_LOCAL => Ok(Some((p.log_start_offset(), -1))),
        // No tiered storage: nothing is tiered or waiting to be.
        LATEST_TIERED | EARLIEST_PENDING_UPLOAD => Ok(None),
        MAX_TIMESTAMP => p.offset_for_timestamp(None),
        ts => {
            let hw = p.high_watermark();
            let found = p.offset_for_timestamp(Some(ts))?;
            Ok(found.filter(|(offset, _)| *offset < hw))
        }
    }
}
