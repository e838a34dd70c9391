//! ShareFetch and ShareAcknowledge (KIP-932): a share consumer's reads and acknowledgements at
//! a partition leader. Each request first moves the member's share session on by its epoch
//! (`share::sessions`), then applies the acknowledgements it carries, then (ShareFetch) reads
//! the session's partitions: for each, the share-partition core (`share::partition`) says
//! where to read, the log is read there outside any lock, and the core decides which of the
//! offsets read the member acquires. Whole batches go out as stored; the acquired ranges tell
//! the client which records in them are its to process.
//!
//! A fetch that acquired nothing waits (long poll) for an append to one of its partitions or a
//! lock running out, until `max_wait_ms`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::share_acknowledge_response::{self as ack_response, ShareAcknowledgeTopicResponse};
use kafka_protocol::messages::share_fetch_response::{
    AcquiredRecords, LeaderIdAndEpoch, PartitionData, ShareFetchableTopicResponse,
};
use kafka_protocol::messages::{
    ShareAcknowledgeRequest, ShareAcknowledgeResponse, ShareFetchRequest, ShareFetchResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use super::{share_persist, Ctx, Payloads, Reply};
use crate::clock::now_ms;
use crate::error::KafkaCode;
use crate::log::BatchHeader;
use crate::replica::Partition;
use crate::share::partition::{AckError, AckType, Acquired};
use crate::share::service::{AutoReset, GroupSettings, PartitionKey};
use crate::share::sessions::{Outcome, SessionPartition, OPEN_EPOCH};

/// Kafka's `fetch.max.bytes` default: caps what one response may carry whatever the client asks.
const FETCH_MAX_BYTES: usize = 55 * 1024 * 1024;
/// Most bytes read from one partition's log per request.
const PARTITION_READ_BYTES: usize = 1024 * 1024;
/// Longest long poll.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Records per request when the client names no maximum (Kafka's `max.poll.records` default).
const DEFAULT_MAX_RECORDS: usize = 500;

impl Payloads for ShareFetchResponse {
    fn payloads(&self) -> Vec<Bytes> {
        self.responses
            .iter()
            .flat_map(|t| t.partitions.iter())
            .filter_map(|p| p.records.clone())
            .collect()
    }
}

fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// One acknowledgement batch as the core takes it; an unknown type refuses the partition's.
type AckBatch = (i64, i64, Vec<AckType>);

fn ack_batches(batches: impl Iterator<Item = (i64, i64, Vec<i8>)>) -> Result<Vec<AckBatch>, ResponseError> {
    batches
        .map(|(first, last, types)| {
            let types = types
                .into_iter()
                .map(AckType::from_code)
                .collect::<Option<Vec<_>>>()
                .ok_or(ResponseError::InvalidRequest)?;
            Ok((first, last, types))
        })
        .collect()
}

/// The member's group and id, which every share request must name.
fn who(group: Option<&StrBytes>, member: Option<&StrBytes>) -> Result<(String, String), (ResponseError, &'static str)> {
    match (group, member) {
        (Some(g), Some(m)) if !g.is_empty() && !m.is_empty() => Ok((g.to_string(), m.to_string())),
        (None, _) | (Some(_), None) => Err((ResponseError::InvalidRequest, "group id and member id are required")),
        _ => Err((
            ResponseError::InvalidRequest,
            "group id and member id must not be empty",
        )),
    }
}

/// Applies one partition's acknowledgements; the partition's acknowledge error code.
fn acknowledge(
    ctx: &Ctx,
    settings: &GroupSettings,
    key: &PartitionKey,
    member: &str,
    batches: Result<Vec<AckBatch>, ResponseError>,
) -> i16 {
    let result = batches.and_then(|b| {
        ctx.broker
            .shares
            .acknowledge(key, member, &b, settings.partition, now_ms())
            .map_err(|e: AckError| e.kafka_error())
    });
    match result {
        Ok(()) => 0,
        Err(e) => ctx.count(e),
    }
}

/// The partition `(topic id, index)` if this broker leads it, else the error the client gets.
fn resolve(ctx: &Ctx, topic_id: &Uuid, index: i32) -> (Result<Arc<Partition>, ResponseError>, LeaderIdAndEpoch) {
    let image = ctx.broker.metadata.image();
    let Some(topic) = image.topic_by_id(topic_id) else {
        return (
            Err(ResponseError::UnknownTopicId),
            LeaderIdAndEpoch::default().with_leader_id(-1).with_leader_epoch(-1),
        );
    };
    let leader = topic.partitions.get(&index).map_or(
        LeaderIdAndEpoch::default().with_leader_id(-1).with_leader_epoch(-1),
        |p| {
            LeaderIdAndEpoch::default()
                .with_leader_id(p.leader)
                .with_leader_epoch(p.leader_epoch)
        },
    );
    let partition = ctx
        .broker
        .replicas
        .require(&topic.name, index)
        .map_err(|e| e.kafka_error())
        .and_then(|p| {
            if p.is_leader() {
                Ok(p)
            } else {
                Err(ResponseError::NotLeaderOrFollower)
            }
        });
    (partition, leader)
}

/// One partition of the member's session, resolved once per request.
struct Target {
    key: PartitionKey,
    partition: Result<Arc<Partition>, ResponseError>,
    leader: LeaderIdAndEpoch,
}

/// A ShareFetch after its session and acknowledgements are done: what to read, again on
/// each wake-up of its long poll.
struct Plan {
    ctx: Ctx,
    member: String,
    settings: GroupSettings,
    targets: Vec<Target>,
    /// Acknowledge error codes of the partitions the request acknowledged.
    acked: BTreeMap<SessionPartition, i16>,
    max_records: usize,
    max_bytes: usize,
}

pub(super) fn share_fetch(ctx: &Ctx, req: ShareFetchRequest) -> Reply<ShareFetchResponse> {
    let refuse = |e: ResponseError, msg: String| {
        Reply::Now(
            ShareFetchResponse::default()
                .with_error_code(ctx.count(e))
                .with_error_message(Some(text(msg))),
        )
    };
    let (group, member) = match who(req.group_id.as_ref().map(|g| &g.0), req.member_id.as_ref()) {
        Ok(w) => w,
        Err((e, msg)) => return refuse(e, msg.into()),
    };
    let epoch = req.share_session_epoch;
    let has_acks = req
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .any(|p| !p.acknowledgement_batches.is_empty());
    if epoch == OPEN_EPOCH && has_acks {
        return refuse(
            ResponseError::InvalidRequest,
            "Acknowledge data present in initial fetch request".into(),
        );
    }
    let added: Vec<SessionPartition> = req
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic_id, p.partition_index)))
        .collect();
    let forgotten: Vec<SessionPartition> = req
        .forgotten_topics_data
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic_id, *p)))
        .collect();
    let shares = &ctx.broker.shares;
    let outcome = match shares.session(&group, &member, epoch, &added, &forgotten) {
        Ok(o) => o,
        Err(e) => return refuse(e.kafka_error(), e.to_string()),
    };
    let image = ctx.broker.metadata.image();
    let settings = shares.settings().for_group(image.group_configs(&group));
    let mut acked = BTreeMap::new();
    for t in &req.topics {
        for p in t.partitions.iter().filter(|p| !p.acknowledgement_batches.is_empty()) {
            let key = (group.clone(), t.topic_id, p.partition_index);
            let batches = ack_batches(
                p.acknowledgement_batches
                    .iter()
                    .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone())),
            );
            acked.insert(
                (t.topic_id, p.partition_index),
                acknowledge(ctx, &settings, &key, &member, batches),
            );
        }
    }
    let mut session_partitions = match outcome {
        Outcome::Closed => {
            // The final request only acknowledges; then what the member still holds goes back.
            shares.close_session(&group, &member);
            Vec::new()
        }
        _ => shares.session_partitions(&group, &member),
    };
    // Every session partition is checked on each fetch: a revoked READ stops its reads.
    let refused = super::authorize::share::unreadable_session_partitions(ctx, &mut session_partitions);
    let targets = session_partitions
        .into_iter()
        .map(|(topic_id, index)| {
            let (partition, leader) = resolve(ctx, &topic_id, index);
            Target {
                key: (group.clone(), topic_id, index),
                partition,
                leader,
            }
        })
        .collect();
    let mut plan = Plan {
        ctx: ctx.clone(),
        member,
        settings,
        targets,
        acked,
        max_records: usize::try_from(req.max_records)
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_MAX_RECORDS),
        max_bytes: (req.max_bytes.max(0) as usize).min(FETCH_MAX_BYTES),
    };
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT);
    let deadline = Instant::now() + wait;
    let acked_keys: Vec<PartitionKey> = plan
        .acked
        .iter()
        .filter(|(_, code)| **code == 0)
        .map(|((t, p), _)| (group.clone(), *t, *p))
        .collect();
    Reply::Later(Box::pin(async move {
        // Acknowledgements are durable before they are answered, as in Kafka.
        for (key, result) in share_persist::persist(&plan.ctx, acked_keys).await {
            if let Err(e) = result {
                let code = plan.ctx.count(e);
                plan.acked.insert((key.1, key.2), code);
            }
        }
        let keys: Vec<PartitionKey> = plan.targets.iter().map(|t| t.key.clone()).collect();
        let not_ready = share_persist::load_missing(&plan.ctx, &keys, plan.settings.partition).await;
        // Their state is still loading: nothing from them this time (never a fresh start).
        plan.targets.retain(|t| !not_ready.contains(&t.key));
        let (response, got) = plan.read();
        let response = if got || wait.is_zero() || plan.targets.is_empty() {
            response
        } else {
            plan.long_poll(deadline).await
        };
        // Share-partitions this fetch created keep their start offset across restarts.
        let created = plan.ctx.broker.shares.take_created();
        if !created.is_empty() {
            share_persist::persist(&plan.ctx, created).await;
        }
        let mut response = response;
        response.responses.extend(refused);
        response
    }))
}

