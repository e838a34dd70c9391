//! OffsetForLeaderEpoch: where a leader epoch ends in this leader's log (KIP-101, KIP-320).
//! Clients ask it after a leader change to check that the position they hold still exists
//! (an end offset below it means the log was truncated there); followers could ask it to find
//! where to truncate, though ours learn that from the Fetch response's diverging epoch.
//!
//! Answered by the leader only, from its leader epoch cache: for the current epoch the log end,
//! for an older one the start of the next; -1/-1 when this log never had it.

use kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderTopic;
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::ResponseError;

use super::{Ctx, Reply};

pub(super) fn handle(ctx: &Ctx, req: OffsetForLeaderEpochRequest) -> Reply<OffsetForLeaderEpochResponse> {
    let topics = req.topics.iter().map(|t| topic(ctx, t)).collect();
    Reply::Now(OffsetForLeaderEpochResponse::default().with_topics(topics))
}

fn topic(ctx: &Ctx, t: &OffsetForLeaderTopic) -> OffsetForLeaderTopicResult {
    let partitions = t
        .partitions
        .iter()
        .map(|p| {
            let base = EpochEndOffset::default()
                .with_partition(p.partition)
                .with_leader_epoch(-1)
                .with_end_offset(-1);
            let partition = match ctx.broker.replicas.require(&t.topic, p.partition) {
                Ok(partition) => partition,
                Err(e) => return base.with_error_code(ctx.code(&e)),
            };
            let current = partition.leader_epoch();
            if p.current_leader_epoch >= 0 && p.current_leader_epoch != current {
                let e = if p.current_leader_epoch > current {
                    ResponseError::UnknownLeaderEpoch
                } else {
                    ResponseError::FencedLeaderEpoch
                };
                return base.with_error_code(ctx.count(e));
            }
            match partition.end_offset_for_epoch(p.leader_epoch) {
                Ok((epoch, end_offset)) => base.with_leader_epoch(epoch).with_end_offset(end_offset),
                Err(e) => base.with_error_code(ctx.code(&e)),
            }
        })
        .collect();
    OffsetForLeaderTopicResult::default()
        .with_topic(t.topic.clone())
        .with_partitions(partitions)
}
