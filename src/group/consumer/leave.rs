//! Members leaving a consumer group: by a heartbeat at epoch -1 (for good) or -2 (a static
//! member, for now), by their session expiring, or by not revoking within their rebalance
//! timeout — each fences the member and bumps the group epoch, with the records saying so. And
//! a classic JoinGroup arriving at a consumer group.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

use super::heartbeat::{consumer_group, refuse, ConsumerHeartbeatRequest, ConsumerHeartbeatResponse, Handled, Refused};
use super::records::{self, ConsumerRecord};
use super::{ConsumerGroup, MemberState, LEAVE_STATIC_EPOCH};
use crate::group::api::{Response, TimerKey};
use crate::group::coordinator::Outbox;
use crate::group::records::Record;
use crate::group::state::Group;
/// Leaving: -1 removes the member (its partitions go to the others at the next epoch); -2 keeps
/// a static member's assignment until it comes back or its session expires.
pub(super) fn leave(
    groups: &mut BTreeMap<String, Group>,
    out: &mut Outbox,
    r: &ConsumerHeartbeatRequest,
) -> Result<Handled, Refused> {
    let group = consumer_group(groups, out, &r.group_id, false)?;
    let group_id = group.group_id.clone();
    let Some(cg) = group.consumer.as_deref_mut() else {
        return refuse(
            ResponseError::GroupIdNotFound,
            format!("Group {group_id} is not a consumer group"),
        );
    };
    let member_id = match &r.instance_id {
        None => r.member_id.clone(),
        Some(instance) => match cg.static_members.get(instance) {
            None => {
                return refuse(
                    ResponseError::UnknownMemberId,
                    format!("Instance id {instance} is unknown in group {group_id}."),
                )
            }
            Some(id) if *id != r.member_id => {
                return refuse(
                    ResponseError::FencedInstanceId,
                    format!(
                        "Static member {} with instance id {instance} was fenced by member {id}.",
                        r.member_id
                    ),
                )
            }
            Some(id) => id.clone(),
        },
    };
    if !cg.members.contains_key(&member_id) {
        return refuse(
            ResponseError::UnknownMemberId,
            format!("Member {member_id} is not a member of group {group_id}."),
        );
    }
    let mut out_records = Vec::new();
    if r.member_epoch == LEAVE_STATIC_EPOCH {
        if let Some(m) = cg.members.get_mut(&member_id) {
            // The epoch it had is where its replacement resumes.
            m.previous_member_epoch = m.member_epoch;
            m.member_epoch = LEAVE_STATIC_EPOCH;
            out_records.push(records::current_assignment(&group_id, m));
        }
        out.cancel(TimerKey::ConsumerRevocation {
            group_id,
            member_id: member_id.clone(),
        });
    } else {
        out_records = fence(cg, out, &group_id, &member_id);
        mark_if_emptied(group, out.now_ms);
    }
    let response = ConsumerHeartbeatResponse {
        error: None,
        error_message: None,
        member_id: Some(member_id),
        member_epoch: r.member_epoch,
        heartbeat_interval_ms: 0,
        assignment: None,
    };
    Ok((response, out_records))
}

/// Removes a member and bumps the group epoch: its partitions go to others at the next target.
/// Returns the records saying so.
fn fence(cg: &mut ConsumerGroup, out: &mut Outbox, group_id: &str, member_id: &str) -> Vec<ConsumerRecord> {
    if cg.remove_member(member_id).is_none() {
        return Vec::new();
    }
    cg.regexes.retain_used(cg.members.values());
    cg.group_epoch += 1;
    out.cancel(TimerKey::ConsumerSession {
        group_id: group_id.to_owned(),
        member_id: member_id.to_owned(),
    });
    out.cancel(TimerKey::ConsumerRevocation {
        group_id: group_id.to_owned(),
        member_id: member_id.to_owned(),
    });
    tracing::info!(
        group = group_id,
        member = member_id,
        epoch = cg.group_epoch,
        "consumer group member removed"
    );
    let mut out = records::member_tombstones(group_id, member_id).to_vec();
    out.push(ConsumerRecord::GroupMetadata {
        group: group_id.to_owned(),
        epoch: Some(cg.group_epoch),
    });
    out
}

/// Appends the records of a fence that no request waits for.
fn persist_fence(out: &mut Outbox, records: Vec<ConsumerRecord>) {
    if !records.is_empty() {
        out.persist(records.into_iter().map(Record::Consumer).collect(), None);
    }
}

/// The session of a member expired: it is fenced.
pub(crate) fn session_expired(groups: &mut BTreeMap<String, Group>, out: &mut Outbox, group_id: &str, member_id: &str) {
    let Some(group) = groups.get_mut(group_id) else { return };
    if let Some(cg) = group.consumer.as_deref_mut() {
        let records = fence(cg, out, group_id, member_id);
        persist_fence(out, records);
        mark_if_emptied(group, out.now_ms);
    }
}

/// When the last member is gone, the group's offsets start to age from now (Kafka's
/// retention of an empty group counts from when it became empty).
fn mark_if_emptied(group: &mut Group, now_ms: i64) {
    if group.consumer.as_ref().is_some_and(|c| c.members.is_empty()) {
        group.state_timestamp_ms = Some(now_ms);
    }
}

/// A member did not revoke its partitions within its rebalance timeout: it is fenced.
pub(crate) fn revocation_expired(
    groups: &mut BTreeMap<String, Group>,
    out: &mut Outbox,
    group_id: &str,
    member_id: &str,
) {
    let Some(group) = groups.get_mut(group_id) else { return };
    let Some(cg) = group.consumer.as_deref_mut() else {
        return;
    };
    if cg
        .members
        .get(member_id)
        .is_some_and(|m| m.state == MemberState::UnrevokedPartitions)
    {
        let records = fence(cg, out, group_id, member_id);
        persist_fence(out, records);
        mark_if_emptied(group, out.now_ms);
    }
}

/// A classic JoinGroup for a consumer group: an empty one becomes classic again (its offsets
/// stay); a non-empty one answers INCONSISTENT_GROUP_PROTOCOL, as Kafka does for protocols the
/// group cannot serve (mixed groups are not served yet). True if answered here.
pub(crate) fn refuse_classic_join(
    groups: &mut BTreeMap<String, Group>,
    out: &mut Outbox,
    r: &crate::group::api::JoinRequest,
) -> bool {
    let Some(group) = groups.get_mut(&r.group_id) else {
        return false;
    };
    match group.consumer.as_deref() {
        None => false,
        Some(cg) if cg.members.is_empty() => {
            let tombstones = records::group_tombstones(&r.group_id, cg);
            group.consumer = None;
            persist_fence(out, tombstones);
            false
        }
        Some(_) => {
            let response = crate::group::api::JoinResponse::error("", ResponseError::InconsistentGroupProtocol);
            out.respond(r.req, Response::Join(response));
            true
        }
    }
}
