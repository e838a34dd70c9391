//! Share-group administration (KIP-932): DescribeShareGroupOffsets, AlterShareGroupOffsets,
//! DeleteShareGroupOffsets, and the share groups' part of ListGroups and DeleteGroups — what
//! `kafka-share-groups` and the admin clients use. Answered by the group's coordinator from
//! `share::ShareService`.

use kafka_protocol::messages::alter_share_group_offsets_response::{
    AlterShareGroupOffsetsResponsePartition, AlterShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic;
use kafka_protocol::messages::describe_share_group_offsets_response::{
    DescribeShareGroupOffsetsResponseGroup, DescribeShareGroupOffsetsResponsePartition,
    DescribeShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse, DeleteShareGroupOffsetsRequest,
    DeleteShareGroupOffsetsResponse, DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse, GroupId,
    TopicName,
};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::groups::text;
use super::share_groups::check_coordinator;
use super::{share_persist, Ctx, Reply};

/// Kafka's start offset of a share-partition that has no state yet.
const UNINITIALIZED_START_OFFSET: i64 = -1;

/// The share groups of this broker for ListGroups, by its state and type filters (Kafka
/// compares both without regard to case; empty filters let everything through).
pub(super) fn listed_share_groups(ctx: &Ctx, states: &[String], types: &[String]) -> Vec<ListedGroup> {
    let wanted = |filter: &[String], v: &str| filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(v));
    if !wanted(types, "share") {
        return Vec::new();
    }
    ctx.broker
        .shares
        .groups()
        .into_iter()
        .filter(|(_, state)| wanted(states, state))
        .map(|(id, state)| {
            ListedGroup::default()
                .with_group_id(GroupId(text(id)))
                .with_protocol_type(text("share"))
                .with_group_state(text(state))
                .with_group_type(text("share"))
        })
        .collect()
}

/// DeleteGroups of `group` if it is a share group here: None when it is not one.
/// The share-partitions' durable state is deleted in the background: the group is gone from
/// memory at once, and its states are tombstoned right after.
pub(super) fn delete_share_group(ctx: &Ctx, group: &str) -> Option<Result<(), ResponseError>> {
    check_coordinator(ctx, group).ok()?;
    let gone = match ctx.broker.shares.delete_group(group)? {
        Ok(gone) => gone,
        Err(e) => return Some(Err(e.kafka_error())),
    };
    let c = ctx.clone();
    tokio::spawn(async move {
        if let Err(e) = share_persist::delete(&c, gone).await {
            tracing::warn!(error = ?e, "cannot delete a deleted share group's state");
        }
    });
    Some(Ok(()))
}

pub(super) fn describe_share_group_offsets(
    ctx: &Ctx,
    req: DescribeShareGroupOffsetsRequest,
) -> Reply<DescribeShareGroupOffsetsResponse> {
    let image = ctx.broker.metadata.image();
    let groups = req
        .groups
        .into_iter()
        .map(|g| {
            let base = DescribeShareGroupOffsetsResponseGroup::default().with_group_id(g.group_id.clone());
            if let Err(e) = check_coordinator(ctx, &g.group_id) {
                return base.with_error_code(ctx.count(e));
            }
            let Some(offsets) = ctx.broker.shares.start_offsets(&g.group_id) else {
                return base
                    .with_error_code(ctx.count(ResponseError::GroupIdNotFound))
                    .with_error_message(Some(text(format!("Group {} not found.", g.group_id.0))));
            };
            // Null topics: every share-partition the group has state for.
            let wanted: Vec<(String, Vec<i32>)> = match g.topics {
                Some(ts) => ts
                    .into_iter()
                    .map(|t| (t.topic_name.0.to_string(), t.partitions))
                    .collect(),
                None => {
                    let mut by_topic: std::collections::BTreeMap<String, Vec<i32>> = Default::default();
                    for (topic_id, p) in offsets.keys() {
                        if let Some(t) = image.topic_by_id(topic_id) {
                            by_topic.entry(t.name.clone()).or_default().push(*p);
                        }
                    }
                    by_topic.into_iter().collect()
                }
            };
            let topics = wanted
                .into_iter()
                .map(|(name, partitions)| {
                    let topic = image.topic(&name);
                    let topic_id = topic.map_or(Uuid::nil(), |t| t.id);
                    let partitions = partitions
                        .into_iter()
                        .map(|p| {
                            let base = DescribeShareGroupOffsetsResponsePartition::default()
                                .with_partition_index(p)
                                .with_leader_epoch(-1);
                            match topic.filter(|t| t.partitions.contains_key(&p)) {
                                None => base
                                    .with_start_offset(UNINITIALIZED_START_OFFSET)
                                    .with_error_code(ctx.count(ResponseError::UnknownTopicOrPartition)),
                                Some(t) => base
                                    .with_start_offset(
                                        offsets.get(&(t.id, p)).copied().unwrap_or(UNINITIALIZED_START_OFFSET),
                                    )
                                    .with_leader_epoch(t.partitions.get(&p).map_or(-1, |pi| pi.leader_epoch)),
                            }
                        })
                        .collect();
                    DescribeShareGroupOffsetsResponseTopic::default()
                        .with_topic_name(TopicName(text(name)))
                        .with_topic_id(topic_id)
                        .with_partitions(partitions)
                })
                .collect();
            base.with_topics(topics)
        })
        .collect();
    Reply::Now(DescribeShareGroupOffsetsResponse::default().with_groups(groups))
}