/// The batches of a log read: (byte range, header) of each whole one.
fn batches(records: &Bytes) -> Vec<(std::ops::Range<usize>, BatchHeader)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let Ok(h) = BatchHeader::parse(&records[at..]) else {
            break;
        };
        let end = at + h.size_bytes();
        if end > records.len() {
            break; // A partial batch at the end of the read.
        }
        out.push((at..end, h));
        at = end;
    }
    out
}

impl Plan {
    /// Waits until records are acquired, a lock runs out, or the deadline passes.
    async fn long_poll(&self, deadline: Instant) -> ShareFetchResponse {
        loop {
            let wake = Arc::new(Notify::new());
            for t in &self.targets {
                if let Ok(p) = &t.partition {
                    p.add_waiter(&wake);
                }
            }
            let (response, got) = self.read();
            if got || Instant::now() >= deadline {
                return response;
            }
            let keys: Vec<PartitionKey> = self.targets.iter().map(|t| t.key.clone()).collect();
            let until = match self.ctx.broker.shares.next_lock_deadline(&keys) {
                Some(at_ms) => {
                    let in_ms = (at_ms - now_ms()).max(1) as u64;
                    deadline.min(Instant::now() + Duration::from_millis(in_ms))
                }
                None => deadline,
            };
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep_until(until) => {}
                // Shutting down: answer with what there is rather than hold the node up.
                _ = self.ctx.broker.shutdown.cancelled() => return self.read().0,
            }
        }
    }

    /// Reads every partition once; the response and whether it acquired anything.
    fn read(&self) -> (ShareFetchResponse, bool) {
        let mut records_left = self.max_records;
        let mut bytes_left = self.max_bytes;
        let mut got = false;
        let mut topics: BTreeMap<Uuid, Vec<PartitionData>> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for t in &self.targets {
            let (_, topic_id, index) = &t.key;
            let mut data = self.read_partition(t, records_left, bytes_left);
            let n: usize = data
                .acquired_records
                .iter()
                .map(|a| (a.last_offset - a.first_offset + 1) as usize)
                .sum();
            got |= n > 0;
            records_left = records_left.saturating_sub(n);
            bytes_left = bytes_left.saturating_sub(data.records.as_ref().map_or(0, Bytes::len));
            if let Some(code) = self.acked.get(&(*topic_id, *index)) {
                data = data.with_acknowledge_error_code(*code);
            }
            seen.insert((*topic_id, *index));
            topics.entry(*topic_id).or_default().push(data);
        }
        // Partitions acknowledged that are not (or no longer) in the session.
        for ((topic_id, index), code) in self.acked.iter().filter(|(k, _)| !seen.contains(*k)) {
            let (_, leader) = resolve(&self.ctx, topic_id, *index);
            topics.entry(*topic_id).or_default().push(
                PartitionData::default()
                    .with_partition_index(*index)
                    .with_acknowledge_error_code(*code)
                    .with_current_leader(leader),
            );
        }
        let responses = topics
            .into_iter()
            .map(|(id, partitions)| {
                ShareFetchableTopicResponse::default()
                    .with_topic_id(id)
                    .with_partitions(partitions)
            })
            .collect();
        let lock_ms = i32::try_from(self.settings.partition.lock_duration_ms).unwrap_or(i32::MAX);
        let response = ShareFetchResponse::default()
            .with_acquisition_lock_timeout_ms(lock_ms)
            .with_responses(responses);
        (response, got)
    }

    fn read_partition(&self, t: &Target, records_left: usize, bytes_left: usize) -> PartitionData {
        let base = PartitionData::default()
            .with_partition_index(t.key.2)
            .with_current_leader(t.leader.clone());
        let partition = match &t.partition {
            Ok(p) if !p.is_leader() => return base.with_error_code(self.ctx.count(ResponseError::NotLeaderOrFollower)),
            Ok(p) => p,
            Err(e) => return base.with_error_code(self.ctx.count(*e)),
        };
        if records_left == 0 || bytes_left == 0 {
            return base;
        }
        let shares = &self.ctx.broker.shares;
        let now = now_ms();
        let auto_reset = self.settings.auto_reset;
        let initial = || match auto_reset {
            AutoReset::Earliest => partition.log_start_offset(),
            AutoReset::Latest => partition.high_watermark(),
        };
        let Some(from) = shares.fetch_offset(
            &t.key,
            self.settings.partition,
            partition.log_start_offset(),
            now,
            initial,
        ) else {
            return base;
        };
        let read = match partition.read(from, bytes_left.min(PARTITION_READ_BYTES), true) {
            Ok(r) => r,
            Err(e) => return base.with_error_code(self.ctx.code(&e)),
        };
        let batches = batches(&read.records);
        let offsets = batches
            .iter()
            .filter(|(_, h)| !h.is_control())
            .flat_map(|(_, h)| h.base_offset.max(from)..=h.last_offset());
        // Only control batches read: the share-partition's end moves over them.
        let skip_to = match batches.iter().all(|(_, h)| h.is_control()) {
            true => batches.last().map(|(_, h)| h.next_offset()),
            false => None,
        };
        let acquired = shares.acquire(&t.key, &self.member, offsets, records_left, skip_to, now);
        if acquired.is_empty() {
            return base;
        }
        let overlaps = |h: &BatchHeader| {
            acquired
                .iter()
                .any(|a| h.base_offset <= a.last_offset && a.first_offset <= h.last_offset())
        };
        let start = batches.iter().find(|(_, h)| overlaps(h)).map_or(0, |(r, _)| r.start);
        let end = batches
            .iter()
            .rev()
            .find(|(_, h)| overlaps(h))
            .map_or(0, |(r, _)| r.end);
        base.with_records(Some(read.records.slice(start..end)))
            .with_acquired_records(
                acquired
                    .into_iter()
                    .map(
                        |Acquired {
                             first_offset,
                             last_offset,
                             delivery_count,
                         }| {
                            AcquiredRecords::default()
                                .with_first_offset(first_offset)
                                .with_last_offset(last_offset)
                                .with_delivery_count(delivery_count)
                        },
                    )
                    .collect(),
            )
    }
}

