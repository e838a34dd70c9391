//! The classic rebalance protocol: JoinGroup, SyncGroup, Heartbeat, LeaveGroup and the timers
//! around them (session, join phase, sync deadline), after Kafka's `GroupMetadataManager`
//! (`classicGroupJoin`, `completeClassicGroupJoin`, `prepareRebalance`, …).
//!
//! Invariant kept here: a member removed from a group has no parked request left (its parked
//! JoinGroup/SyncGroup is answered UNKNOWN_MEMBER_ID) and no session timer.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::api::{
    HeartbeatRequest, HeartbeatResponse, JoinRequest, JoinResponse, LeaveMemberResponse, LeaveRequest, LeaveResponse,
    Response, SyncRequest, SyncResponse, TimerKey,
};
use super::coordinator::{Outbox, PendingWrite, StaticReplace, TimerPayload};
use super::records::MAX_STRING_BYTES;
use super::replay::group_metadata_record;
use super::state::{Group, GroupState, Member};

/// Room left in a member id for the "-" + UUID Kafka appends to the client or instance id.
const MEMBER_ID_SUFFIX_BYTES: usize = 37;

pub(crate) fn join(groups: &mut BTreeMap<String, Group>, out: &mut Outbox, mut r: JoinRequest) {
    if r.group_id.is_empty() {
        return join_error(out, r.req, &r.member_id, ResponseError::InvalidGroupId);
    }
    if join_strings_too_long(&r) {
        return join_error(out, r.req, &r.member_id, ResponseError::InvalidRequest);
    }
    let cfg = &out.config;
    if r.session_timeout_ms < cfg.min_session_timeout_ms || r.session_timeout_ms > cfg.max_session_timeout_ms {
        return join_error(out, r.req, &r.member_id, ResponseError::InvalidSessionTimeout);
    }
    if let Some(reason) = &r.reason {
        // KIP-800: the client says why it (re)joins; worth a line when debugging rebalances.
        tracing::debug!(group = %r.group_id, member = %r.member_id, reason, "join");
    }
    if r.api_version == 0 {
        r.rebalance_timeout_ms = r.session_timeout_ms;
    }
    let is_new_member = r.member_id.is_empty();
    // A group is created by the join of a member without id; a member with an id needs it.
    let group = match groups.entry(r.group_id.clone()) {
        Entry::Occupied(e) => e.into_mut(),
        Entry::Vacant(e) if is_new_member => e.insert(Group::new(&r.group_id, out.now_ms)),
        Entry::Vacant(_) => return join_error(out, r.req, &r.member_id, ResponseError::UnknownMemberId),
    };
    if !accept_joining_member(group, &r.member_id, out.config.max_size) {
        remove_member(group, out, &r.member_id);
        return join_error(out, r.req, "", ResponseError::GroupMaxSizeReached);
    }
    if is_new_member {
        join_new_member(group, out, r)
    } else {
        join_existing_member(group, out, r)
    }
}

fn join_strings_too_long(r: &JoinRequest) -> bool {
    let id_prefix_max = MAX_STRING_BYTES - MEMBER_ID_SUFFIX_BYTES;
    r.group_id.len() > MAX_STRING_BYTES
        || r.member_id.len() > MAX_STRING_BYTES
        || r.client_id.len() > id_prefix_max
        || r.group_instance_id.as_ref().is_some_and(|i| i.len() > id_prefix_max)
        || r.client_host.len() > MAX_STRING_BYTES
        || r.protocol_type.len() > MAX_STRING_BYTES
        || r.protocols.iter().any(|p| p.name.len() > MAX_STRING_BYTES)
}

/// Kafka's `acceptJoiningMember` (`group.max.size`).
fn accept_joining_member(group: &Group, member_id: &str, max_size: usize) -> bool {
    match group.state {
        GroupState::Empty | GroupState::Dead => true,
        // Counting the members already rejoined lets the last rejoiners be turned away when the
        // group is over the limit (e.g. after the limit was lowered).
        GroupState::PreparingRebalance => {
            group.members.get(member_id).is_some_and(|m| m.awaiting_join.is_some())
                || group.num_awaiting_join() < max_size
        }
        GroupState::CompletingRebalance | GroupState::Stable => {
            group.members.contains_key(member_id) || group.members.len() < max_size
        }
    }
}

