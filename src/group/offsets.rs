//! Committed offsets: OffsetCommit, OffsetDelete, DeleteGroups, deleted partitions and the
//! periodic expiry, after Kafka's `OffsetMetadataManager` and `GroupCoordinatorShard`.
//!
//! An offset commit is appended first and materialised when the append is confirmed; until then
//! it is "pending": not visible to OffsetFetch, never expired, and dropped (it will not
//! materialise) if its partition or group is deleted meanwhile. Deletions apply at once and are
//! answered when their tombstones are in the log.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;

use super::api::{
    CommitRequest, DeleteGroupsRequest, DeleteGroupsResponse, OffsetCommitResponse, OffsetDeleteRequest,
    OffsetDeleteResponse, RequestId, Response, TimerKey, TopicErrors,
};
use super::coordinator::{Outbox, PendingCommit, PendingWrite, TimerPayload};
use super::membership::{append_error_to_response_error, join_key, remove_member, sync_key};
use super::records::{OffsetCommitValue, Record, MAX_STRING_BYTES};
use super::state::{CommittedOffset, Group, GroupState};

pub(crate) fn commit(groups: &mut BTreeMap<String, Group>, out: &mut Outbox, r: CommitRequest) {
    let fail = |out: &mut Outbox, error| {
        out.respond(
            r.req,
            Response::OffsetCommit(OffsetCommitResponse::all(&r.topics, Some(error))),
        )
    };
    if r.group_id.len() > MAX_STRING_BYTES || r.topics.iter().any(|t| t.name.len() > MAX_STRING_BYTES) {
        return fail(out, ResponseError::InvalidRequest);
    }
    let group = match groups.get_mut(&r.group_id) {
        Some(group) => group,
        // A "simple" group: a consumer committing without group management creates it.
        None if r.generation_id < 0 => {
            tracing::info!(group = %r.group_id, "creating a simple consumer group by offset commit");
            groups
                .entry(r.group_id.clone())
                .or_insert_with(|| Group::new(&r.group_id, out.now_ms))
        }
        None if r.api_version >= 9 => return fail(out, ResponseError::GroupIdNotFound),
        None => return fail(out, ResponseError::IllegalGeneration),
    };
    // TxnOffsetCommit before v3 carries no member: Kafka accepts it for any live group.
    let anonymous_txn =
        r.transaction.is_some() && r.generation_id < 0 && r.member_id.is_empty() && r.group_instance_id.is_none();
    let validated = if anonymous_txn && !group.is(GroupState::Dead) {
        Ok(())
    } else if let Some(consumer) = &group.consumer {
        consumer.validate_offset_commit(&r.member_id, r.generation_id, r.api_version, r.transaction.is_some())
    } else {
        group.validate_offset_commit(&r.member_id, r.group_instance_id.as_deref(), r.generation_id)
    };
    if let Err(e) = validated {
        return fail(out, e);
    }
    // A commit keeps a member's session alive, like a heartbeat.
    if group.is(GroupState::Stable) || group.is(GroupState::PreparingRebalance) {
        if let Some(member) = group.members.get(&r.member_id) {
            out.reschedule_heartbeat(&group.group_id, member);
        }
    }
    let now_ms = out.now_ms;
    let expire_timestamp_ms = (r.retention_time_ms != -1).then(|| now_ms.saturating_add(r.retention_time_ms));
    let metadata_max = out.config.offset_metadata_max_bytes.min(MAX_STRING_BYTES);
    let mut response = OffsetCommitResponse {
        topics: Vec::with_capacity(r.topics.len()),
    };
    let mut records = Vec::new();
    let mut written = Vec::new();
    for topic in &r.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let metadata = p.metadata.clone().unwrap_or_default();
            // Java compares String.length(), i.e. UTF-16 units.
            if metadata.encode_utf16().count() > metadata_max || metadata.len() > MAX_STRING_BYTES {
                partitions.push((p.partition, Some(ResponseError::OffsetMetadataTooLarge)));
                continue;
            }
            partitions.push((p.partition, None));
            let offset = CommittedOffset {
                offset: p.offset,
                leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
                metadata,
                commit_timestamp_ms: if p.commit_timestamp_ms == -1 {
                    now_ms
                } else {
                    p.commit_timestamp_ms
                },
                expire_timestamp_ms,
            };
            records.push(offset_record(&r.group_id, &topic.name, p.partition, Some(&offset)));
            written.push((topic.name.clone(), p.partition, offset));
        }
        response.topics.push(TopicErrors {
            name: topic.name.clone(),
            partitions,
        });
    }
    if records.is_empty() {
        return out.respond(r.req, Response::OffsetCommit(response));
    }
    let then = PendingWrite::OffsetCommit(PendingCommit {
        group_id: r.group_id.clone(),
        req: r.req,
        response,
        written: written.clone(),
        producer_id: r.transaction.map(|(producer_id, _)| producer_id),
    });
    if let Some((producer_id, producer_epoch)) = r.transaction {
        // Pending in the transaction once in the log; the marker decides.
        out.persist_transactional(producer_id, producer_epoch, records, then);
        return;
    }
    let token = out.persist(records, Some(then));
    for (topic, partition, _) in written {
        group
            .pending_offset_commits
            .entry((topic, partition))
            .or_default()
            .insert(token);
    }
}

