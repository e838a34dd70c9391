//! KIP-848 consumer groups: ConsumerGroupHeartbeat (an event of the group coordinator core,
//! with a snapshot of the cluster's topics for subscriptions and assignment) and
//! ConsumerGroupDescribe (a read of the core's state).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kafka_protocol::messages::consumer_group_describe_response::{self as describe, DescribedGroup};
use kafka_protocol::messages::consumer_group_heartbeat_response::{self as hb};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse, TopicName,
};
use kafka_protocol::ResponseError;

use super::group_admin::OPERATIONS_NOT_REQUESTED;
use super::groups::{call, code, opt_text, text};
use super::{Ctx, Reply};
use crate::authz::{Operation, ResourceType};
use crate::group::api::{ConsumerHeartbeatRequest, Event, Response};
use crate::group::consumer::describe::{ConsumerGroupDescription, DescribedPartitions};
use crate::group::consumer::{Assignment, TopicInfo, Topics};

/// Most topic-partition entries a heartbeat may name (a member cannot own more).
const MAX_OWNED_TOPICS: usize = 100_000;

/// The cluster's non-internal topics, as the group coordinator sees them.
fn topics(ctx: &Ctx) -> Topics {
    let image = ctx.broker.metadata.image();
    let topics = image
        .topics()
        .filter(|t| !t.is_internal())
        .map(|t| {
            let info = TopicInfo {
                id: t.id,
                partitions: i32::try_from(t.partitions.len()).unwrap_or(i32::MAX),
            };
            (t.name.clone(), info)
        })
        .collect::<BTreeMap<_, _>>();
    Arc::new(topics)
}

