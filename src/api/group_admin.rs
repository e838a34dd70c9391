//! Group administration: ListGroups, DescribeGroups, DeleteGroups (what `kafka-consumer-groups.sh`
//! and the admin clients use). Reads query the coordinator shards; deletion is an event.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse, GroupId,
    ListGroupsRequest, ListGroupsResponse,
};
use kafka_protocol::ResponseError;

use super::groups::{code, opt_text, text};
use super::{Ctx, Reply};
use crate::authz::{Operation, ResourceType, CLUSTER_NAME};
use crate::group::api::{self as core, Event, Response};

pub(super) const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

pub(super) fn list_groups(ctx: &Ctx, req: ListGroupsRequest) -> Reply<ListGroupsResponse> {
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_string()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_string()).collect();
    let mut groups: Vec<ListedGroup> = ctx
        .broker
        .groups
        .shards()
        .iter()
        .filter_map(|shard| shard.query(|s| s.list_groups(&states, &types)))
        .flatten()
        .map(|g| {
            ListedGroup::default()
                .with_group_id(GroupId(text(g.group_id)))
                .with_protocol_type(text(g.protocol_type))
                .with_group_state(text(g.state))
                .with_group_type(text(g.group_type))
        })
        .collect();
    groups.extend(super::share_admin::listed_share_groups(ctx, &states, &types));
    // Kafka's: every group with DESCRIBE on the cluster, else those the principal may describe.
    let access = ctx.access();
    if !access.may(Operation::Describe, ResourceType::Cluster, CLUSTER_NAME) {
        groups.retain(|g| access.may(Operation::Describe, ResourceType::Group, &g.group_id.0));
    }
    groups.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
    Reply::Now(ListGroupsResponse::default().with_groups(groups))
}

pub(super) fn describe_groups(ctx: &Ctx, req: DescribeGroupsRequest) -> Reply<DescribeGroupsResponse> {
    let access = ctx.access();
    let groups = req
        .groups
        .iter()
        .map(|g| {
            let base = DescribedGroup::default().with_group_id(g.clone());
            if !access.group(Operation::Describe, g) {
                return base
                    .with_error_code(ctx.count(ResponseError::GroupAuthorizationFailed))
                    .with_authorized_operations(OPERATIONS_NOT_REQUESTED);
            }
            let ops = match req.include_authorized_operations {
                true => access.operations(ResourceType::Group, g),
                false => OPERATIONS_NOT_REQUESTED,
            };
            let base = base.with_authorized_operations(ops);
            let described = ctx.broker.groups.shard(g).map_err(|u| u.error()).and_then(|shard| {
                shard
                    .query(|s| s.describe_group(g))
                    .ok_or(ResponseError::NotCoordinator)
            });
            match described {
                Err(e) => base.with_error_code(ctx.count(e)).with_group_state(text("Dead")),
                Ok(d) => base
                    .with_error_code(code(ctx, d.error))
                    .with_group_state(text(d.state))
                    .with_protocol_type(text(d.protocol_type))
                    .with_protocol_data(text(d.protocol_data))
                    .with_members(
                        d.members
                            .into_iter()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(text(m.member_id))
                                    .with_group_instance_id(opt_text(m.group_instance_id))
                                    .with_client_id(text(m.client_id))
                                    .with_client_host(text(m.client_host))
                                    .with_member_metadata(m.metadata)
                                    .with_member_assignment(m.assignment)
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    Reply::Now(DescribeGroupsResponse::default().with_groups(groups))
}

pub(super) fn delete_groups(ctx: &Ctx, req: DeleteGroupsRequest) -> Reply<DeleteGroupsResponse> {
    // Each group goes to its own shard; answers are merged back in request order.
    let mut waiting = Vec::new();
    let access = ctx.access();
    for g in req.groups_names {
        let id = g.0.to_string();
        if !access.group(Operation::Delete, &id) {
            waiting.push((g, Err(ResponseError::GroupAuthorizationFailed)));
            continue;
        }
        // A share group is deleted here and now; None: the share groups have no such group.
        if let Some(done) = super::share_admin::delete_share_group(ctx, &id) {
            waiting.push((g, done.map(|()| None)));
            continue;
        }
        let rx = ctx.broker.groups.shard(&id).map_err(|u| u.error()).and_then(|shard| {
            shard
                .request(|req| {
                    Event::DeleteGroups(core::DeleteGroupsRequest {
                        req,
                        group_ids: vec![id.clone()],
                    })
                })
                .ok_or(ResponseError::NotCoordinator)
        });
        waiting.push((g, rx.map(Some)));
    }
    let c = ctx.clone();
    Reply::Later(Box::pin(async move {
        let mut results = Vec::new();
        for (group, rx) in waiting {
            let error = match rx {
                Err(e) => Some(e),
                Ok(None) => None,
                Ok(Some(rx)) => match rx.await {
                    Ok(Response::DeleteGroups(d)) => d.results.into_iter().next().and_then(|(_, e)| e),
                    Ok(_) => Some(ResponseError::UnknownServerError),
                    Err(_) => Some(ResponseError::NotCoordinator),
                },
            };
            results.push(
                DeletableGroupResult::default()
                    .with_group_id(group)
                    .with_error_code(code(&c, error)),
            );
        }
        DeleteGroupsResponse::default().with_results(results)
    }))
}