/// The commit with `token` is in the log (or failed): materialise what is still pending, answer.
pub(crate) fn commit_persisted(
    groups: &mut BTreeMap<String, Group>,
    out: &mut Outbox,
    token: u64,
    commit: PendingCommit,
    result: Result<(), ResponseError>,
) {
    let PendingCommit {
        group_id,
        req,
        mut response,
        written,
        producer_id,
    } = commit;
    match (producer_id, groups.get_mut(&group_id)) {
        (_, None) => {}
        (Some(producer_id), Some(group)) => {
            if result.is_ok() {
                let pending = group.pending_txn_offsets.entry(producer_id).or_default();
                for (topic, partition, offset) in written {
                    pending.insert((topic, partition), offset);
                }
            }
        }
        (None, Some(group)) => {
            // Partitions deleted meanwhile are no longer pending under this token: they stay gone.
            let live: BTreeSet<(String, i32)> = written
                .iter()
                .map(|(t, p, _)| (t.clone(), *p))
                .filter(|key| {
                    group
                        .pending_offset_commits
                        .get(key)
                        .is_some_and(|tokens| tokens.contains(&token))
                })
                .collect();
            if result.is_ok() {
                // In request order, so a partition given twice ends as the log does: last one wins.
                for (topic, partition, offset) in written {
                    if live.contains(&(topic.clone(), partition)) {
                        group.put_offset(&topic, partition, offset);
                    }
                }
            }
            for key in live {
                if let Some(tokens) = group.pending_offset_commits.get_mut(&key) {
                    tokens.remove(&token);
                    if tokens.is_empty() {
                        group.pending_offset_commits.remove(&key);
                    }
                }
            }
        }
    }
    if let Err(e) = result {
        let error = append_error_to_response_error(e);
        for topic in &mut response.topics {
            for (_, e) in topic.partitions.iter_mut().filter(|(_, e)| e.is_none()) {
                *e = Some(error);
            }
        }
    }
    out.respond(req, Response::OffsetCommit(response));
}

/// The marker of `producer_id`'s transaction is written: its offsets take effect (COMMIT) or
/// are dropped (ABORT), in every group of this partition.
pub(crate) fn txn_completed(groups: &mut BTreeMap<String, Group>, producer_id: i64, commit: bool) {
    for group in groups.values_mut() {
        let Some(offsets) = group.pending_txn_offsets.remove(&producer_id) else {
            continue;
        };
        if commit {
            for ((topic, partition), offset) in offsets {
                group.put_offset(&topic, partition, offset);
            }
        }
    }
}

pub(crate) fn delete_offsets(groups: &mut BTreeMap<String, Group>, out: &mut Outbox, r: OffsetDeleteRequest) {
    let fail = |out: &mut Outbox, error| {
        out.respond(
            r.req,
            Response::OffsetDelete(OffsetDeleteResponse {
                error: Some(error),
                topics: Vec::new(),
            }),
        )
    };
    let Some(group) = groups.get_mut(&r.group_id) else {
        return fail(out, ResponseError::GroupIdNotFound);
    };
    match group.state {
        GroupState::Dead => return fail(out, ResponseError::GroupIdNotFound),
        GroupState::Empty => {}
        // Only a consumer group can tell which topics it consumes.
        _ if !group.uses_consumer_protocol() => return fail(out, ResponseError::NonEmptyGroup),
        _ => {}
    }
    let mut records = Vec::new();
    let mut topics = Vec::with_capacity(r.topics.len());
    for (topic, partitions) in &r.topics {
        let subscribed = group.is_subscribed_to_topic(topic);
        let error = subscribed.then_some(ResponseError::GroupSubscribedToTopic);
        for &partition in partitions {
            if !subscribed && group.has_offset_or_pending(topic, partition) {
                group.remove_offset(topic, partition);
                records.push(offset_record(&r.group_id, topic, partition, None));
            }
        }
        topics.push(TopicErrors {
            name: topic.clone(),
            partitions: partitions.iter().map(|p| (*p, error)).collect(),
        });
    }
    let response = Response::OffsetDelete(OffsetDeleteResponse { error: None, topics });
    reply_after(out, r.req, response, records);
}

