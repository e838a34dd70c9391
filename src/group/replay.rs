//! Between the log and the state: the GroupMetadata record of a group, rebuilding the groups
//! of a partition from its records ([`load`]) and letting go of them ([`unload`]).

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::ResponseError;

#[cfg(test)]
use super::api::RawRecord;
use super::api::{Action, JoinResponse, OffsetCommitResponse, Protocol, Response, SyncResponse, TimerKey};
use super::config::GroupConfig;
use super::coordinator::{GroupCoordinatorState, PendingCommit, PendingWrite, TimerPayload};
use super::membership::prepare_rebalance;
use super::records::{GroupMetadataValue, MemberMetadataValue, OffsetCommitValue, Record, RecordError};
use super::state::{CommittedOffset, Group, GroupState, Member};
use crate::coordinator::runtime::LogRecord;

/// The GroupMetadata record of `group`, each member with `assignment(member)`.
pub(crate) fn group_metadata_record(group: &Group, assignment: impl Fn(&Member) -> Bytes) -> Record {
    let protocol = group.protocol_name.as_deref().unwrap_or_default();
    let members = group
        .members
        .values()
        .map(|m| MemberMetadataValue {
            member_id: m.member_id.clone(),
            group_instance_id: m.group_instance_id.clone(),
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
            rebalance_timeout_ms: m.rebalance_timeout_ms,
            session_timeout_ms: m.session_timeout_ms,
            subscription: m.metadata(protocol),
            assignment: assignment(m),
        })
        .collect();
    Record::GroupMetadata {
        group: group.group_id.clone(),
        value: Some(GroupMetadataValue {
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            generation: group.generation_id,
            protocol: group.protocol_name.clone(),
            leader: group.leader_id.clone(),
            current_state_timestamp_ms: group.state_timestamp_ms.unwrap_or(-1),
            members,
        }),
    }
}

/// What [`load`] built, and the actions to start with: every loaded member's session timer,
/// the offset expiry timer, and a rebalance of any group over `group.max.size`.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) state: GroupCoordinatorState,
    pub(crate) actions: Vec<Action>,
    /// Records of other types (KIP-848 consumer groups, share groups) that were skipped.
    pub(crate) skipped_records: usize,
}

/// Rebuilds the groups of one `__consumer_offsets` partition from its plain records in log
/// order, tombstones included: [`load_log`] without transactions (the tests' way in).
#[cfg(test)]
pub(crate) fn load(
    config: GroupConfig,
    member_id_seed: u64,
    now_ms: i64,
    records: impl IntoIterator<Item = RawRecord>,
) -> Result<Loaded, RecordError> {
    let records = records.into_iter().map(|(key, value)| LogRecord::Data {
        key,
        value,
        producer_id: None,
    });
    load_log(config, member_id_seed, now_ms, records)
}

/// Rebuilds the groups of one `__consumer_offsets` partition from its records in log order,
/// tombstones included. A transaction's offset commits apply at its COMMIT marker and are
/// dropped at its ABORT; those of a transaction still open stay pending with their group.
/// Groups with members come back Stable, the others Empty, as in Kafka. A record that does not
/// decode fails the load; records of unknown types are skipped as Kafka does.
pub(crate) fn load_log(
    config: GroupConfig,
    member_id_seed: u64,
    now_ms: i64,
    records: impl IntoIterator<Item = LogRecord>,
) -> Result<Loaded, RecordError> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    // producer id → its open transaction's records, in log order.
    let mut open: BTreeMap<i64, Vec<Record>> = BTreeMap::new();
    let mut skipped_records = 0;
    for record in records {
        let (key, value, producer_id) = match record {
            LogRecord::Data {
                key,
                value,
                producer_id,
            } => (key, value, producer_id),
            LogRecord::Marker { producer_id, commit } => {
                for record in open.remove(&producer_id).unwrap_or_default() {
                    if commit {
                        replay(&mut groups, record, now_ms);
                    }
                }
                continue;
            }
        };
        match (Record::decode(&key, value.as_deref()), producer_id) {
            (Ok(record), None) => replay(&mut groups, record, now_ms),
            (Ok(record), Some(producer_id)) => open.entry(producer_id).or_default().push(record),
            (Err(RecordError::UnknownRecordType(t)), _) => {
                tracing::debug!(
                    record_type = t,
                    "skipping a record the classic coordinator does not use"
                );
                skipped_records += 1;
            }
            (Err(e), _) => return Err(e),
        }
    }
    for (producer_id, records) in open {
        for record in records {
            if let Record::OffsetCommit {
                group,
                topic,
                partition,
                value: Some(v),
            } = record
            {
                let g = groups
                    .entry(group.clone())
                    .or_insert_with(|| Group::new(&group, now_ms));
                let pending = g.pending_txn_offsets.entry(producer_id).or_default();
                pending.insert((topic, partition), committed_offset(v));
            }
        }
    }
    let mut state = GroupCoordinatorState::new(config, member_id_seed);
    state.groups = groups;
    let GroupCoordinatorState { groups, out } = &mut state;
    out.now_ms = now_ms;
    for group in groups.values_mut() {
        group.subscribed_topics = group.compute_subscribed_topics();
        for member in group.members.values() {
            out.reschedule_heartbeat(&group.group_id, member);
        }
        super::consumer::replay::loaded(group, out);
        if group.members.len() > out.config.max_size {
            prepare_rebalance(group, out, "loaded group is over group.max.size");
        }
    }
    let interval = out.config.offsets_retention_check_interval_ms;
    out.schedule(TimerKey::OffsetExpiration, interval, TimerPayload::OffsetExpiration);
    let actions = out.take_actions();
    tracing::debug!(
        groups = state.groups.len(),
        skipped_records,
        "group coordinator state loaded"
    );
    Ok(Loaded {
        state,
        actions,
        skipped_records,
    })
}

