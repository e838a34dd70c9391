//! ConsumerGroupHeartbeat (KIP-848), as Kafka 4's `GroupMetadataManager.consumerGroupHeartbeat`
//! serves it: join (member epoch 0), heartbeat (the member's epoch), leave (-1), static leave
//! (-2); each heartbeat may bump the group epoch (membership, subscription or subscribed topics
//! changed), recompute the target assignment, and reconciles the member one step. Also the
//! expiries of member sessions (`group.consumer.session.timeout.ms`) and of revocations (the
//! member's rebalance timeout): both fence the member.
//!
//! Answered once the records of what changed are committed in `__consumer_offsets`, as Kafka
//! does. Leaving and expiries are in `leave`, the target assignment in `target`.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

use super::reconcile::{is_subset, reconcile};
use super::records::{self, ConsumerRecord};
use super::subscription::subscription_metadata;
use super::target;
use super::{Assignment, ConsumerGroup, ConsumerMember, MemberState, Topics, LEAVE_EPOCH, LEAVE_STATIC_EPOCH};
use crate::group::api::{RequestId, Response, TimerKey};
use crate::group::coordinator::{Outbox, PendingWrite, TimerPayload};
use crate::group::records::{Record, MAX_STRING_BYTES};
use crate::group::state::{Group, GroupState};

/// From v1 (KIP-1082) the client makes up its member id; before, the coordinator did.
const CLIENT_MEMBER_ID_FROM_VERSION: i16 = 1;

/// ConsumerGroupHeartbeat, all versions.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerHeartbeatRequest {
    pub(crate) req: RequestId,
    pub(crate) api_version: i16,
    pub(crate) group_id: String,
    pub(crate) member_id: String,
    pub(crate) member_epoch: i32,
    pub(crate) instance_id: Option<String>,
    pub(crate) rack_id: Option<String>,
    /// -1: unchanged.
    pub(crate) rebalance_timeout_ms: i32,
    /// None: unchanged.
    pub(crate) subscribed_topic_names: Option<Vec<String>>,
    pub(crate) subscribed_topic_regex: Option<String>,
    pub(crate) server_assignor: Option<String>,
    /// What the member owns; None: unchanged since its last heartbeat.
    pub(crate) owned: Option<Assignment>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    /// The cluster's topics when the request came in.
    pub(crate) topics: Topics,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConsumerHeartbeatResponse {
    pub(crate) error: Option<ResponseError>,
    pub(crate) error_message: Option<String>,
    pub(crate) member_id: Option<String>,
    pub(crate) member_epoch: i32,
    pub(crate) heartbeat_interval_ms: i32,
    /// Set when the member must (re)learn its assignment.
    pub(crate) assignment: Option<Assignment>,
}

/// A failed heartbeat: Kafka's error code and message.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Refused(pub(super) ResponseError, pub(super) String);

pub(super) fn refuse<T>(error: ResponseError, message: impl Into<String>) -> Result<T, Refused> {
    Err(Refused(error, message.into()))
}

pub(crate) fn heartbeat(groups: &mut BTreeMap<String, Group>, out: &mut Outbox, r: ConsumerHeartbeatRequest) {
    let result = validate(&r, out).and_then(|()| {
        if r.member_epoch == LEAVE_EPOCH || r.member_epoch == LEAVE_STATIC_EPOCH {
            super::leave::leave(groups, out, &r)
        } else {
            join_or_heartbeat(groups, out, &r)
        }
    });
    if result.is_err() {
        forget_unborn_group(groups, &r.group_id);
    }
    let (response, records) = result.unwrap_or_else(|Refused(error, message)| {
        let response = ConsumerHeartbeatResponse {
            error: Some(error),
            error_message: Some(message),
            member_id: None,
            member_epoch: 0,
            heartbeat_interval_ms: 0,
            assignment: None,
        };
        (response, Vec::new())
    });
    let response = Response::ConsumerHeartbeat(response);
    if records.is_empty() {
        out.respond(r.req, response);
    } else {
        // Answered once the new state is in the log, as Kafka does.
        let records = records.into_iter().map(Record::Consumer).collect();
        out.persist(records, Some(PendingWrite::Reply { req: r.req, response }));
    }
}

/// A refused join must not leave behind the consumer group it made (nothing was written): a
/// group that never had a member (epoch 0) goes back to what it was, or away.
fn forget_unborn_group(groups: &mut BTreeMap<String, Group>, group_id: &str) {
    let Some(group) = groups.get_mut(group_id) else { return };
    if group.consumer.as_ref().is_some_and(|c| c.group_epoch == 0) {
        group.consumer = None;
        let unused = group.is(GroupState::Empty)
            && group.members.is_empty()
            && group.offsets.is_empty()
            && group.pending_offset_commits.is_empty()
            && group.pending_txn_offsets.is_empty()
            && group.protocol_type.is_none();
        if unused {
            groups.remove(group_id);
        }
    }
}