pub(super) fn alter_share_group_offsets(
    ctx: &Ctx,
    req: AlterShareGroupOffsetsRequest,
) -> Reply<AlterShareGroupOffsetsResponse> {
    let group = req.group_id.0.to_string();
    let refuse = |e: ResponseError, msg: Option<String>| {
        Reply::Now(
            AlterShareGroupOffsetsResponse::default()
                .with_error_code(ctx.count(e))
                .with_error_message(msg.map(text)),
        )
    };
    if let Err(e) = check_coordinator(ctx, &group) {
        return refuse(e, None);
    }
    let image = ctx.broker.metadata.image();
    let settings = ctx.broker.shares.settings().for_group(image.group_configs(&group));
    let mut valid = Vec::new();
    let mut responses = Vec::new();
    for t in &req.topics {
        let topic = image.topic(&t.topic_name);
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                let base = AlterShareGroupOffsetsResponsePartition::default().with_partition_index(p.partition_index);
                match topic.filter(|tp| tp.partitions.contains_key(&p.partition_index)) {
                    None => base.with_error_code(ctx.count(ResponseError::UnknownTopicOrPartition)),
                    Some(_) if p.start_offset < 0 => base.with_error_code(ctx.count(ResponseError::InvalidRequest)),
                    Some(tp) => {
                        valid.push((tp.id, p.partition_index, p.start_offset));
                        base
                    }
                }
            })
            .collect();
        responses.push(
            AlterShareGroupOffsetsResponseTopic::default()
                .with_topic_name(t.topic_name.clone())
                .with_topic_id(topic.map_or(Uuid::nil(), |tp| tp.id))
                .with_partitions(partitions),
        );
    }
    if let Err(e) = ctx.broker.shares.alter_offsets(&group, &valid, settings.partition) {
        return refuse(e.kafka_error(), Some(e.to_string()));
    }
    let keys = valid.iter().map(|(t, p, _)| (group.clone(), *t, *p)).collect();
    let c = ctx.clone();
    Reply::Later(Box::pin(async move {
        // The new start offsets are durable before they are answered.
        let failed = share_persist::persist(&c, keys)
            .await
            .into_values()
            .find_map(Result::err);
        let response = AlterShareGroupOffsetsResponse::default().with_responses(responses);
        match failed {
            Some(e) => response.with_error_code(c.count(e)),
            None => response,
        }
    }))
}

pub(super) fn delete_share_group_offsets(
    ctx: &Ctx,
    req: DeleteShareGroupOffsetsRequest,
) -> Reply<DeleteShareGroupOffsetsResponse> {
    let group = req.group_id.0.to_string();
    let refuse = |e: ResponseError, msg: Option<String>| {
        Reply::Now(
            DeleteShareGroupOffsetsResponse::default()
                .with_error_code(ctx.count(e))
                .with_error_message(msg.map(text)),
        )
    };
    if let Err(e) = check_coordinator(ctx, &group) {
        return refuse(e, None);
    }
    let image = ctx.broker.metadata.image();
    let mut ids = Vec::new();
    let responses = req
        .topics
        .iter()
        .map(|t| {
            let base = DeleteShareGroupOffsetsResponseTopic::default().with_topic_name(t.topic_name.clone());
            match image.topic(&t.topic_name) {
                None => base.with_error_code(ctx.count(ResponseError::UnknownTopicOrPartition)),
                Some(tp) => {
                    ids.push(tp.id);
                    base.with_topic_id(tp.id)
                }
            }
        })
        .collect();
    let gone = match ctx.broker.shares.delete_offsets(&group, &ids) {
        Err(e) => return refuse(e.kafka_error(), Some(e.to_string())),
        Ok(gone) => gone,
    };
    let c = ctx.clone();
    Reply::Later(Box::pin(async move {
        let response = DeleteShareGroupOffsetsResponse::default().with_responses(responses);
        match share_persist::delete(&c, gone).await {
            Err(e) => response.with_error_code(c.count(e)),
            Ok(()) => response,
        }
    }))
}