/// Applies one record to the groups being loaded.
fn replay(groups: &mut BTreeMap<String, Group>, record: Record, now_ms: i64) {
    match record {
        Record::OffsetCommit {
            group,
            topic,
            partition,
            value: Some(v),
        } => {
            // Offsets without group metadata belong to a simple (commit-only) group.
            let g = groups
                .entry(group.clone())
                .or_insert_with(|| Group::new(&group, now_ms));
            g.put_offset(&topic, partition, committed_offset(v));
        }
        Record::OffsetCommit {
            group,
            topic,
            partition,
            value: None,
        } => {
            if let Some(g) = groups.get_mut(&group) {
                g.remove_offset(&topic, partition);
            }
        }
        Record::GroupMetadata { group, value: Some(v) } => {
            let offsets = groups.remove(&group).map(|g| g.offsets).unwrap_or_default();
            let mut g = group_from_value(&group, v, now_ms);
            g.offsets = offsets;
            groups.insert(group, g);
        }
        Record::Consumer(r) => super::consumer::replay::replay(groups, r, now_ms),
        Record::GroupMetadata { group, value: None } => {
            // Deletion tombstones offsets before the group; any left over stay, as a simple group.
            if let Some(g) = groups.remove(&group) {
                if !g.offsets.is_empty() {
                    let mut simple = Group::new(&group, now_ms);
                    simple.offsets = g.offsets;
                    groups.insert(group, simple);
                }
            }
        }
    }
}

fn committed_offset(v: OffsetCommitValue) -> CommittedOffset {
    CommittedOffset {
        offset: v.offset,
        leader_epoch: (v.leader_epoch >= 0).then_some(v.leader_epoch),
        metadata: v.metadata,
        commit_timestamp_ms: v.commit_timestamp_ms,
        expire_timestamp_ms: (v.expire_timestamp_ms >= 0).then_some(v.expire_timestamp_ms),
    }
}

fn group_from_value(group_id: &str, v: GroupMetadataValue, now_ms: i64) -> Group {
    let mut g = Group::new(group_id, now_ms);
    g.state = if v.members.is_empty() {
        GroupState::Empty
    } else {
        GroupState::Stable
    };
    g.previous_state = g.state;
    g.state_timestamp_ms = (v.current_state_timestamp_ms >= 0).then_some(v.current_state_timestamp_ms);
    g.generation_id = v.generation;
    g.protocol_type = Some(v.protocol_type.clone()).filter(|t| !t.is_empty());
    g.protocol_name = v.protocol.clone();
    let protocol = v.protocol.unwrap_or_default();
    for m in v.members {
        let member = Member {
            member_id: m.member_id,
            group_instance_id: m.group_instance_id,
            client_id: m.client_id,
            client_host: m.client_host,
            // v0 records have no rebalance timeout: Kafka uses the session timeout.
            rebalance_timeout_ms: if m.rebalance_timeout_ms == -1 {
                m.session_timeout_ms
            } else {
                m.rebalance_timeout_ms
            },
            session_timeout_ms: m.session_timeout_ms,
            protocol_type: v.protocol_type.clone(),
            protocols: vec![Protocol {
                name: protocol.clone(),
                metadata: m.subscription,
            }],
            assignment: m.assignment,
            awaiting_join: None,
            awaiting_sync: None,
            is_new: false,
        };
        g.add_member(member, None);
    }
    // The record's leader wins over the first member `add_member` picked.
    g.leader_id = v.leader.or(g.leader_id);
    g
}

/// Lets go of a partition's groups (its leadership moved): every parked request and every
/// request waiting for an append is answered NOT_COORDINATOR, every timer is cancelled.
pub(crate) fn unload(state: GroupCoordinatorState) -> Vec<Action> {
    let GroupCoordinatorState { groups, mut out } = state;
    let not_coordinator = ResponseError::NotCoordinator;
    for group in groups.values() {
        for member in group.members.values() {
            if let Some(req) = member.awaiting_join {
                out.respond(
                    req,
                    Response::Join(JoinResponse::error(member.member_id.clone(), not_coordinator)),
                );
            }
            if let Some(req) = member.awaiting_sync {
                out.respond(req, Response::Sync(SyncResponse::error(not_coordinator)));
            }
        }
    }
    for write in std::mem::take(&mut out.pending_writes).into_values() {
        match write {
            PendingWrite::SyncAssignment { .. } => {} // its SyncGroup requests are parked on members
            // Its JoinGroup is parked on the member, answered above (or was answered already).
            PendingWrite::StaticReplace(_) => {}
            PendingWrite::OffsetCommit(PendingCommit { req, response, .. }) => {
                let topics = response.topics.into_iter().map(|mut t| {
                    t.partitions
                        .iter_mut()
                        .for_each(|(_, e)| *e = Some(e.unwrap_or(not_coordinator)));
                    t
                });
                out.respond(
                    req,
                    Response::OffsetCommit(OffsetCommitResponse {
                        topics: topics.collect(),
                    }),
                );
            }
            PendingWrite::Reply { req, response } => {
                super::offsets::reply_persisted(&mut out, req, response, Err(ResponseError::NotLeaderOrFollower));
            }
        }
    }
    let keys: Vec<TimerKey> = out.timers.keys().cloned().collect();
    for key in keys {
        out.cancel(key);
    }
    out.take_actions()
}