/// A handled heartbeat: the answer and the records of what changed.
pub(super) type Handled = (ConsumerHeartbeatResponse, Vec<ConsumerRecord>);

/// Kafka's `throwIfConsumerGroupHeartbeatRequestIsInvalid`.
fn validate(r: &ConsumerHeartbeatRequest, out: &Outbox) -> Result<(), Refused> {
    let invalid = |m: &str| refuse(ResponseError::InvalidRequest, m);
    if !out.config.consumer.enabled {
        return refuse(
            ResponseError::UnsupportedVersion,
            "the consumer rebalance protocol is not enabled (group.coordinator.rebalance.protocols)",
        );
    }
    if r.group_id.is_empty() {
        return invalid("GroupId can't be empty.");
    }
    // Ids are keys of records whose encoding caps strings at 32767 bytes.
    let ids = [
        Some(&r.group_id),
        Some(&r.member_id),
        r.instance_id.as_ref(),
        r.rack_id.as_ref(),
    ];
    let names = r.subscribed_topic_names.iter().flatten();
    if ids
        .into_iter()
        .flatten()
        .chain(names)
        .any(|s| s.len() > MAX_STRING_BYTES)
    {
        return invalid("An id or topic name is too long.");
    }
    if r.instance_id.as_deref() == Some("") {
        return invalid("InstanceId can't be empty.");
    }
    if r.rack_id.as_deref() == Some("") {
        return invalid("RackId can't be empty.");
    }
    if r.member_id.is_empty() && (r.api_version >= CLIENT_MEMBER_ID_FROM_VERSION || r.member_epoch != 0) {
        return invalid("MemberId can't be empty.");
    }
    match r.member_epoch {
        0 => {
            if r.rebalance_timeout_ms == -1 {
                return invalid("RebalanceTimeoutMs must be provided in first request.");
            }
            if r.owned.as_ref().is_none_or(|o| !o.is_empty()) {
                return invalid("TopicPartitions must be empty when (re-)joining.");
            }
            if r.subscribed_topic_names.is_none() && r.subscribed_topic_regex.is_none() {
                return invalid("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.");
            }
        }
        LEAVE_STATIC_EPOCH if r.instance_id.is_none() => {
            return invalid("InstanceId can't be null.");
        }
        e if e < LEAVE_STATIC_EPOCH => return invalid("MemberEpoch is invalid."),
        _ => {}
    }
    if let Some(name) = r.server_assignor.as_deref() {
        if !out.config.consumer.assignors.iter().any(|a| a == name) {
            return refuse(
                ResponseError::UnsupportedAssignor,
                format!("ServerAssignor {name} is not supported."),
            );
        }
    }
    Ok(())
}

/// The consumer group `group_id`, created (or converted from an empty classic group) when
/// `create`; Kafka's `getOrMaybeCreateConsumerGroup` without online upgrade.
pub(super) fn consumer_group<'a>(
    groups: &'a mut BTreeMap<String, Group>,
    out: &Outbox,
    group_id: &str,
    create: bool,
) -> Result<&'a mut Group, Refused> {
    let group = match groups.entry(group_id.to_owned()) {
        std::collections::btree_map::Entry::Vacant(_) if !create => {
            return refuse(
                ResponseError::GroupIdNotFound,
                format!("Consumer group {group_id} not found."),
            )
        }
        std::collections::btree_map::Entry::Vacant(e) => e.insert(Group::new(group_id, out.now_ms)),
        std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
    };
    if group.consumer.is_none() {
        let empty_classic = group.is(GroupState::Empty) && group.members.is_empty();
        if !(create && empty_classic) {
            return refuse(
                ResponseError::GroupIdNotFound,
                format!("Group {group_id} is not a consumer group"),
            );
        }
        // An empty classic group becomes a consumer group; its offsets stay.
        group.consumer = Some(Box::default());
    }
    Ok(group)
}

