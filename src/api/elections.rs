//! ElectLeaders (KIP-183, KIP-460): a preferred or unclean leader election on the partitions
//! named, or on every partition. Any broker answers; the election is planned and committed by
//! the active controller (`metadata::elections::plan_elect_leaders`), and the answer waits
//! until this broker has applied it, so the client's next Metadata shows the new leaders.

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{Ctx, Reply, RequestError};
use crate::controller::{self, Command};
use crate::error::KafkaCode;
use crate::metadata::elections::{ElectionType, TopicElections};

pub(super) fn elect_leaders(ctx: &Ctx, req: ElectLeadersRequest) -> Reply<ElectLeadersResponse> {
    let requested: Option<Vec<(String, Vec<i32>)>> = req.topic_partitions.as_ref().map(|topics| {
        topics
            .iter()
            .map(|t| (t.topic.0.to_string(), t.partitions.clone()))
            .collect()
    });
    // v0 has no election type: preferred.
    let election = match (ctx.version, req.election_type) {
        (0, _) | (_, 0) => ElectionType::Preferred,
        (_, 1) => ElectionType::Unclean,
        (_, other) => {
            let e = RequestError::UnknownElectionType(other);
            return Reply::Now(failed(ctx, &requested, e.kafka_error(), &e.to_string()));
        }
    };
    let ctx = ctx.clone();
    Reply::Later(Box::pin(async move {
        let command = Command::ElectLeaders {
            election,
            partitions: requested.clone(),
        };
        match ctx.broker.submit_published(command).await {
            Ok(controller::Reply::Elections { results, .. }) => response(&ctx, results),
            Ok(other) => failed(
                &ctx,
                &requested,
                ResponseError::UnknownServerError,
                &format!("unexpected controller reply {other:?}"),
            ),
            Err(e) => failed(&ctx, &requested, e.kafka_error(), &e.to_string()),
        }
    }))
}

fn text(s: String) -> Option<StrBytes> {
    Some(StrBytes::from_string(s))
}

fn response(ctx: &Ctx, results: Vec<TopicElections>) -> ElectLeadersResponse {
    let topics = results
        .into_iter()
        .map(|(topic, outcomes)| {
            let partitions = outcomes
                .into_iter()
                .map(|(partition, outcome)| {
                    let (code, message) = match outcome {
                        Ok(()) => (0, None),
                        Err(e) => (ctx.code(&e), text(e.to_string())),
                    };
                    PartitionResult::default()
                        .with_partition_id(partition)
                        .with_error_code(code)
                        .with_error_message(message)
                })
                .collect();
            ReplicaElectionResult::default()
                .with_topic(StrBytes::from_string(topic).into())
                .with_partition_result(partitions)
        })
        .collect();
    ElectLeadersResponse::default().with_replica_election_results(topics)
}

/// The whole request refused: the top-level error (v1+), and the same for every partition
/// named, as Kafka's error response carries it.
fn failed(ctx: &Ctx, requested: &Option<Vec<(String, Vec<i32>)>>, e: ResponseError, why: &str) -> ElectLeadersResponse {
    let code = ctx.count(e);
    let topics = requested
        .iter()
        .flatten()
        .map(|(topic, partitions)| {
            let partitions = partitions
                .iter()
                .map(|&p| {
                    PartitionResult::default()
                        .with_partition_id(p)
                        .with_error_code(code)
                        .with_error_message(text(why.to_string()))
                })
                .collect();
            ReplicaElectionResult::default()
                .with_topic(StrBytes::from_string(topic.clone()).into())
                .with_partition_result(partitions)
        })
        .collect();
    let response = ElectLeadersResponse::default().with_replica_election_results(topics);
    if ctx.version >= 1 {
        response.with_error_code(code)
    } else {
        response
    }
}