fn join_new_member(group: &mut Group, out: &mut Outbox, r: JoinRequest) {
    if !group.supports_protocols(&r.protocol_type, &r.protocols) {
        return join_error(out, r.req, "", ResponseError::InconsistentGroupProtocol);
    }
    let prefix = r.group_instance_id.as_deref().unwrap_or(&r.client_id).to_owned();
    let new_member_id = out.new_member_id(&prefix, group);
    match r.group_instance_id.clone() {
        Some(instance_id) => match group.static_members.get(&instance_id).cloned() {
            Some(old_member_id) => update_static_member(group, out, r, instance_id, old_member_id, new_member_id),
            None => add_member_and_rebalance(group, out, r, new_member_id),
        },
        None if r.api_version >= 4 => {
            // KIP-394: hand out the id, remember it until it rejoins or its session expires.
            group.pending_members.insert(new_member_id.clone());
            out.schedule_heartbeat(&group.group_id, &new_member_id, i64::from(r.session_timeout_ms));
            join_error(out, r.req, &new_member_id, ResponseError::MemberIdRequired);
        }
        None => add_member_and_rebalance(group, out, r, new_member_id),
    }
}

fn join_existing_member(group: &mut Group, out: &mut Outbox, r: JoinRequest) {
    let member_id = r.member_id.clone();
    if !group.supports_protocols(&r.protocol_type, &r.protocols) {
        return join_error(out, r.req, &member_id, ResponseError::InconsistentGroupProtocol);
    }
    if group.pending_members.contains(&member_id) {
        if r.group_instance_id.is_some() {
            // A pending member is always dynamic; Kafka fails such a request the same way.
            return join_error(out, r.req, &member_id, ResponseError::UnknownServerError);
        }
        return add_member_and_rebalance(group, out, r, member_id);
    }
    if let Err(e) = group.validate_member(&member_id, r.group_instance_id.as_deref()) {
        return join_error(out, r.req, &member_id, e);
    }
    let matches = group.members.get(&member_id).is_some_and(|m| m.matches(&r.protocols));
    match group.state {
        GroupState::PreparingRebalance => update_member_and_rebalance(group, out, r, "member rejoined"),
        GroupState::CompletingRebalance if matches => {
            // Same metadata (it probably missed the JoinGroup response): the current generation.
            let with_members = group.is_leader(&member_id);
            answer_current_generation(group, out, r.req, &member_id, with_members);
        }
        GroupState::CompletingRebalance => update_member_and_rebalance(group, out, r, "member metadata changed"),
        // The leader rejoining forces a rebalance: that is how it reacts to topic metadata changes.
        GroupState::Stable if group.is_leader(&member_id) => {
            update_member_and_rebalance(group, out, r, "leader rejoined")
        }
        GroupState::Stable if !matches => update_member_and_rebalance(group, out, r, "member metadata changed"),
        GroupState::Stable => answer_current_generation(group, out, r.req, &member_id, false),
        GroupState::Empty | GroupState::Dead => join_error(out, r.req, &member_id, ResponseError::UnknownMemberId),
    }
}

/// Answers a rejoin without a rebalance with the current generation (and restarts its session).
fn answer_current_generation(group: &Group, out: &mut Outbox, req: u64, member_id: &str, with_members: bool) {
    let response = generation_response(group, member_id, with_members);
    if let Some(member) = group.members.get(member_id) {
        out.reschedule_heartbeat(&group.group_id, member);
    }
    out.respond(req, Response::Join(response));
}

fn generation_response(group: &Group, member_id: &str, with_members: bool) -> JoinResponse {
    JoinResponse {
        error: None,
        generation_id: group.generation_id,
        protocol_type: group.protocol_type.clone(),
        protocol_name: group.protocol_name.clone(),
        leader: group.leader_or_empty(),
        skip_assignment: false,
        member_id: member_id.to_owned(),
        members: if with_members { group.join_members() } else { Vec::new() },
    }
}

