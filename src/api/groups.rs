//! Group membership: JoinGroup, SyncGroup, Heartbeat, LeaveGroup. Each request becomes an
//! event of the group coordinator core (`group::api`); its answer may come much later (a
//! JoinGroup waits for the rebalance), so these return `Reply::Later`.

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{Ctx, Reply};
use crate::group::api::{self as core, Event, RequestId, Response};

pub(super) fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

pub(super) fn opt_text(s: Option<String>) -> Option<StrBytes> {
    s.map(text)
}

/// The error code of an optional core error, counted in the errors metric.
pub(super) fn code(ctx: &Ctx, e: Option<ResponseError>) -> i16 {
    e.map_or(0, |e| ctx.count(e))
}

/// Sends an event to the group's coordinator shard and turns its eventual answer into the
/// response with `answer`; `refuse` builds the response when the group is not served here.
pub(super) fn call<R, A, F>(
    ctx: &Ctx,
    group_id: &str,
    build: impl FnOnce(RequestId) -> Event,
    answer: A,
    refuse: F,
) -> Reply<R>
where
    R: Send + 'static,
    A: FnOnce(Response) -> Option<R> + Send + 'static,
    F: FnOnce(ResponseError) -> R + Send + 'static,
{
    match super::coordinator::call_shard(&ctx.broker.groups, group_id, build, answer, refuse) {
        Ok(pending) => Reply::Later(pending),
        Err(refused) => Reply::Now(refused),
    }
}

fn client_host(ctx: &Ctx) -> String {
    ctx.peer.map_or_else(String::new, |p| format!("/{}", p.ip()))
}

pub(super) fn join_group(ctx: &Ctx, req: JoinGroupRequest) -> Reply<JoinGroupResponse> {
    let group_id = req.group_id.0.to_string();
    let member_id = req.member_id.to_string();
    let request = |id| {
        Event::Join(core::JoinRequest {
            req: id,
            api_version: ctx.version,
            group_id: group_id.clone(),
            member_id: member_id.clone(),
            group_instance_id: req.group_instance_id.map(|s| s.to_string()),
            protocol_type: req.protocol_type.to_string(),
            protocols: req
                .protocols
                .into_iter()
                .map(|p| core::Protocol {
                    name: p.name.to_string(),
                    metadata: p.metadata,
                })
                .collect(),
            session_timeout_ms: req.session_timeout_ms,
            // v0 has no rebalance timeout: Kafka uses the session timeout.
            rebalance_timeout_ms: if ctx.version == 0 {
                req.session_timeout_ms
            } else {
                req.rebalance_timeout_ms
            },
            client_id: ctx.client_id.to_string(),
            client_host: client_host(ctx),
            reason: req.reason.map(|s| s.to_string()),
        })
    };
    let c = ctx.clone();
    let refused_member = member_id.clone();
    let version = ctx.version;
    call(
        ctx,
        &group_id,
        request,
        move |r| match r {
            Response::Join(j) => Some(join_response(&c, j)),
            _ => None,
        },
        move |e| {
            JoinGroupResponse::default()
                .with_error_code(e.code())
                .with_generation_id(-1)
                .with_protocol_name(protocol_name(version, None))
                .with_member_id(text(refused_member))
        },
    )
}

/// Kafka's rule (JoinGroupResponse's constructor): before v7 the protocol name is not
/// nullable and an empty string stands for none; from v7 none is null, and so is an empty name.
fn protocol_name(version: i16, name: Option<String>) -> Option<StrBytes> {
    match name.filter(|n| !n.is_empty()) {
        None if version < 7 => Some(StrBytes::default()),
        other => opt_text(other),
    }
}

fn join_response(ctx: &Ctx, j: core::JoinResponse) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(code(ctx, j.error))
        .with_generation_id(j.generation_id)
        .with_protocol_type(opt_text(j.protocol_type))
        .with_protocol_name(protocol_name(ctx.version, j.protocol_name))
        .with_leader(text(j.leader))
        .with_skip_assignment(j.skip_assignment)
        .with_member_id(text(j.member_id))
        .with_members(
            j.members
                .into_iter()
                .map(|m| {
                    JoinGroupResponseMember::default()
                        .with_member_id(text(m.member_id))
                        .with_group_instance_id(opt_text(m.group_instance_id))
                        .with_metadata(m.metadata)
                })
                .collect(),
        )
}