pub(crate) fn delete_groups(groups: &mut BTreeMap<String, Group>, out: &mut Outbox, r: DeleteGroupsRequest) {
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(r.group_ids.len());
    for group_id in r.group_ids {
        let error = match groups.get(&group_id).map(|g| g.state) {
            None | Some(GroupState::Dead) => Some(ResponseError::GroupIdNotFound),
            Some(GroupState::Empty) if groups.get(&group_id).is_some_and(|g| !g.has_no_members()) => {
                Some(ResponseError::NonEmptyGroup)
            }
            Some(GroupState::Empty) => {
                if let Some(group) = groups.remove(&group_id) {
                    records.extend(group_tombstones(&group));
                    drop_group(group, out);
                }
                None
            }
            Some(_) => Some(ResponseError::NonEmptyGroup),
        };
        results.push((group_id, error));
    }
    let deleted: Vec<&str> = results
        .iter()
        .filter(|(_, e)| e.is_none())
        .map(|(g, _)| g.as_str())
        .collect();
    if !deleted.is_empty() {
        tracing::info!(groups = ?deleted, "groups deleted");
    }
    reply_after(
        out,
        r.req,
        Response::DeleteGroups(DeleteGroupsResponse { results }),
        records,
    );
}

/// Tombstones for every offset (pending ones included) and then for the group itself.
fn group_tombstones(group: &Group) -> Vec<Record> {
    let mut records: Vec<Record> = group
        .offset_partitions()
        .into_iter()
        .map(|(t, p)| offset_record(&group.group_id, &t, p, None))
        .collect();
    if let Some(cg) = &group.consumer {
        let consumer = super::consumer::records::group_tombstones(&group.group_id, cg);
        records.extend(consumer.into_iter().map(Record::Consumer));
    }
    records.push(Record::GroupMetadata {
        group: group.group_id.clone(),
        value: None,
    });
    records
}

/// Stops everything still running for a group that was removed from the coordinator.
fn drop_group(mut group: Group, out: &mut Outbox) {
    let ids: Vec<String> = group
        .members
        .keys()
        .chain(group.pending_members.iter())
        .cloned()
        .collect();
    for member_id in ids {
        remove_member(&mut group, out, &member_id);
    }
    out.cancel(join_key(&group));
    out.cancel(sync_key(&group));
}

/// Answers now if nothing is to be written, else once the records are in the log.
fn reply_after(out: &mut Outbox, req: RequestId, response: Response, records: Vec<Record>) {
    if records.is_empty() {
        out.respond(req, response);
    } else {
        out.persist(records, Some(PendingWrite::Reply { req, response }));
    }
}

/// The tombstones of a DeleteGroups/OffsetDelete are in the log (or failed).
pub(crate) fn reply_persisted(out: &mut Outbox, req: RequestId, response: Response, result: Result<(), ResponseError>) {
    let response = match (result, response) {
        (Ok(()), response) => response,
        (Err(e), Response::DeleteGroups(mut d)) => {
            let error = append_error_to_response_error(e);
            for (_, e) in d.results.iter_mut().filter(|(_, e)| e.is_none()) {
                *e = Some(error);
            }
            Response::DeleteGroups(d)
        }
        (Err(e), Response::ConsumerHeartbeat(_)) => {
            Response::ConsumerHeartbeat(super::consumer::heartbeat::ConsumerHeartbeatResponse {
                error: Some(append_error_to_response_error(e)),
                error_message: None,
                member_id: None,
                member_epoch: 0,
                heartbeat_interval_ms: 0,
                assignment: None,
            })
        }
        (Err(e), Response::OffsetDelete(_)) => Response::OffsetDelete(OffsetDeleteResponse {
            error: Some(append_error_to_response_error(e)),
            topics: Vec::new(),
        }),
        (Err(_), response) => response,
    };
    out.respond(req, response);
}

/// Topic partitions were deleted: tombstone their offsets in every group.
pub(crate) fn partitions_deleted(groups: &mut BTreeMap<String, Group>, out: &mut Outbox, partitions: &[(String, i32)]) {
    let mut records = Vec::new();
    for group in groups.values_mut() {
        for (topic, partition) in partitions {
            if group.has_offset_or_pending(topic, *partition) {
                group.remove_offset(topic, *partition);
                records.push(offset_record(&group.group_id, topic, *partition, None));
            }
        }
    }
    if !records.is_empty() {
        out.persist(records, None);
    }
}