fn add_member_and_rebalance(group: &mut Group, out: &mut Outbox, r: JoinRequest, member_id: String) {
    let member = Member {
        member_id: member_id.clone(),
        group_instance_id: r.group_instance_id,
        client_id: r.client_id,
        client_host: r.client_host,
        rebalance_timeout_ms: r.rebalance_timeout_ms,
        session_timeout_ms: r.session_timeout_ms,
        protocol_type: r.protocol_type,
        protocols: r.protocols,
        assignment: Bytes::new(),
        awaiting_join: None,
        awaiting_sync: None,
        is_new: true,
    };
    if group.is(GroupState::PreparingRebalance) && group.previous_state == GroupState::Empty {
        group.new_member_added = true; // extends the initial rebalance delay
    }
    group.add_member(member, Some(r.req));
    // A new member cannot heartbeat while its JoinGroup is parked; bound the wait instead.
    let timeout = i64::from(out.config.new_member_join_timeout_ms);
    out.schedule_heartbeat(&group.group_id, &member_id, timeout);
    maybe_prepare_rebalance_or_complete_join(group, out, "new member joined");
}

fn update_member_and_rebalance(group: &mut Group, out: &mut Outbox, r: JoinRequest, reason: &str) {
    let Some(member) = group.members.get_mut(&r.member_id) else {
        return join_error(out, r.req, &r.member_id, ResponseError::UnknownMemberId);
    };
    member.protocols = r.protocols;
    member.rebalance_timeout_ms = r.rebalance_timeout_ms;
    member.session_timeout_ms = r.session_timeout_ms;
    park_join(member, out, r.req);
    maybe_prepare_rebalance_or_complete_join(group, out, reason);
}

/// Parks a JoinGroup. A request it replaces (a client retry) is answered rather than leaked.
fn park_join(member: &mut Member, out: &mut Outbox, req: u64) {
    if let Some(old) = member.awaiting_join.replace(req).filter(|old| *old != req) {
        join_error(out, old, &member.member_id, ResponseError::RebalanceInProgress);
    }
}

/// KIP-345: a known group.instance.id rejoins with a new member id. In a Stable group whose
/// protocol would not change, it takes over the old member's place and assignment without a
/// rebalance (once the new member id is in the log); the old id is fenced from now on.
fn update_static_member(
    group: &mut Group,
    out: &mut Outbox,
    r: JoinRequest,
    instance_id: String,
    old_member_id: String,
    new_member_id: String,
) {
    let leader_before = group.leader_or_empty();
    let (old_join, old_sync) = group.replace_static_member(&instance_id, &old_member_id, &new_member_id);
    if let Some(req) = old_join {
        join_error(out, req, &old_member_id, ResponseError::FencedInstanceId);
    }
    if let Some(req) = old_sync {
        out.respond(
            req,
            Response::Sync(SyncResponse::error(ResponseError::FencedInstanceId)),
        );
    }
    out.cancel_heartbeat(&group.group_id, &old_member_id);
    let Some(member) = group.members.get_mut(&new_member_id) else {
        return join_error(out, r.req, "", ResponseError::UnknownMemberId);
    };
    out.reschedule_heartbeat(&group.group_id, member);
    let replace = StaticReplace {
        group_id: group.group_id.clone(),
        req: r.req,
        instance_id,
        old_member_id,
        new_member_id,
        old_protocols: std::mem::replace(&mut member.protocols, r.protocols),
        old_rebalance_timeout_ms: std::mem::replace(&mut member.rebalance_timeout_ms, r.rebalance_timeout_ms),
        old_session_timeout_ms: std::mem::replace(&mut member.session_timeout_ms, r.session_timeout_ms),
        leader_before,
        supports_skip_assignment: r.api_version >= 9,
    };
    park_join(member, out, r.req);
    match group.state {
        GroupState::Stable if group.select_protocol() == group.protocol_name => {
            let record = group_metadata_record(group, |m| m.assignment.clone());
            out.persist(vec![record], Some(PendingWrite::StaticReplace(replace)));
        }
        GroupState::Stable => maybe_prepare_rebalance_or_complete_join(group, out, "static member changed protocols"),
        // The leader may already be assigning for the old member id: start over.
        GroupState::CompletingRebalance => prepare_rebalance(group, out, "static member rejoined"),
        GroupState::PreparingRebalance => maybe_complete_join_phase(group, out),
        GroupState::Empty | GroupState::Dead => {}
    }
}