fn join_or_heartbeat(
    groups: &mut BTreeMap<String, Group>,
    out: &mut Outbox,
    r: &ConsumerHeartbeatRequest,
) -> Result<Handled, Refused> {
    let joining = r.member_epoch == 0;
    let group = consumer_group(groups, out, &r.group_id, joining)?;
    let group_id = group.group_id.clone();
    let max_size = out.config.consumer.max_size;
    let new_id = if r.member_id.is_empty() {
        out.new_uuid()
    } else {
        r.member_id.clone()
    };
    let Some(cg) = group.consumer.as_deref_mut() else {
        return refuse(
            ResponseError::GroupIdNotFound,
            format!("Group {group_id} is not a consumer group"),
        );
    };
    let (before, mut member) = resolve_member(cg, r, new_id)?;
    // A static member coming back under a new id replaces its released self.
    let replaced = match (&r.instance_id, &before) {
        (Some(instance), None) => cg.static_members.get(instance).cloned(),
        _ => None,
    };
    if before.is_none() && replaced.is_none() && cg.members.len() >= max_size {
        return refuse(
            ResponseError::GroupMaxSizeReached,
            format!("The consumer group has reached its maximum capacity of {max_size} members."),
        );
    }
    let changed_subscription = update_member(cg, &mut member, r)?;
    let mut bump = before.is_none() || changed_subscription;
    let mut out_records = Vec::new();
    if let Some(old) = replaced.and_then(|old_id| cg.remove_member(&old_id)) {
        out_records.extend(records::member_tombstones(&group_id, &old.member_id));
        // It takes over the released member's assignment and target: no new epoch unless its
        // subscription differs.
        bump = subscription(&old) != subscription(&member);
        member.assigned = old.assigned;
        member.revoking = old.revoking;
        member.state = old.state;
        member.member_epoch = old.previous_member_epoch.max(0);
        member.previous_member_epoch = member.member_epoch;
        if let Some(target) = cg.targets.remove(&old.member_id) {
            cg.targets.insert(member.member_id.clone(), target);
        }
        for key in [
            TimerKey::ConsumerSession {
                group_id: group_id.clone(),
                member_id: old.member_id.clone(),
            },
            TimerKey::ConsumerRevocation {
                group_id: group_id.clone(),
                member_id: old.member_id.clone(),
            },
        ] {
            out.cancel(key);
        }
    }
    if let Some(instance) = &member.instance_id {
        cg.static_members.insert(instance.clone(), member.member_id.clone());
    }
    let member_id = member.member_id.clone();
    let metadata_record = records::member_metadata(&group_id, &member);
    if before
        .as_ref()
        .is_none_or(|b| records::member_metadata(&group_id, b) != metadata_record)
    {
        out_records.push(metadata_record);
    }
    cg.members.insert(member_id.clone(), member);
    let metadata = subscription_metadata(cg.members.values(), &cg.regexes, &r.topics);
    if metadata != cg.subscription_metadata {
        cg.subscription_metadata = metadata;
        out_records.push(records::partition_metadata(&group_id, cg));
        bump = true;
    }
    if bump {
        cg.group_epoch += 1;
        out_records.push(ConsumerRecord::GroupMetadata {
            group: group_id.clone(),
            epoch: Some(cg.group_epoch),
        });
        tracing::info!(group = %group_id, epoch = cg.group_epoch, "bumped consumer group epoch");
    }
    if cg.group_epoch > cg.assignment_epoch {
        let previous = target::compute_target(cg, &out.config.consumer.assignors);
        out_records.extend(target::target_records(&group_id, cg, &previous));
    }
    let owners = cg.owned_by_others(&member_id);
    let target = cg.targets.get(&member_id).cloned().unwrap_or_default();
    let Some(member) = cg.members.get_mut(&member_id) else {
        return refuse(ResponseError::UnknownServerError, "member vanished");
    };
    let was_revoking = member.state == MemberState::UnrevokedPartitions;
    reconcile(member, cg.assignment_epoch, &target, &owners, r.owned.as_ref());
    let revoking = member.state == MemberState::UnrevokedPartitions;
    let revocation_key = TimerKey::ConsumerRevocation {
        group_id: group_id.clone(),
        member_id: member_id.clone(),
    };
    if revoking && !was_revoking {
        out.schedule(
            revocation_key,
            i64::from(member.rebalance_timeout_ms),
            TimerPayload::Heartbeat,
        );
    } else if !revoking {
        out.cancel(revocation_key);
    }
    let session_ms = i64::from(out.config.consumer.session_timeout_ms);
    out.schedule(
        TimerKey::ConsumerSession {
            group_id: group_id.clone(),
            member_id: member_id.clone(),
        },
        session_ms,
        TimerPayload::Heartbeat,
    );
    let full_request =
        joining || (r.rebalance_timeout_ms != -1 && r.subscribed_topic_names.is_some() && r.owned.is_some());
    let changed = before.as_ref().is_none_or(|b| b.assigned != member.assigned);
    let current = records::current_assignment(&group_id, member);
    if before
        .as_ref()
        .is_none_or(|b| records::current_assignment(&group_id, b) != current)
    {
        out_records.push(current);
    }
    let response = ConsumerHeartbeatResponse {
        error: None,
        error_message: None,
        member_id: Some(member_id),
        member_epoch: member.member_epoch,
        heartbeat_interval_ms: out.config.consumer.heartbeat_interval_ms,
        assignment: (full_request || changed).then(|| member.assigned.clone()),
    };
    Ok((response, out_records))
}

