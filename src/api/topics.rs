//! Topic admin: CreateTopics, DeleteTopics, CreatePartitions. Each change is planned against
//! the metadata image and committed through the metadata log by the broker.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::Ctx;
use crate::metadata::topic_config;
use crate::metadata::topics::NewTopic;
use crate::metadata::MetadataError;

fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// Names given more than once in one request: Kafka refuses every copy with INVALID_REQUEST.
fn duplicates<'a>(names: impl Iterator<Item = &'a str>) -> HashMap<&'a str, usize> {
    let mut counts = HashMap::new();
    for n in names {
        *counts.entry(n).or_insert(0) += 1;
    }
    counts.retain(|_, c| *c > 1);
    counts
}

pub(super) fn create_topics(ctx: &Ctx, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let dups = duplicates(req.topics.iter().map(|t| t.name.0.as_str()));
    let results = req
        .topics
        .iter()
        .map(|t| {
            if dups.contains_key(t.name.0.as_str()) {
                let e = MetadataError::InvalidRequest(DUPLICATE_TOPIC.into());
                return failed_create(ctx, t, &e);
            }
            create_one(ctx, t, req.validate_only)
        })
        .collect();
    CreateTopicsResponse::default().with_topics(results)
}

/// Kafka's refusal of a topic named twice in one request.
const DUPLICATE_TOPIC: &str = "Duplicate topic name.";

fn new_topic(t: &CreatableTopic) -> Result<NewTopic, MetadataError> {
    let nulls: Vec<&str> = t
        .configs
        .iter()
        .filter(|c| c.value.is_none())
        .map(|c| c.name.as_str())
        .collect();
    if !nulls.is_empty() {
        return Err(MetadataError::InvalidConfig(format!(
            "Null value not supported for topic configs: {}",
            nulls.join(",")
        )));
    }
    let configs = t
        .configs
        .iter()
        .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
        .collect();
    let mut assignments = BTreeMap::new();
    for a in &t.assignments {
        let replicas = a.broker_ids.iter().map(|b| b.0).collect();
        if assignments.insert(a.partition_index, replicas).is_some() {
            return Err(MetadataError::InvalidReplicaAssignment(format!(
                "Found multiple manual partition assignments for partition {}",
                a.partition_index
            )));
        }
    }
    Ok(NewTopic {
        name: t.name.0.to_string(),
        num_partitions: t.num_partitions,
        replication_factor: t.replication_factor,
        assignments,
        configs,
    })
}

fn create_one(ctx: &Ctx, t: &CreatableTopic, validate_only: bool) -> CreatableTopicResult {
    let created = new_topic(t).and_then(|nt| ctx.broker.create_topic(&nt, validate_only).map(|img| (nt, img)));
    let (nt, image) = match created {
        Ok(ok) => ok,
        Err(e) => return failed_create(ctx, t, &e),
    };
    let (id, partitions, rf) = match image.topic(&nt.name) {
        // validate_only leaves the image as it was; report what would have been created.
        None => (
            Uuid::nil(),
            resolved(nt.num_partitions, ctx.broker.settings.num_partitions),
            resolved(
                nt.replication_factor as i32,
                ctx.broker.settings.default_replication_factor,
            ),
        ),
        Some(topic) => (
            topic.id,
            topic.partitions.len() as i32,
            topic.partitions.values().next().map_or(0, |p| p.replicas.len() as i32),
        ),
    };
    let configs = topic_config::effective(&ctx.broker.settings, image.cluster_configs(), &nt.configs)
        .into_iter()
        .map(|c| {
            CreatableTopicConfigs::default()
                .with_name(text(c.name))
                .with_value(Some(text(c.value)))
                .with_config_source(c.source as i8)
        })
        .collect();
    // Kafka answers a success with a null message; the codec's default is "", which some
    // admin clients (aiokafka) read as an error.
    CreatableTopicResult::default()
        .with_name(t.name.clone())
        .with_error_message(None)
        .with_topic_id(id)
        .with_num_partitions(partitions)
        .with_replication_factor(rf as i16)
        .with_configs(Some(configs))
}

fn resolved(asked: i32, default: i32) -> i32 {
    if asked == -1 {
        default
    } else {
        asked
    }
}

fn failed_create(ctx: &Ctx, t: &CreatableTopic, e: &MetadataError) -> CreatableTopicResult {
    CreatableTopicResult::default()
        .with_name(t.name.clone())
        .with_error_code(ctx.code(e))
        .with_error_message(Some(text(e.to_string())))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
}

pub(super) fn delete_topics(ctx: &Ctx, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    // v6 names topics in `topics` (by name or id); earlier versions in `topic_names`.
    let wanted: Vec<(Option<TopicName>, Uuid)> = if ctx.version >= 6 {
        req.topics.into_iter().map(|t| (t.name, t.topic_id)).collect()
    } else {
        req.topic_names.into_iter().map(|n| (Some(n), Uuid::nil())).collect()
    };
    let image = ctx.broker.metadata.image();
    let responses = wanted
        .into_iter()
        .map(|(name, id)| {
            let resolved = match &name {
                Some(n) => image
                    .topic(n)
                    .map(|t| (t.name.clone(), t.id))
                    .ok_or(ResponseError::UnknownTopicOrPartition),
                None => image
                    .topic_by_id(&id)
                    .map(|t| (t.name.clone(), t.id))
                    .ok_or(ResponseError::UnknownTopicId),
            };
            let result = DeletableTopicResult::default().with_name(name).with_topic_id(id);
            match resolved {
                Err(e) => result.with_error_code(ctx.count(e)),
                Ok((topic, topic_id)) => {
                    let result = result
                        .with_name(Some(TopicName(text(topic.clone()))))
                        .with_topic_id(topic_id);
                    match ctx.broker.delete_topic(&topic) {
                        Ok(_) => result,
                        Err(e) => result
                            .with_error_code(ctx.code(&e))
                            .with_error_message(Some(text(e.to_string()))),
                    }
                }
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

pub(super) fn create_partitions(ctx: &Ctx, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let dups = duplicates(req.topics.iter().map(|t| t.name.0.as_str()));
    let results = req
        .topics
        .iter()
        .map(|t| {
            // Null (or, from some clients, empty) assignments mean "place them for me".
            let assignments: Option<Vec<Vec<i32>>> = t
                .assignments
                .as_ref()
                .filter(|a| !a.is_empty())
                .map(|a| a.iter().map(|x| x.broker_ids.iter().map(|b| b.0).collect()).collect());
            let outcome = if dups.contains_key(t.name.0.as_str()) {
                Err(MetadataError::InvalidRequest(DUPLICATE_TOPIC.into()))
            } else {
                ctx.broker
                    .create_partitions(&t.name.0, t.count, assignments.as_deref(), req.validate_only)
            };
            let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            match outcome {
                Ok(_) => result,
                Err(e) => {
                    let code = ctx.code(&e);
                    // Kafka names no message for an unknown topic here.
                    let message = (code != ResponseError::UnknownTopicOrPartition.code()).then(|| text(e.to_string()));
                    result.with_error_code(code).with_error_message(message)
                }
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