pub(super) fn share_acknowledge(ctx: &Ctx, req: ShareAcknowledgeRequest) -> Reply<ShareAcknowledgeResponse> {
    let refuse = |e: ResponseError, msg: String| {
        Reply::Now(
            ShareAcknowledgeResponse::default()
                .with_error_code(ctx.count(e))
                .with_error_message(Some(text(msg))),
        )
    };
    let (group, member) = match who(req.group_id.as_ref().map(|g| &g.0), req.member_id.as_ref()) {
        Ok(w) => w,
        Err((e, msg)) => return refuse(e, msg.into()),
    };
    if req.share_session_epoch == OPEN_EPOCH {
        // An acknowledgement needs a session that is open already.
        return refuse(
            ResponseError::InvalidShareSessionEpoch,
            "ShareAcknowledge cannot open a share session".into(),
        );
    }
    let shares = &ctx.broker.shares;
    let outcome = match shares.session(&group, &member, req.share_session_epoch, &[], &[]) {
        Ok(o) => o,
        Err(e) => return refuse(e.kafka_error(), e.to_string()),
    };
    let image = ctx.broker.metadata.image();
    let settings = shares.settings().for_group(image.group_configs(&group));
    let mut acked_keys = Vec::new();
    let responses: Vec<ShareAcknowledgeTopicResponse> = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let key = (group.clone(), t.topic_id, p.partition_index);
                    let batches = ack_batches(
                        p.acknowledgement_batches
                            .iter()
                            .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone())),
                    );
                    let (_, leader) = resolve(ctx, &t.topic_id, p.partition_index);
                    let code = acknowledge(ctx, &settings, &key, &member, batches);
                    if code == 0 {
                        acked_keys.push(key);
                    }
                    ack_response::PartitionData::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                        .with_current_leader(
                            ack_response::LeaderIdAndEpoch::default()
                                .with_leader_id(leader.leader_id)
                                .with_leader_epoch(leader.leader_epoch),
                        )
                })
                .collect();
            ShareAcknowledgeTopicResponse::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    if outcome == Outcome::Closed {
        shares.close_session(&group, &member);
    }
    let c = ctx.clone();
    Reply::Later(Box::pin(async move {
        // Acknowledgements are durable before they are answered, as in Kafka.
        let failed: BTreeMap<(Uuid, i32), ResponseError> = share_persist::persist(&c, acked_keys)
            .await
            .into_iter()
            .filter_map(|(k, r)| r.err().map(|e| ((k.1, k.2), e)))
            .collect();
        let mut responses = responses;
        for t in &mut responses {
            for p in &mut t.partitions {
                if let Some(e) = failed.get(&(t.topic_id, p.partition_index)) {
                    p.error_code = c.count(*e);
                }
            }
        }
        ShareAcknowledgeResponse::default().with_responses(responses)
    }))
}