/// The GroupMetadata record with a replaced static member is in the log (or failed).
pub(crate) fn static_replace_persisted(
    groups: &mut BTreeMap<String, Group>,
    out: &mut Outbox,
    s: StaticReplace,
    result: Result<(), ResponseError>,
) {
    let Some(group) = groups.get_mut(&s.group_id) else {
        return;
    };
    let still_parked = group
        .members
        .get(&s.new_member_id)
        .is_some_and(|m| m.awaiting_join == Some(s.req));
    if let Err(e) = result {
        let error = append_error_to_response_error(e);
        tracing::warn!(group = %s.group_id, instance = %s.instance_id, %error, "static member replacement not persisted; reverting");
        if still_parked {
            if let Some(m) = group.members.get_mut(&s.new_member_id) {
                m.awaiting_join = None;
            }
            let mut response = generation_response(group, "", false);
            response.error = Some(error);
            response.leader = s.leader_before.clone();
            out.respond(s.req, Response::Join(response));
        }
        if group.static_members.get(&s.instance_id) == Some(&s.new_member_id) {
            if let Some(m) = group.members.get_mut(&s.new_member_id) {
                m.protocols = s.old_protocols;
                m.rebalance_timeout_ms = s.old_rebalance_timeout_ms;
                m.session_timeout_ms = s.old_session_timeout_ms;
            }
            let (join, sync) = group.replace_static_member(&s.instance_id, &s.new_member_id, &s.old_member_id);
            if let Some(req) = join {
                join_error(out, req, &s.new_member_id, ResponseError::FencedInstanceId);
            }
            if let Some(req) = sync {
                out.respond(
                    req,
                    Response::Sync(SyncResponse::error(ResponseError::FencedInstanceId)),
                );
            }
            out.cancel_heartbeat(&group.group_id, &s.new_member_id);
            if let Some(m) = group.members.get(&s.old_member_id) {
                out.reschedule_heartbeat(&group.group_id, m);
            }
        }
        return;
    }
    if !still_parked {
        return; // answered meanwhile (a rebalance started, or it was fenced)
    }
    let response = if s.supports_skip_assignment {
        // KIP-814: a static leader learns it leads but must not run the assignor again.
        let is_leader = group.is_leader(&s.new_member_id);
        let mut response = generation_response(group, &s.new_member_id, is_leader);
        response.skip_assignment = is_leader;
        response
    } else {
        // Older clients: report the previous leader id, so a returning leader does not assign.
        let mut response = generation_response(group, &s.new_member_id, false);
        response.leader = s.leader_before;
        response
    };
    if let Some(m) = group.members.get_mut(&s.new_member_id) {
        m.awaiting_join = None;
    }
    out.respond(s.req, Response::Join(response));
}

fn maybe_prepare_rebalance_or_complete_join(group: &mut Group, out: &mut Outbox, reason: &str) {
    if group.can_rebalance() {
        prepare_rebalance(group, out, reason)
    } else {
        maybe_complete_join_phase(group, out)
    }
}

/// Completes the join phase early when every member is in — never during the initial,
/// delayed rebalance of an empty group.
fn maybe_complete_join_phase(group: &mut Group, out: &mut Outbox) {
    if group.is(GroupState::PreparingRebalance)
        && group.previous_state != GroupState::Empty
        && group.has_all_members_joined()
    {
        complete_join(group, out);
    }
}

pub(crate) fn prepare_rebalance(group: &mut Group, out: &mut Outbox, reason: &str) {
    if group.is(GroupState::CompletingRebalance) {
        reset_and_propagate_assignment_error(group, out, ResponseError::RebalanceInProgress);
    }
    remove_sync_expiration(group, out);
    let initial = group.is(GroupState::Empty);
    if initial {
        let delay_ms = out.config.initial_rebalance_delay_ms;
        let remaining_ms = (group.rebalance_timeout_ms() - delay_ms).max(0);
        out.schedule(
            join_key(group),
            i64::from(delay_ms),
            TimerPayload::InitialJoin { delay_ms, remaining_ms },
        );
    }
    group.transition_to(GroupState::PreparingRebalance, out.now_ms);
    tracing::info!(group = %group.group_id, generation = group.generation_id, reason, "preparing to rebalance");
    if !initial {
        if group.has_all_members_joined() {
            complete_join(group, out);
        } else {
            let timeout = i64::from(group.rebalance_timeout_ms());
            out.schedule(join_key(group), timeout, TimerPayload::Join);
        }
    }
}

