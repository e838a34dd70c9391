//! DeleteRecords (what `kafka-delete-records` and the Admin's `deleteRecords` send): per
//! partition, the leader moves its log start offset (Kafka's `deleteRecordsOnLeader`: -1 means
//! the high watermark; past it, or negative, is OFFSET_OUT_OF_RANGE; a topic whose
//! cleanup.policy lacks `delete` answers POLICY_VIOLATION) and deletes the segments wholly
//! below it, then answers once the low watermark (the smallest log start over the leader and
//! the replicas on live brokers, which followers raise as they fetch) reaches it, or with
//! REQUEST_TIMED_OUT at the request's timeout (Kafka's DelayedDeleteRecords).
//!
//! The log work runs on the blocking pool; the wait is woken by the partitions when a
//! follower reports a new log start, never by a timer.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::delete_records_request::DeleteRecordsTopic;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::warn;

use super::{Ctx, Reply};
use crate::replica::Partition;

/// Kafka's `DeleteRecordsResponse.INVALID_LOW_WATERMARK`.
const INVALID_LOW_WATERMARK: i64 = -1;
/// Longest a DeleteRecords waits for followers, whatever the request asks.
const MAX_WAIT: Duration = Duration::from_secs(300);

/// A partition whose log start moved and whose low watermark must reach `required`.
struct Waiting {
    topic: usize,
    partition: usize,
    replica: Arc<Partition>,
    required: i64,
}

pub(super) fn delete_records(ctx: &Ctx, req: DeleteRecordsRequest) -> Reply<DeleteRecordsResponse> {
    let ctx = ctx.clone();
    Reply::Later(Box::pin(async move {
        let timeout = Duration::from_millis(req.timeout_ms.max(0) as u64).min(MAX_WAIT);
        let deadline = Instant::now() + timeout;
        let job_ctx = ctx.clone();
        let moved = tokio::task::spawn_blocking(move || move_log_starts(&job_ctx, req.topics)).await;
        let Ok((mut response, waits)) = moved else {
            warn!("DeleteRecords failed on the blocking pool");
            return DeleteRecordsResponse::default();
        };
        if !waits.is_empty() {
            wait_for_low_watermarks(&ctx, &mut response, waits, deadline).await;
        }
        response
    }))
}

/// Moves each partition's log start, and checkpoints the start offsets of the log dir.
fn move_log_starts(ctx: &Ctx, topics: Vec<DeleteRecordsTopic>) -> (DeleteRecordsResponse, Vec<Waiting>) {
    let mut waits = Vec::new();
    let results = topics
        .into_iter()
        .enumerate()
        .map(|(t, topic)| {
            let partitions = topic
                .partitions
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(INVALID_LOW_WATERMARK);
                    match delete_in(ctx, &topic.name, p.partition_index, p.offset) {
                        Ok((replica, required, low)) => {
                            if low < required {
                                waits.push(Waiting {
                                    topic: t,
                                    partition: i,
                                    replica,
                                    required,
                                });
                            }
                            result.with_low_watermark(low)
                        }
                        Err(code) => result.with_error_code(code),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    if let Err(e) = ctx.broker.replicas.checkpoint_log_starts() {
        warn!(error = %e, "log start offset checkpoint failed");
    }
    (DeleteRecordsResponse::default().with_topics(results), waits)
}

/// One partition: (the partition, the offset its low watermark must reach, its low watermark
/// now), or the error code.
fn delete_in(ctx: &Ctx, topic: &str, index: i32, offset: i64) -> Result<(Arc<Partition>, i64, i64), i16> {
    let replica = ctx.broker.replicas.require(topic, index).map_err(|e| ctx.code(&e))?;
    let required = replica.delete_records(offset).map_err(|e| ctx.code(&e))?;
    let low = low_watermark(ctx, &replica).map_err(|e| ctx.count(e))?;
    Ok((replica, required, low))
}

fn low_watermark(ctx: &Ctx, replica: &Partition) -> Result<i64, ResponseError> {
    let image = ctx.broker.metadata.image();
    replica
        .low_watermark(|id| image.broker(id).is_some_and(|b| !b.fenced))
        .map_err(|_| ResponseError::NotLeaderOrFollower)
}

/// Waits until every partition's low watermark reached its offset (or it lost leadership),
/// or the deadline: those still short answer REQUEST_TIMED_OUT.
async fn wait_for_low_watermarks(
    ctx: &Ctx,
    response: &mut DeleteRecordsResponse,
    mut waits: Vec<Waiting>,
    deadline: Instant,
) {
    loop {
        let wake = Arc::new(Notify::new());
        waits.retain(|w| {
            w.replica.add_start_waiter(&wake);
            let result = &mut response.topics[w.topic].partitions[w.partition];
            match low_watermark(ctx, &w.replica) {
                Ok(low) if low >= w.required => {
                    result.low_watermark = low;
                    false
                }
                Ok(_) => true,
                Err(e) => {
                    result.low_watermark = INVALID_LOW_WATERMARK;
                    result.error_code = ctx.count(e);
                    false
                }
            }
        });
        if waits.is_empty() {
            return;
        }
        let woken = tokio::select! {
            _ = wake.notified() => true,
            _ = tokio::time::sleep_until(deadline) => false,
            _ = ctx.broker.shutdown.cancelled() => false,
        };
        if !woken {
            for w in &waits {
                response.topics[w.topic].partitions[w.partition].error_code = ctx.count(ResponseError::RequestTimedOut);
            }
            return;
        }
    }
}
