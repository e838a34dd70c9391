//! AlterPartitionReassignments and ListPartitionReassignments (KIP-455): move a partition's
//! replicas to other brokers (or cancel a move), and list the moves in progress. Any broker
//! answers; the active controller plans, commits and lists
//! (`metadata::reassignments`). An accepted reassignment is answered once this broker has
//! applied its first step; the replicas then catch up and the controller completes it.

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{Ctx, Reply};
use crate::controller::{self, Command};
use crate::error::KafkaCode;
use crate::metadata::reassignments::{Ongoing, Reassignment, ReassignmentError};

fn text(s: String) -> Option<StrBytes> {
    Some(StrBytes::from_string(s))
}

fn brokers(ids: &[i32]) -> Vec<BrokerId> {
    ids.iter().copied().map(BrokerId).collect()
}

pub(super) fn alter_partition_reassignments(
    ctx: &Ctx,
    req: AlterPartitionReassignmentsRequest,
) -> Reply<AlterPartitionReassignmentsResponse> {
    // Before v1 (KIP-860) a reassignment may always change the replication factor.
    let allow_rf_change = ctx.version < 1 || req.allow_replication_factor_change;
    let reassignments: Vec<Reassignment> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| Reassignment {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                target: p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect()),
            })
        })
        .collect();
    let ctx = ctx.clone();
    Reply::Later(Box::pin(async move {
        let command = Command::AlterReassignments {
            reassignments: reassignments.clone(),
            allow_replication_factor_change: allow_rf_change,
        };
        let results: Vec<Result<(), ReassignmentError>> = match ctx.broker.submit_published(command).await {
            Ok(controller::Reply::Reassigned { results, .. }) => results,
            Ok(other) => {
                let why = format!("unexpected controller reply {other:?}");
                return alter_failed(&ctx, ResponseError::UnknownServerError, why, allow_rf_change);
            }
            Err(e) => return alter_failed(&ctx, e.kafka_error(), e.to_string(), allow_rf_change),
        };
        let mut topics: Vec<ReassignableTopicResponse> = Vec::new();
        for (r, result) in reassignments.iter().zip(results) {
            let (code, message) = match result {
                Ok(()) => (0, None),
                Err(e) => (ctx.code(&e), text(e.to_string())),
            };
            let partition = ReassignablePartitionResponse::default()
                .with_partition_index(r.partition)
                .with_error_code(code)
                .with_error_message(message);
            // The request groups partitions by topic; keep its grouping and order.
            match topics.last_mut() {
                Some(t) if t.name.0.as_str() == r.topic => t.partitions.push(partition),
                _ => topics.push(
                    ReassignableTopicResponse::default()
                        .with_name(StrBytes::from_string(r.topic.clone()).into())
                        .with_partitions(vec![partition]),
                ),
            }
        }
        alter_response(&ctx, allow_rf_change)
            .with_error_message(None)
            .with_responses(topics)
    }))
}

fn alter_response(ctx: &Ctx, allow_rf_change: bool) -> AlterPartitionReassignmentsResponse {
    let response = AlterPartitionReassignmentsResponse::default();
    if ctx.version >= 1 {
        response.with_allow_replication_factor_change(allow_rf_change)
    } else {
        response
    }
}

fn alter_failed(
    ctx: &Ctx,
    e: ResponseError,
    why: String,
    allow_rf_change: bool,
) -> AlterPartitionReassignmentsResponse {
    alter_response(ctx, allow_rf_change)
        .with_error_code(ctx.count(e))
        .with_error_message(text(why))
}

pub(super) fn list_partition_reassignments(
    ctx: &Ctx,
    req: ListPartitionReassignmentsRequest,
) -> Reply<ListPartitionReassignmentsResponse> {
    let topics: Option<Vec<(String, Vec<i32>)>> = req.topics.as_ref().map(|topics| {
        topics
            .iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let ctx = ctx.clone();
    Reply::Later(Box::pin(async move {
        let listed = match ctx
            .broker
            .controller
            .submit(Command::ListReassignments { topics })
            .await
        {
            Ok(controller::Reply::Reassignments(listed)) => listed,
            Ok(other) => {
                let why = format!("unexpected controller reply {other:?}");
                return list_failed(&ctx, ResponseError::UnknownServerError, why);
            }
            Err(e) => return list_failed(&ctx, e.kafka_error(), e.to_string()),
        };
        let topics = listed
            .into_iter()
            .map(|(name, ongoing)| {
                OngoingTopicReassignment::default()
                    .with_name(StrBytes::from_string(name).into())
                    .with_partitions(ongoing.iter().map(ongoing_partition).collect())
            })
            .collect();
        ListPartitionReassignmentsResponse::default()
            .with_error_message(None)
            .with_topics(topics)
    }))
}

fn ongoing_partition(o: &Ongoing) -> OngoingPartitionReassignment {
    OngoingPartitionReassignment::default()
        .with_partition_index(o.partition)
        .with_replicas(brokers(&o.replicas))
        .with_adding_replicas(brokers(&o.adding))
        .with_removing_replicas(brokers(&o.removing))
}

fn list_failed(ctx: &Ctx, e: ResponseError, why: String) -> ListPartitionReassignmentsResponse {
    ListPartitionReassignmentsResponse::default()
        .with_error_code(ctx.count(e))
        .with_error_message(text(why))
}
