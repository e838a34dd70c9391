//! Fetch: read whole record batches from partition logs, with `min_bytes`/`max_wait_ms` long
//! polling woken by the partitions (not by timers). A consumer reads below the high watermark
//! and is woken when it moves; a follower (a replica id in the request) reads up to the log
//! end, is woken by appends, is told where its log diverged (KIP-595's diverging epoch), and
//! its fetch offset is its log end, from which the leader's core tracks the ISR.
//!
//! A read_committed consumer reads below the last stable offset (no open or undecided
//! transaction) and is told the aborted transactions in what it got; a read_uncommitted one
//! reads below the high watermark. Every answer carries the last stable offset.
//!
//! Sessionless (KIP-227 allows it): every response carries session id 0, so clients send full
//! fetch requests. Batches go out as stored: this layer never looks inside them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use super::{Ctx, Reply};
use crate::clock::now_ms;
use crate::error::KafkaCode;
use crate::replica::{FollowerFetch, FollowerRead, Partition};

/// Fetch from version 13 names topics by id only.
const TOPIC_IDS_FROM_VERSION: i16 = 13;
/// Kafka's `fetch.max.bytes` default: caps what one response may carry whatever the client asks.
const FETCH_MAX_BYTES: usize = 55 * 1024 * 1024;
/// Longest long poll; clients ask for 100 ms to a few seconds.
const MAX_WAIT: Duration = Duration::from_secs(60);
const READ_COMMITTED: i8 = 1;

/// One requested partition, resolved against the metadata once per request.
struct Wanted {
    topic_index: usize,
    request: FetchPartition,
    partition: Result<Arc<Partition>, ResponseError>,
}

/// A fetch request resolved and ready to be read (again, on each wake-up).
struct Plan {
    ctx: Ctx,
    topics: Vec<(TopicName, Uuid)>,
    partitions: Vec<Wanted>,
    max_bytes: usize,
    min_bytes: usize,
    read_committed: bool,
    /// The follower asking, if it is one; and whether its broker may be in an ISR.
    follower: Option<(i32, bool)>,
}

/// The replica id of a follower's fetch: `ReplicaState` from v15, the `replica_id` field before.
pub(super) fn follower_id(req: &FetchRequest, version: i16) -> Option<i32> {
    let id = if version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    (id >= 0).then_some(id)
}

pub(super) fn handle(ctx: &Ctx, req: FetchRequest) -> Reply<FetchResponse> {
    if req.session_id != 0 {
        // We never hand out sessions, so an incremental fetch names one we do not have.
        let code = ctx.count(ResponseError::FetchSessionIdNotFound);
        return Reply::Now(FetchResponse::default().with_error_code(code));
    }
    let plan = Plan::new(ctx, &req);
    let (response, enough) = plan.read();
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT);
    if enough || wait.is_zero() {
        return Reply::Now(response);
    }
    let deadline = Instant::now() + wait;
    Reply::Later(Box::pin(async move { plan.long_poll(deadline).await }))
}

impl Plan {
    fn new(ctx: &Ctx, req: &FetchRequest) -> Plan {
        let image = ctx.broker.metadata.image();
        let by_id = ctx.version >= TOPIC_IDS_FROM_VERSION;
        let mut topics = Vec::with_capacity(req.topics.len());
        let mut partitions = Vec::new();
        for (topic_index, t) in req.topics.iter().enumerate() {
            let name = if by_id {
                image.topic_by_id(&t.topic_id).map(|t| t.name.clone())
            } else {
                Some(t.topic.0.to_string())
            };
            topics.push((t.topic.clone(), t.topic_id));
            for p in &t.partitions {
                let partition = match &name {
                    None => Err(ResponseError::UnknownTopicId),
                    Some(n) => ctx.broker.replicas.require(n, p.partition).map_err(|e| e.kafka_error()),
                };
                partitions.push(Wanted {
                    topic_index,
                    request: p.clone(),
                    partition,
                });
            }
        }
        let follower = follower_id(req, ctx.version).map(|id| {
            // KIP-841: only a registered, unfenced broker may join an ISR.
            let eligible = image.broker(id).is_some_and(|b| !b.fenced);
            (id, eligible)
        });
        Plan {
            ctx: ctx.clone(),
            topics,
            partitions,
            max_bytes: (req.max_bytes.max(0) as usize).min(FETCH_MAX_BYTES),
            min_bytes: req.min_bytes.max(0) as usize,
            read_committed: req.isolation_level == READ_COMMITTED,
            follower,
        }
    }

    /// Waits until enough bytes arrived or the deadline passed. Registering as a waiter before
    /// reading means an append between the read and the wait still wakes us.
    async fn long_poll(self, deadline: Instant) -> FetchResponse {
        loop {
            let wake = Arc::new(Notify::new());
            for p in self.partitions.iter().filter_map(|w| w.partition.as_ref().ok()) {
                match self.follower {
                    Some(_) => p.add_end_waiter(&wake),
                    None => p.add_waiter(&wake),
                }
            }
            let (response, enough) = self.read();
            if enough || Instant::now() >= deadline {
                return response;
            }
            let woken = tokio::select! {
                _ = wake.notified() => true,
                _ = tokio::time::sleep_until(deadline) => false,
                // Shutting down: answer with what there is rather than hold the node up.
                _ = self.ctx.broker.shutdown.cancelled() => false,
            };
            if !woken {
                return self.read().0;
            }
        }
    }