pub(super) fn consumer_group_heartbeat(
    ctx: &Ctx,
    req: ConsumerGroupHeartbeatRequest,
) -> Reply<ConsumerGroupHeartbeatResponse> {
    let group_id = req.group_id.0.to_string();
    let refused = |e: ResponseError| ConsumerGroupHeartbeatResponse::default().with_error_code(e.code());
    if req
        .topic_partitions
        .as_ref()
        .is_some_and(|t| t.len() > MAX_OWNED_TOPICS)
    {
        return Reply::Now(refused(ResponseError::InvalidRequest));
    }
    let owned = req.topic_partitions.map(|tps| {
        let mut owned = Assignment::new();
        for tp in tps {
            owned.entry(tp.topic_id).or_default().extend(tp.partitions);
        }
        owned.retain(|_, ps: &mut BTreeSet<i32>| !ps.is_empty());
        owned
    });
    let request = ConsumerHeartbeatRequest {
        req: 0,
        api_version: ctx.version,
        group_id: group_id.clone(),
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.map(|s| s.to_string()),
        rack_id: req.rack_id.map(|s| s.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topic_names: req
            .subscribed_topic_names
            .map(|ts| ts.into_iter().map(|t| t.0.to_string()).collect()),
        subscribed_topic_regex: req.subscribed_topic_regex.map(|s| s.to_string()),
        server_assignor: req.server_assignor.map(|s| s.to_string()),
        owned,
        client_id: ctx.client_id.to_string(),
        client_host: ctx.peer.map_or_else(String::new, |p| format!("/{}", p.ip())),
        topics: topics(ctx),
    };
    let c = ctx.clone();
    call(
        ctx,
        &group_id,
        move |id| Event::ConsumerHeartbeat(ConsumerHeartbeatRequest { req: id, ..request }),
        move |r| match r {
            Response::ConsumerHeartbeat(h) => Some(
                ConsumerGroupHeartbeatResponse::default()
                    .with_error_code(code(&c, h.error))
                    .with_error_message(opt_text(h.error_message))
                    .with_member_id(opt_text(h.member_id))
                    .with_member_epoch(h.member_epoch)
                    .with_heartbeat_interval_ms(h.heartbeat_interval_ms)
                    .with_assignment(h.assignment.map(|a| {
                        hb::Assignment::default().with_topic_partitions(
                            a.into_iter()
                                .map(|(topic_id, ps)| {
                                    hb::TopicPartitions::default()
                                        .with_topic_id(topic_id)
                                        .with_partitions(ps.into_iter().collect())
                                })
                                .collect(),
                        )
                    })),
            ),
            _ => None,
        },
        refused,
    )
}

pub(super) fn consumer_group_describe(
    ctx: &Ctx,
    req: ConsumerGroupDescribeRequest,
) -> Reply<ConsumerGroupDescribeResponse> {
    let access = ctx.access();
    let groups = req
        .group_ids
        .into_iter()
        .map(|g| {
            if !access.group(Operation::Describe, &g) {
                let refused = ResponseError::GroupAuthorizationFailed;
                return DescribedGroup::default()
                    .with_group_id(g)
                    .with_error_code(ctx.count(refused))
                    .with_authorized_operations(OPERATIONS_NOT_REQUESTED);
            }
            let ops = match req.include_authorized_operations {
                true => access.operations(ResourceType::Group, &g),
                false => OPERATIONS_NOT_REQUESTED,
            };
            let described = ctx
                .broker
                .groups
                .shard(&g)
                .map_err(|u| u.error())
                .and_then(|shard| {
                    shard
                        .query(|s| s.describe_consumer_group(&g))
                        .ok_or(ResponseError::NotCoordinator)
                })
                .unwrap_or_else(|e| ConsumerGroupDescription::error(e, e.to_string()));
            let group = described_group(ctx, described)
                .with_group_id(g)
                .with_authorized_operations(ops);
            let assigned: std::collections::BTreeSet<&str> = group
                .members
                .iter()
                .flat_map(|m| {
                    m.assignment
                        .topic_partitions
                        .iter()
                        .chain(&m.target_assignment.topic_partitions)
                })
                .map(|t| t.topic_name.0.as_str())
                .collect();
            // Kafka hides a group assigned topics the client may not describe.
            match group.error_code == 0 && access.refuses_any_topic(Operation::Describe, assigned) {
                false => group,
                true => DescribedGroup::default()
                    .with_group_id(group.group_id)
                    .with_error_code(ctx.count(ResponseError::TopicAuthorizationFailed))
                    .with_error_message(Some(text(super::authorize::UNDESCRIBABLE_TOPICS.to_string())))
                    .with_authorized_operations(ops),
            }
        })
        .collect();
    Reply::Now(ConsumerGroupDescribeResponse::default().with_groups(groups))
}

fn described_group(ctx: &Ctx, d: ConsumerGroupDescription) -> DescribedGroup {
    let group = DescribedGroup::default().with_group_state(text(d.state));
    if let Some((e, message)) = d.error {
        return group
            .with_error_code(ctx.count(e))
            .with_error_message(Some(text(message)));
    }
    let members = d
        .members
        .into_iter()
        .map(|m| {
            describe::Member::default()
                .with_member_id(text(m.member_id))
                .with_instance_id(opt_text(m.instance_id))
                .with_rack_id(opt_text(m.rack_id))
                .with_member_epoch(m.member_epoch)
                .with_client_id(text(m.client_id))
                .with_client_host(text(m.client_host))
                .with_subscribed_topic_names(
                    m.subscribed_topic_names
                        .into_iter()
                        .map(|t| TopicName(text(t)))
                        .collect(),
                )
                .with_subscribed_topic_regex(opt_text(m.subscribed_topic_regex))
                .with_assignment(assignment(m.assignment))
                .with_target_assignment(assignment(m.target_assignment))
                // 0: a member of the consumer protocol (1 would be a classic member).
                .with_member_type(0)
        })
        .collect();
    group
        .with_group_epoch(d.group_epoch)
        .with_assignment_epoch(d.assignment_epoch)
        .with_assignor_name(text(d.assignor))
        .with_members(members)
}

fn assignment(partitions: DescribedPartitions) -> describe::Assignment {
    describe::Assignment::default().with_topic_partitions(
        partitions
            .into_iter()
            .map(|(id, name, ps)| {
                describe::TopicPartitions::default()
                    .with_topic_id(id)
                    .with_topic_name(TopicName(text(name)))
                    .with_partitions(ps)
            })
            .collect(),
    )
}