/// The periodic sweep (Kafka's `cleanupGroupMetadata`): expired offsets get tombstones, and an
/// Empty group left without offsets is deleted.
pub(crate) fn expire_offsets(groups: &mut BTreeMap<String, Group>, out: &mut Outbox) {
    let now_ms = out.now_ms;
    let retention_ms = out.config.offsets_retention_ms;
    let mut records = Vec::new();
    let mut dead = Vec::new();
    for group in groups.values_mut() {
        let all_expired = expire_group_offsets(group, now_ms, retention_ms, &mut records);
        if all_expired && group.is(GroupState::Empty) && group.has_no_members() {
            if let Some(cg) = &group.consumer {
                let consumer = super::consumer::records::group_tombstones(&group.group_id, cg);
                records.extend(consumer.into_iter().map(Record::Consumer));
            }
            records.push(Record::GroupMetadata {
                group: group.group_id.clone(),
                value: None,
            });
            dead.push(group.group_id.clone());
        }
    }
    for group_id in &dead {
        if let Some(group) = groups.remove(group_id) {
            drop_group(group, out);
        }
    }
    if !records.is_empty() {
        tracing::info!(
            tombstones = records.len(),
            groups_deleted = dead.len(),
            "expired group metadata"
        );
        out.persist(records, None);
    }
    let interval = out.config.offsets_retention_check_interval_ms;
    out.schedule(TimerKey::OffsetExpiration, interval, TimerPayload::OffsetExpiration);
}

/// Where the retention period of an offset starts.
#[derive(Debug, Clone, Copy)]
enum RetentionBase {
    /// Empty group: when it became empty (when unknown, the commit time).
    StateTimestamp(Option<i64>),
    CommitTimestamp,
}

/// Kafka's `offsetExpirationCondition`: Empty groups expire offsets retention after they became
/// empty; Stable consumer groups expire offsets of topics they no longer subscribe to, retention
/// after the commit; simple groups (no protocol type) likewise; anything else keeps its offsets.
fn retention_base(group: &Group) -> Option<RetentionBase> {
    if let Some(consumer) = &group.consumer {
        // As Kafka's ConsumerGroup: with members, offsets of topics it no longer subscribes to
        // expire from their commit; once empty, all expire from when it became empty.
        return Some(if consumer.members.is_empty() {
            RetentionBase::StateTimestamp(group.state_timestamp_ms)
        } else {
            RetentionBase::CommitTimestamp
        });
    }
    match &group.protocol_type {
        None => Some(RetentionBase::CommitTimestamp),
        Some(_) if group.is(GroupState::Empty) => Some(RetentionBase::StateTimestamp(group.state_timestamp_ms)),
        Some(_)
            if group.uses_consumer_protocol() && group.subscribed_topics.is_some() && group.is(GroupState::Stable) =>
        {
            Some(RetentionBase::CommitTimestamp)
        }
        Some(_) => None,
    }
}

fn is_expired(o: &CommittedOffset, base: RetentionBase, now_ms: i64, retention_ms: i64) -> bool {
    if let Some(expire_ms) = o.expire_timestamp_ms {
        return now_ms >= expire_ms; // explicit retention of OffsetCommit v2-v4
    }
    let since = match base {
        RetentionBase::StateTimestamp(ts) => ts.unwrap_or(o.commit_timestamp_ms),
        RetentionBase::CommitTimestamp => o.commit_timestamp_ms,
    };
    now_ms.saturating_sub(since) >= retention_ms
}

/// Removes a group's expired offsets, adding tombstones; true if no offset is left.
fn expire_group_offsets(group: &mut Group, now_ms: i64, retention_ms: i64, records: &mut Vec<Record>) -> bool {
    if group.offsets.is_empty() && group.pending_offset_commits.is_empty() {
        return true;
    }
    let Some(base) = retention_base(group) else {
        return false;
    };
    let mut expired = BTreeSet::new();
    let mut all_expired = group.pending_offset_commits.is_empty();
    for (topic, partitions) in &group.offsets {
        if group.is_subscribed_to_topic(topic) {
            all_expired = false;
            continue;
        }
        for (partition, offset) in partitions {
            let pending = group.pending_offset_commits.contains_key(&(topic.clone(), *partition));
            if !pending && is_expired(offset, base, now_ms, retention_ms) {
                expired.insert((topic.clone(), *partition));
            } else {
                all_expired = false;
            }
        }
    }
    for (topic, partition) in expired {
        group.remove_offset(&topic, partition);
        records.push(offset_record(&group.group_id, &topic, partition, None));
    }
    all_expired
}

/// An OffsetCommit record, or its tombstone.
pub(crate) fn offset_record(group: &str, topic: &str, partition: i32, offset: Option<&CommittedOffset>) -> Record {
    Record::OffsetCommit {
        group: group.to_owned(),
        topic: topic.to_owned(),
        partition,
        value: offset.map(|o| OffsetCommitValue {
            offset: o.offset,
            leader_epoch: o.leader_epoch.unwrap_or(-1),
            metadata: o.metadata.clone(),
            commit_timestamp_ms: o.commit_timestamp_ms,
            expire_timestamp_ms: o.expire_timestamp_ms.unwrap_or(-1),
        }),
    }
}
