//! Share-group membership (KIP-932): ShareGroupHeartbeat and ShareGroupDescribe, answered by
//! the group's coordinator (the broker leading its `__consumer_offsets` partition) from the
//! membership core in `share::membership`, held by `share::ShareService`.

use kafka_protocol::messages::share_group_describe_response::{self as describe, DescribedGroup};
use kafka_protocol::messages::share_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{
    GroupId, ShareGroupDescribeRequest, ShareGroupDescribeResponse, ShareGroupHeartbeatRequest,
    ShareGroupHeartbeatResponse, TopicName,
};
use kafka_protocol::ResponseError;

use super::groups::text;
use super::metadata::OPERATIONS_NOT_REQUESTED;
use super::{Ctx, Reply};
use crate::authz::ResourceType;
use crate::clock::now_ms;
use crate::metadata::MetadataImage;
use crate::share::assignor::TopicPartition;
use crate::share::membership::Heartbeat;

/// The share group's coordinator is the group's `__consumer_offsets` leader, as for any group;
/// a classic group of the same id is not a share group.
pub(super) fn check_coordinator(ctx: &Ctx, group_id: &str) -> Result<(), ResponseError> {
    let shard = ctx.broker.groups.shard(group_id).map_err(|u| u.error())?;
    match shard.query(|s| s.groups.contains_key(group_id)) {
        None => Err(ResponseError::NotCoordinator),
        Some(true) => Err(ResponseError::GroupIdNotFound),
        Some(false) => Ok(()),
    }
}

/// A member's assignment by topic id, partitions in order.
fn by_topic(
    image: &MetadataImage,
    tps: &std::collections::BTreeSet<TopicPartition>,
) -> Vec<(uuid::Uuid, String, Vec<i32>)> {
    let mut out: Vec<(uuid::Uuid, String, Vec<i32>)> = Vec::new();
    for (topic, p) in tps {
        let Some(t) = image.topic(topic) else { continue };
        match out.last_mut() {
            Some((_, name, ps)) if name == topic => ps.push(*p),
            _ => out.push((t.id, topic.clone(), vec![*p])),
        }
    }
    out
}

pub(super) fn share_group_heartbeat(ctx: &Ctx, req: ShareGroupHeartbeatRequest) -> Reply<ShareGroupHeartbeatResponse> {
    let group_id = req.group_id.0.to_string();
    let refuse = |e: ResponseError, msg: Option<String>| {
        Reply::Now(
            ShareGroupHeartbeatResponse::default()
                .with_error_code(ctx.count(e))
                .with_error_message(msg.map(text)),
        )
    };
    if group_id.is_empty() {
        return refuse(ResponseError::InvalidRequest, Some("GroupId can't be empty.".into()));
    }
    if let Err(e) = check_coordinator(ctx, &group_id) {
        return refuse(e, None);
    }
    let image = ctx.broker.metadata.image();
    let settings = ctx.broker.shares.settings().for_group(image.group_configs(&group_id));
    let hb = Heartbeat {
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        rack_id: req.rack_id.map(|r| r.to_string()),
        subscribed: req
            .subscribed_topic_names
            .map(|ts| ts.into_iter().map(|t| t.0.to_string()).collect()),
        client_id: ctx.client_id.to_string(),
        client_host: ctx.peer.map_or_else(String::new, |p| format!("/{}", p.ip())),
    };
    let partitions = |t: &str| image.topic(t).map(|t| t.partitions.len() as i32);
    let reply = ctx
        .broker
        .shares
        .heartbeat(&group_id, hb, now_ms(), &settings.group, partitions);
    match reply {
        Err(e) => refuse(e.kafka_error(), Some(e.to_string())),
        Ok(r) => {
            let assignment = r.assignment.map(|tps| {
                Assignment::default().with_topic_partitions(
                    by_topic(&image, &tps)
                        .into_iter()
                        .map(|(id, _, ps)| TopicPartitions::default().with_topic_id(id).with_partitions(ps))
                        .collect(),
                )
            });
            Reply::Now(
                ShareGroupHeartbeatResponse::default()
                    .with_member_id(Some(req.member_id))
                    .with_member_epoch(r.member_epoch)
                    .with_heartbeat_interval_ms(r.heartbeat_interval_ms)
                    .with_assignment(assignment),
            )
        }
    }
}

pub(super) fn share_group_describe(ctx: &Ctx, req: ShareGroupDescribeRequest) -> Reply<ShareGroupDescribeResponse> {
    let image = ctx.broker.metadata.image();
    let groups = req
        .group_ids
        .iter()
        .map(|g| {
            let described = describe_one(ctx, &image, g);
            match described.error_code == 0 && req.include_authorized_operations {
                true => described.with_authorized_operations(ctx.access().operations(ResourceType::Group, g)),
                false => described,
            }
        })
        .collect();
    Reply::Now(ShareGroupDescribeResponse::default().with_groups(groups))
}

fn describe_one(ctx: &Ctx, image: &MetadataImage, g: &GroupId) -> DescribedGroup {
    let base = DescribedGroup::default()
        .with_group_id(g.clone())
        .with_authorized_operations(OPERATIONS_NOT_REQUESTED);
    if let Err(e) = check_coordinator(ctx, g) {
        return base.with_error_code(ctx.count(e));
    }
    let settings = ctx.broker.shares.settings().for_group(image.group_configs(g));
    let Some(group) = ctx.broker.shares.describe(g, now_ms(), &settings.group) else {
        return base
            .with_error_code(ctx.count(ResponseError::GroupIdNotFound))
            .with_error_message(Some(text(format!("Group {} not found.", g.0))));
    };
    let members = group
        .members
        .values()
        .map(|m| {
            let assignment = describe::Assignment::default().with_topic_partitions(
                by_topic(image, &m.assignment)
                    .into_iter()
                    .map(|(id, name, ps)| {
                        describe::TopicPartitions::default()
                            .with_topic_id(id)
                            .with_topic_name(TopicName(text(name)))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
            describe::Member::default()
                .with_member_id(text(m.member_id.clone()))
                .with_rack_id(m.rack_id.clone().map(text))
                .with_member_epoch(m.member_epoch)
                .with_client_id(text(m.client_id.clone()))
                .with_client_host(text(m.client_host.clone()))
                .with_subscribed_topic_names(m.subscribed.iter().map(|t| TopicName(text(t.clone()))).collect())
                .with_assignment(assignment)
        })
        .collect();
    base.with_group_state(text(group.state()))
        .with_group_epoch(group.group_epoch)
        .with_assignment_epoch(group.assignment_epoch)
        .with_assignor_name(text("simple"))
        .with_members(members)
}