/// The member the request is from, as it was (None if new) and as it will be updated:
/// Kafka's `getOrMaybeSubscribe{Dynamic,Static}ConsumerGroupMember`.
fn resolve_member(
    cg: &ConsumerGroup,
    r: &ConsumerHeartbeatRequest,
    new_id: String,
) -> Result<(Option<ConsumerMember>, ConsumerMember), Refused> {
    let existing = match &r.instance_id {
        None => cg.members.get(&new_id),
        Some(instance) => {
            let current = cg.static_members.get(instance).and_then(|id| cg.members.get(id));
            match current {
                Some(m) if r.member_epoch == 0 && m.member_epoch != LEAVE_STATIC_EPOCH => {
                    return refuse(
                        ResponseError::UnreleasedInstanceId,
                        format!(
                            "Static member {} with instance id {instance} is not released yet.",
                            m.member_id
                        ),
                    )
                }
                // Released: the new member replaces it (the caller moves its assignment).
                Some(_) if r.member_epoch == 0 => None,
                Some(m) if m.member_id != new_id => {
                    return refuse(
                        ResponseError::FencedInstanceId,
                        format!(
                            "Static member {new_id} with instance id {instance} was fenced by member {}.",
                            m.member_id
                        ),
                    )
                }
                other => other,
            }
        }
    };
    match existing {
        Some(m) => {
            if r.member_epoch != 0 {
                check_epoch(m, r.member_epoch, r.owned.as_ref())?;
            }
            Ok((Some(m.clone()), m.clone()))
        }
        None if r.member_epoch == 0 => Ok((None, ConsumerMember::new(new_id))),
        None => refuse(
            ResponseError::UnknownMemberId,
            format!("Member {new_id} is not a member of group {}.", r.group_id),
        ),
    }
}

/// Kafka's `throwIfConsumerGroupMemberEpochIsInvalid`: an epoch ahead is fenced; one behind
/// is accepted only as the previous epoch with a subset of the assignment (a lost response).
fn check_epoch(member: &ConsumerMember, received: i32, owned: Option<&Assignment>) -> Result<(), Refused> {
    let fenced = |which: &str| {
        refuse(
            ResponseError::FencedMemberEpoch,
            format!(
                "The consumer group member has a {which} member epoch ({received}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                member.member_epoch
            ),
        )
    };
    if received > member.member_epoch {
        return fenced("greater");
    }
    if received < member.member_epoch {
        let subset = owned.is_none_or(|o| is_subset(o, &member.assigned));
        if received != member.previous_member_epoch || !subset {
            return fenced("smaller");
        }
    }
    Ok(())
}

/// Applies the request's fields to `member`; true if its subscription changed (a new group
/// epoch). Compiles a new regex, refusing an invalid one.
fn update_member(
    cg: &mut ConsumerGroup,
    member: &mut ConsumerMember,
    r: &ConsumerHeartbeatRequest,
) -> Result<bool, Refused> {
    if let Some(regex) = r.subscribed_topic_regex.as_deref().filter(|s| !s.is_empty()) {
        if let Err(e) = cg.regexes.compile(regex) {
            return refuse(
                ResponseError::InvalidRegularExpression,
                format!("SubscribedTopicRegex `{regex}` is not a valid regular expression: {e}."),
            );
        }
    }
    let before = member.clone();
    if r.instance_id.is_some() {
        member.instance_id = r.instance_id.clone();
    }
    if r.rack_id.is_some() {
        member.rack_id = r.rack_id.clone();
    }
    if r.rebalance_timeout_ms != -1 {
        member.rebalance_timeout_ms = r.rebalance_timeout_ms;
    }
    if r.server_assignor.is_some() {
        member.server_assignor = r.server_assignor.clone();
    }
    if let Some(names) = &r.subscribed_topic_names {
        let mut names = names.clone();
        names.sort_unstable();
        names.dedup();
        member.subscribed_topic_names = names;
    }
    if let Some(regex) = &r.subscribed_topic_regex {
        member.subscribed_topic_regex = (!regex.is_empty()).then(|| regex.clone());
    }
    member.client_id = r.client_id.clone();
    member.client_host = r.client_host.clone();
    Ok(subscription(&before) != subscription(member))
}

/// What a member subscribes to: a change of any of these bumps the group epoch.
fn subscription(m: &ConsumerMember) -> (&[String], Option<&str>, Option<&str>, Option<&str>) {
    (
        &m.subscribed_topic_names,
        m.subscribed_topic_regex.as_deref(),
        m.server_assignor.as_deref(),
        m.rack_id.as_deref(),
    )
}