/// Ends the join phase: drops dynamic members that did not rejoin, starts the next generation
/// and answers every parked JoinGroup (the leader gets all members' metadata).
fn complete_join(group: &mut Group, out: &mut Outbox) {
    out.cancel(join_key(group));
    let not_rejoined: Vec<String> = group
        .members
        .values()
        .filter(|m| m.awaiting_join.is_none() && m.group_instance_id.is_none())
        .map(|m| m.member_id.clone())
        .collect();
    for member_id in &not_rejoined {
        remove_member(group, out, member_id);
    }
    if !not_rejoined.is_empty() {
        tracing::info!(group = %group.group_id, members = ?not_rejoined, "removed members that did not rejoin");
    }
    if group.is(GroupState::Dead) {
        return;
    }
    if !group.maybe_elect_new_joined_leader() && !group.members.is_empty() {
        // Only static members that did not rejoin are left: wait another rebalance timeout,
        // until their sessions expire.
        tracing::error!(group = %group.group_id, "could not complete rebalance: no member rejoined");
        let timeout = i64::from(group.rebalance_timeout_ms());
        out.schedule(join_key(group), timeout, TimerPayload::Join);
        return;
    }
    group.init_next_generation(out.now_ms);
    if group.is(GroupState::Empty) {
        tracing::info!(group = %group.group_id, generation = group.generation_id, "group is now empty");
        let record = group_metadata_record(group, |_| Bytes::new());
        out.persist(vec![record], None);
        return;
    }
    tracing::info!(group = %group.group_id, generation = group.generation_id, members = group.members.len(),
        protocol = ?group.protocol_name, "join phase complete");
    let leader_view = group.join_members();
    let member_ids: Vec<String> = group.members.keys().cloned().collect();
    for member_id in member_ids {
        let mut response = generation_response(group, &member_id, false);
        if group.is_leader(&member_id) {
            response.members = leader_view.clone();
        }
        let Some(member) = group.members.get_mut(&member_id) else {
            continue;
        };
        if let Some(req) = member.awaiting_join.take() {
            out.respond(req, Response::Join(response));
        }
        member.is_new = false;
        out.reschedule_heartbeat(&group.group_id, member);
        group.pending_sync_members.insert(member_id);
    }
    let timeout = i64::from(group.rebalance_timeout_ms());
    out.schedule(
        sync_key(group),
        timeout,
        TimerPayload::Sync {
            generation: group.generation_id,
        },
    );
}

pub(crate) fn sync(groups: &mut BTreeMap<String, Group>, out: &mut Outbox, r: SyncRequest) {
    if r.group_id.is_empty() {
        return sync_error(out, r.req, ResponseError::InvalidGroupId);
    }
    let Some(group) = groups.get_mut(&r.group_id) else {
        return sync_error(out, r.req, ResponseError::UnknownMemberId);
    };
    if group.is(GroupState::Empty) {
        return sync_error(out, r.req, ResponseError::UnknownMemberId);
    }
    if let Err(e) = validate_sync(group, &r) {
        return sync_error(out, r.req, e);
    }
    match group.state {
        GroupState::PreparingRebalance => sync_error(out, r.req, ResponseError::RebalanceInProgress),
        GroupState::CompletingRebalance => {
            if let Some(member) = group.members.get_mut(&r.member_id) {
                if let Some(old) = member.awaiting_sync.replace(r.req).filter(|old| *old != r.req) {
                    sync_error(out, old, ResponseError::RebalanceInProgress);
                }
            }
            remove_pending_sync_member(group, out, &r.member_id);
            if group.is_leader(&r.member_id) {
                store_assignment(group, out, r);
            }
        }
        GroupState::Stable => {
            remove_pending_sync_member(group, out, &r.member_id);
            if let Some(member) = group.members.get(&r.member_id) {
                let response = SyncResponse {
                    error: None,
                    protocol_type: group.protocol_type.clone(),
                    protocol_name: group.protocol_name.clone(),
                    assignment: member.assignment.clone(),
                };
                out.reschedule_heartbeat(&group.group_id, member);
                out.respond(r.req, Response::Sync(response));
            }
        }
        GroupState::Empty | GroupState::Dead => sync_error(out, r.req, ResponseError::UnknownMemberId),
    }
}

/// The leader's assignment goes to the log first; the group turns Stable when it is there.
fn store_assignment(group: &mut Group, out: &mut Outbox, r: SyncRequest) {
    let mut assignment: BTreeMap<String, Bytes> = r.assignments.into_iter().collect();
    for member_id in group.members.keys() {
        assignment.entry(member_id.clone()).or_default(); // members the leader left out get nothing
    }
    tracing::info!(group = %group.group_id, generation = group.generation_id, leader = %r.member_id,
        "assignment received from leader");
    let record = group_metadata_record(group, |m| assignment.get(&m.member_id).cloned().unwrap_or_default());
    let then = PendingWrite::SyncAssignment {
        group_id: group.group_id.clone(),
        generation: group.generation_id,
        assignment,
    };
    out.persist(vec![record], Some(then));
}