pub(super) fn sync_group(ctx: &Ctx, req: SyncGroupRequest) -> Reply<SyncGroupResponse> {
    let group_id = req.group_id.0.to_string();
    let request = |id| {
        Event::Sync(core::SyncRequest {
            req: id,
            group_id: group_id.clone(),
            generation_id: req.generation_id,
            member_id: req.member_id.to_string(),
            group_instance_id: req.group_instance_id.map(|s| s.to_string()),
            protocol_type: req.protocol_type.map(|s| s.to_string()),
            protocol_name: req.protocol_name.map(|s| s.to_string()),
            assignments: req
                .assignments
                .into_iter()
                .map(|a| (a.member_id.to_string(), a.assignment))
                .collect(),
        })
    };
    let c = ctx.clone();
    call(
        ctx,
        &group_id,
        request,
        move |r| match r {
            Response::Sync(s) => Some(
                SyncGroupResponse::default()
                    .with_error_code(code(&c, s.error))
                    .with_protocol_type(opt_text(s.protocol_type))
                    .with_protocol_name(opt_text(s.protocol_name))
                    .with_assignment(s.assignment),
            ),
            _ => None,
        },
        |e| SyncGroupResponse::default().with_error_code(e.code()),
    )
}

pub(super) fn heartbeat(ctx: &Ctx, req: HeartbeatRequest) -> Reply<HeartbeatResponse> {
    let group_id = req.group_id.0.to_string();
    let request = |id| {
        Event::Heartbeat(core::HeartbeatRequest {
            req: id,
            group_id: group_id.clone(),
            generation_id: req.generation_id,
            member_id: req.member_id.to_string(),
            group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        })
    };
    let c = ctx.clone();
    call(
        ctx,
        &group_id,
        request,
        move |r| match r {
            Response::Heartbeat(h) => Some(HeartbeatResponse::default().with_error_code(code(&c, h.error))),
            _ => None,
        },
        |e| HeartbeatResponse::default().with_error_code(e.code()),
    )
}

/// From v3 LeaveGroup names a batch of members; before, one member id at the top level.
const BATCHED_LEAVE_FROM_VERSION: i16 = 3;

pub(super) fn leave_group(ctx: &Ctx, req: LeaveGroupRequest) -> Reply<LeaveGroupResponse> {
    let group_id = req.group_id.0.to_string();
    let batched = ctx.version >= BATCHED_LEAVE_FROM_VERSION;
    let members: Vec<core::LeavingMember> = if batched {
        req.members
            .into_iter()
            .map(|m| core::LeavingMember {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.map(|s| s.to_string()),
                reason: m.reason.map(|s| s.to_string()),
            })
            .collect()
    } else {
        vec![core::LeavingMember {
            member_id: req.member_id.to_string(),
            group_instance_id: None,
            reason: None,
        }]
    };
    let request = |id| {
        Event::Leave(core::LeaveRequest {
            req: id,
            group_id: group_id.clone(),
            members,
        })
    };
    let c = ctx.clone();
    call(
        ctx,
        &group_id,
        request,
        move |r| match r {
            Response::Leave(l) => Some(leave_response(&c, l, batched)),
            _ => None,
        },
        |e| LeaveGroupResponse::default().with_error_code(e.code()),
    )
}

fn leave_response(ctx: &Ctx, l: core::LeaveResponse, batched: bool) -> LeaveGroupResponse {
    if !batched {
        // v0-v2: the one member's error is the response's error.
        let error = l.error.or_else(|| l.members.first().and_then(|m| m.error));
        return LeaveGroupResponse::default().with_error_code(code(ctx, error));
    }
    LeaveGroupResponse::default()
        .with_error_code(code(ctx, l.error))
        .with_members(
            l.members
                .into_iter()
                .map(|m| {
                    MemberResponse::default()
                        .with_member_id(text(m.member_id))
                        .with_group_instance_id(opt_text(m.group_instance_id))
                        .with_error_code(code(ctx, m.error))
                })
                .collect(),
        )
}