    /// Reads every partition once. Returns the response and whether it may be sent now
    /// (min_bytes reached, or an error to report).
    fn read(&self) -> (FetchResponse, bool) {
        let mut budget = self.max_bytes;
        let mut total = 0usize;
        let mut has_error = false;
        let mut topics: Vec<FetchableTopicResponse> = self
            .topics
            .iter()
            .map(|(name, id)| {
                FetchableTopicResponse::default()
                    .with_topic(if self.ctx.version < TOPIC_IDS_FROM_VERSION {
                        name.clone()
                    } else {
                        TopicName(StrBytes::default())
                    })
                    .with_topic_id(*id)
            })
            .collect();
        for w in &self.partitions {
            let data = self.read_partition(w, budget, total == 0);
            let n = data.records.as_ref().map_or(0, Bytes::len);
            // An error or a diverging epoch is answered at once, as Kafka does.
            has_error |= data.error_code != 0 || data.diverging_epoch.epoch >= 0;
            total += n;
            budget = budget.saturating_sub(n);
            topics[w.topic_index].partitions.push(data);
        }
        let response = FetchResponse::default().with_responses(topics);
        (response, has_error || total >= self.min_bytes)
    }

    fn read_partition(&self, w: &Wanted, budget: usize, first_data: bool) -> PartitionData {
        let req = &w.request;
        let base = PartitionData::default()
            .with_partition_index(req.partition)
            .with_records(Some(Bytes::new()))
            .with_aborted_transactions(self.read_committed.then(Vec::new));
        let partition = match &w.partition {
            // Leadership can move while the fetch is parked.
            Ok(p) if !p.is_leader() => return self.failed(base, ResponseError::NotLeaderOrFollower),
            Ok(p) => p,
            Err(e) => return self.failed(base, *e),
        };
        let base = base
            .with_high_watermark(partition.high_watermark())
            .with_last_stable_offset(partition.last_stable_offset())
            .with_log_start_offset(partition.log_start_offset());
        let epoch = partition.leader_epoch();
        if req.current_leader_epoch >= 0 && req.current_leader_epoch != epoch {
            let e = if req.current_leader_epoch > epoch {
                ResponseError::UnknownLeaderEpoch
            } else {
                ResponseError::FencedLeaderEpoch
            };
            return self.failed(base, e);
        }
        let max = (req.partition_max_bytes.max(0) as usize).min(budget);
        let min_one = first_data && budget > 0;
        let read = match self.follower {
            None if self.read_committed => {
                return match partition.read_committed(req.fetch_offset, max, min_one) {
                    Ok((r, aborted)) => {
                        let aborted = aborted
                            .into_iter()
                            .map(|a| {
                                AbortedTransaction::default()
                                    .with_producer_id(ProducerId(a.producer_id))
                                    .with_first_offset(a.first_offset)
                            })
                            .collect();
                        base.with_high_watermark(r.high_watermark)
                            .with_log_start_offset(r.log_start_offset)
                            .with_records(Some(r.records))
                            .with_aborted_transactions(Some(aborted))
                    }
                    Err(e) => base.with_error_code(self.ctx.code(&e)),
                };
            }
            None => partition
                .read(req.fetch_offset, max, min_one)
                .map(FollowerRead::Records),
            Some((replica, eligible)) => partition.read_for_follower(
                FollowerFetch {
                    replica,
                    fetch_offset: req.fetch_offset,
                    log_start_offset: req.log_start_offset,
                    last_fetched_epoch: req.last_fetched_epoch,
                    max_bytes: max,
                    eligible,
                    now_ms: now_ms(),
                },
                min_one,
            ),
        };
        match read {
            Ok(FollowerRead::Records(r)) => {
                if self.follower.is_some() {
                    self.ctx
                        .broker
                        .metrics
                        .replica_fetch_bytes
                        .inc_by(r.records.len() as u64);
                }
                base.with_high_watermark(r.high_watermark)
                    .with_log_start_offset(r.log_start_offset)
                    .with_records(Some(r.records))
            }
            Ok(FollowerRead::Diverging {
                epoch,
                end_offset,
                high_watermark,
                log_start_offset,
            }) => base
                .with_high_watermark(high_watermark)
                .with_log_start_offset(log_start_offset)
                .with_diverging_epoch(EpochEndOffset::default().with_epoch(epoch).with_end_offset(end_offset)),
            Err(e) => {
                let code = self.ctx.code(&e);
                base.with_error_code(code)
            }
        }
    }

    fn failed(&self, base: PartitionData, e: ResponseError) -> PartitionData {
        base.with_error_code(self.ctx.count(e))
    }
}