fn validate_sync(group: &Group, r: &SyncRequest) -> Result<(), ResponseError> {
    if group.is(GroupState::Dead) {
        return Err(ResponseError::CoordinatorNotAvailable);
    }
    group.validate_member(&r.member_id, r.group_instance_id.as_deref())?;
    if r.generation_id != group.generation_id {
        return Err(ResponseError::IllegalGeneration);
    }
    if inconsistent(r.protocol_type.as_deref(), group.protocol_type.as_deref())
        || inconsistent(r.protocol_name.as_deref(), group.protocol_name.as_deref())
    {
        return Err(ResponseError::InconsistentGroupProtocol);
    }
    Ok(())
}

fn inconsistent(requested: Option<&str>, actual: Option<&str>) -> bool {
    matches!((requested, actual), (Some(a), Some(b)) if a != b)
}

/// The leader's assignment is in the log (or failed).
pub(crate) fn assignment_persisted(
    groups: &mut BTreeMap<String, Group>,
    out: &mut Outbox,
    group_id: &str,
    generation: i32,
    assignment: BTreeMap<String, Bytes>,
    result: Result<(), ResponseError>,
) {
    let Some(group) = groups.get_mut(group_id) else {
        return;
    };
    // A member may have joined meanwhile: only the generation that stored it may use it.
    if !group.is(GroupState::CompletingRebalance) || group.generation_id != generation {
        return;
    }
    match result {
        Ok(()) => {
            for member in group.members.values_mut() {
                member.assignment = assignment.get(&member.member_id).cloned().unwrap_or_default();
            }
            propagate_assignment(group, out, None);
            group.transition_to(GroupState::Stable, out.now_ms);
            tracing::info!(group = %group_id, generation, "group is stable");
        }
        Err(e) => {
            let error = append_error_to_response_error(e);
            reset_and_propagate_assignment_error(group, out, error);
            maybe_prepare_rebalance_or_complete_join(group, out, "storing the assignment failed");
        }
    }
}

fn reset_and_propagate_assignment_error(group: &mut Group, out: &mut Outbox, error: ResponseError) {
    for member in group.members.values_mut() {
        member.assignment = Bytes::new();
    }
    propagate_assignment(group, out, Some(error));
}

/// Answers every parked SyncGroup and restarts those members' sessions (their timers may have
/// fired, ignored, while they were parked).
fn propagate_assignment(group: &mut Group, out: &mut Outbox, error: Option<ResponseError>) {
    let (protocol_type, protocol_name) = match error {
        None => (group.protocol_type.clone(), group.protocol_name.clone()),
        Some(_) => (None, None),
    };
    for member in group.members.values_mut() {
        if let Some(req) = member.awaiting_sync.take() {
            let response = SyncResponse {
                error,
                protocol_type: protocol_type.clone(),
                protocol_name: protocol_name.clone(),
                assignment: member.assignment.clone(),
            };
            out.respond(req, Response::Sync(response));
            out.reschedule_heartbeat(&group.group_id, member);
        }
    }
}

fn remove_sync_expiration(group: &mut Group, out: &mut Outbox) {
    group.pending_sync_members.clear();
    out.cancel(sync_key(group));
}

fn remove_pending_sync_member(group: &mut Group, out: &mut Outbox, member_id: &str) {
    group.pending_sync_members.remove(member_id);
    let done = match group.state {
        GroupState::CompletingRebalance | GroupState::Stable => group.pending_sync_members.is_empty(),
        _ => true,
    };
    if done {
        out.cancel(sync_key(group));
    }
}

pub(crate) fn heartbeat(groups: &mut BTreeMap<String, Group>, out: &mut Outbox, r: HeartbeatRequest) {
    let error = heartbeat_error(groups, out, &r);
    out.respond(r.req, Response::Heartbeat(HeartbeatResponse { error }));
}

fn heartbeat_error(groups: &BTreeMap<String, Group>, out: &mut Outbox, r: &HeartbeatRequest) -> Option<ResponseError> {
    if r.group_id.is_empty() {
        return Some(ResponseError::InvalidGroupId);
    }
    let Some(group) = groups.get(&r.group_id) else {
        return Some(ResponseError::UnknownMemberId);
    };
    if group.is(GroupState::Dead) {
        return Some(ResponseError::CoordinatorNotAvailable);
    }
    if let Err(e) = group.validate_member(&r.member_id, r.group_instance_id.as_deref()) {
        return Some(e);
    }
    if r.generation_id != group.generation_id {
        return Some(ResponseError::IllegalGeneration);
    }
    let member = group.members.get(&r.member_id)?;
    match group.state {
        GroupState::Empty | GroupState::Dead => Some(ResponseError::UnknownMemberId),
        GroupState::PreparingRebalance => {
            out.reschedule_heartbeat(&group.group_id, member);
            Some(ResponseError::RebalanceInProgress) // the member must rejoin
        }
        // Consumers may heartbeat between their JoinGroup and SyncGroup responses.
        GroupState::CompletingRebalance | GroupState::Stable => {
            out.reschedule_heartbeat(&group.group_id, member);
            None
        }
    }
}

pub(crate) fn leave(groups: &mut BTreeMap<String, Group>, out: &mut Outbox, r: LeaveRequest) {
    if r.group_id.is_empty() {
        let response = LeaveResponse {
            error: Some(ResponseError::InvalidGroupId),
            members: Vec::new(),
        };
        return out.respond(r.req, Response::Leave(response));
    }
    let Some(group) = groups.get_mut(&r.group_id) else {
        let members = r
            .members
            .into_iter()
            .map(|m| LeaveMemberResponse {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                error: Some(ResponseError::UnknownMemberId),
            })
            .collect();
        return out.respond(r.req, Response::Leave(LeaveResponse { error: None, members }));
    };
    if group.is(GroupState::Dead) {
        let response = LeaveResponse {
            error: Some(ResponseError::CoordinatorNotAvailable),
            members: Vec::new(),
        };
        return out.respond(r.req, Response::Leave(response));
    }
    let mut members = Vec::with_capacity(r.members.len());
    let mut anyone_left = false;
    for m in r.members {
        let error = leave_one(group, out, &m.member_id, m.group_instance_id.as_deref());
        if error.is_none() {
            anyone_left = true;
            tracing::info!(group = %group.group_id, member = %m.member_id, reason = ?m.reason, "member left the group");
        }
        members.push(LeaveMemberResponse {
            member_id: m.member_id,
            group_instance_id: m.group_instance_id,
            error,
        });
    }
    if anyone_left {
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                maybe_prepare_rebalance_or_complete_join(group, out, "members left")
            }
            GroupState::PreparingRebalance => maybe_complete_join_phase(group, out),
            GroupState::Empty | GroupState::Dead => {}
        }
    }
    out.respond(r.req, Response::Leave(LeaveResponse { error: None, members }));
}

fn leave_one(group: &mut Group, out: &mut Outbox, member_id: &str, instance_id: Option<&str>) -> Option<ResponseError> {
    if member_id.is_empty() {
        // Administrative removal of a static member by group.instance.id alone.
        let current = instance_id.and_then(|i| group.static_members.get(i).cloned());
        return match current {
            Some(current) => {
                remove_member(group, out, &current);
                None
            }
            None => Some(ResponseError::UnknownMemberId),
        };
    }
    if group.pending_members.contains(member_id) {
        remove_member(group, out, member_id);
        return None;
    }
    match group.validate_member(member_id, instance_id) {
        Ok(()) => {
            remove_member(group, out, member_id);
            None
        }
        Err(e) => Some(e),
    }
}

/// A session (or pending member, or new member join) timer fired.
pub(crate) fn heartbeat_expired(
    groups: &mut BTreeMap<String, Group>,
    out: &mut Outbox,
    group_id: &str,
    member_id: &str,
) {
    let Some(group) = groups.get_mut(group_id) else {
        return;
    };
    if group.is(GroupState::Dead) {
        return;
    }
    if group.pending_members.contains(member_id) {
        tracing::info!(group = %group_id, member = %member_id, "pending member expired");
        group.remove_member(member_id);
        if group.is(GroupState::PreparingRebalance) && group.has_all_members_joined() {
            complete_join(group, out);
        }
        return;
    }
    match group.members.get(member_id) {
        Some(member) if !member.has_satisfied_heartbeat() => {}
        _ => return, // gone already, or parked in a rebalance (its session restarts after)
    }
    tracing::info!(group = %group_id, member = %member_id, "member session expired; removing it");
    remove_member(group, out, member_id);
    match group.state {
        GroupState::Stable | GroupState::CompletingRebalance => {
            maybe_prepare_rebalance_or_complete_join(group, out, "member session expired")
        }
        GroupState::PreparingRebalance if group.has_all_members_joined() => complete_join(group, out),
        _ => {}
    }
}

/// The initial delay of an empty group's first rebalance is over: extend it while members
/// keep arriving (Kafka's `InitialDelayedJoin`), else complete the join phase.
pub(crate) fn initial_join_expired(
    groups: &mut BTreeMap<String, Group>,
    out: &mut Outbox,
    group_id: &str,
    delay_ms: i32,
    remaining_ms: i32,
) {
    let Some(group) = groups.get_mut(group_id) else {
        return;
    };
    if !group.is(GroupState::PreparingRebalance) {
        return;
    }
    if group.new_member_added && remaining_ms != 0 {
        group.new_member_added = false;
        let next_delay_ms = out.config.initial_rebalance_delay_ms.min(remaining_ms);
        let next_remaining_ms = (remaining_ms - delay_ms).max(0);
        let payload = TimerPayload::InitialJoin {
            delay_ms: next_delay_ms,
            remaining_ms: next_remaining_ms,
        };
        out.schedule(join_key(group), i64::from(next_delay_ms), payload);
    } else {
        complete_join(group, out);
    }
}

/// The rebalance timeout of a join phase is over.
pub(crate) fn join_expired(groups: &mut BTreeMap<String, Group>, out: &mut Outbox, group_id: &str) {
    if let Some(group) = groups
        .get_mut(group_id)
        .filter(|g| g.is(GroupState::PreparingRebalance))
    {
        complete_join(group, out);
    }
}

/// Members that did not send SyncGroup within the rebalance timeout are removed.
pub(crate) fn sync_expired(groups: &mut BTreeMap<String, Group>, out: &mut Outbox, group_id: &str, generation: i32) {
    let Some(group) = groups.get_mut(group_id) else {
        return;
    };
    if generation != group.generation_id
        || !(group.is(GroupState::CompletingRebalance) || group.is(GroupState::Stable))
        || group.pending_sync_members.is_empty()
    {
        return;
    }
    let missing: Vec<String> = group.pending_sync_members.iter().cloned().collect();
    for member_id in &missing {
        remove_member(group, out, member_id);
    }
    prepare_rebalance(
        group,
        out,
        &format!("members {missing:?} did not send SyncGroup in time"),
    );
}

/// Removes a member or pending member; answers its parked requests and stops its session.
pub(crate) fn remove_member(group: &mut Group, out: &mut Outbox, member_id: &str) {
    out.cancel_heartbeat(&group.group_id, member_id);
    let Some(member) = group.remove_member(member_id) else {
        return;
    };
    if let Some(req) = member.awaiting_join {
        join_error(out, req, "", ResponseError::UnknownMemberId);
    }
    if let Some(req) = member.awaiting_sync {
        sync_error(out, req, ResponseError::UnknownMemberId);
    }
}

/// Kafka's mapping of a failed append of group records to the code a client understands.
pub(crate) fn append_error_to_response_error(e: ResponseError) -> ResponseError {
    use ResponseError::*;
    match e {
        UnknownTopicOrPartition | NotEnoughReplicas | NotEnoughReplicasAfterAppend | RequestTimedOut => {
            CoordinatorNotAvailable
        }
        NotLeaderOrFollower | KafkaStorageError => NotCoordinator,
        MessageTooLarge | RecordListTooLarge | InvalidFetchSize => UnknownServerError,
        NetworkException => CoordinatorLoadInProgress,
        other => other,
    }
}

fn join_error(out: &mut Outbox, req: u64, member_id: &str, error: ResponseError) {
    out.respond(req, Response::Join(JoinResponse::error(member_id, error)));
}

fn sync_error(out: &mut Outbox, req: u64, error: ResponseError) {
    out.respond(req, Response::Sync(SyncResponse::error(error)));
}

pub(crate) fn join_key(group: &Group) -> TimerKey {
    TimerKey::Join {
        group_id: group.group_id.clone(),
    }
}

pub(crate) fn sync_key(group: &Group) -> TimerKey {
    TimerKey::Sync {
        group_id: group.group_id.clone(),
    }
}
