//! Configs: DescribeConfigs (every topic config with its effective value and source, and the
//! broker's own settings; Kafka returns all configs with defaults, never an empty list), and
//! IncrementalAlterConfigs / AlterConfigs for topic overrides (committed to the metadata log).
//! Broker settings are static (a restart applies them), so altering one is refused.

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest, AlterConfigsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{Ctx, Reply};
use crate::config::Source;
use crate::metadata::topic_config::{self, ConfigSource, ConfigType};
use crate::metadata::topics::ConfigChange;

/// Kafka's ConfigResource.Type codes.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

/// One config entry before it is turned into the response type.
struct Entry {
    name: String,
    value: String,
    source: ConfigSource,
    config_type: ConfigType,
    read_only: bool,
    doc: Option<&'static str>,
    /// The broker setting behind a topic config's default, reported as a synonym.
    broker_synonym: Option<(&'static str, String, ConfigSource)>,
}

fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

fn broker_source(s: Source) -> ConfigSource {
    match s {
        Source::Default => ConfigSource::Default,
        Source::File | Source::Override => ConfigSource::StaticBroker,
    }
}

pub(super) fn describe_configs(ctx: &Ctx, req: DescribeConfigsRequest) -> Reply<DescribeConfigsResponse> {
    let results = req
        .resources
        .iter()
        .map(|r| {
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            match entries(ctx, r) {
                Ok(entries) => base.with_configs(
                    entries
                        .into_iter()
                        .filter(|e| wanted(r, &e.name))
                        .map(|e| to_result(e, req.include_synonyms, req.include_documentation))
                        .collect(),
                ),
                Err((e, msg)) => base.with_error_code(ctx.count(e)).with_error_message(Some(text(msg))),
            }
        })
        .collect();
    Reply::Now(DescribeConfigsResponse::default().with_results(results))
}

/// Null or empty `configuration_keys` ask for every config, as in Kafka.
fn wanted(r: &DescribeConfigsResource, name: &str) -> bool {
    match &r.configuration_keys {
        Some(keys) if !keys.is_empty() => keys.iter().any(|k| k.as_str() == name),
        _ => true,
    }
}

fn entries(ctx: &Ctx, r: &DescribeConfigsResource) -> Result<Vec<Entry>, (ResponseError, String)> {
    let settings = &ctx.broker.settings;
    match r.resource_type {
        RESOURCE_TOPIC => {
            let image = ctx.broker.metadata.image();
            let topic = image.topic(&r.resource_name).ok_or_else(|| {
                (
                    ResponseError::UnknownTopicOrPartition,
                    format!("topic '{}' does not exist", r.resource_name),
                )
            })?;
            let broker_values = settings.entries();
            Ok(topic_config::effective(settings, &topic.configs)
                .into_iter()
                .map(|c| {
                    let def = topic_config::TOPIC_CONFIGS.iter().find(|d| d.name == c.name);
                    let broker_synonym = def.and_then(|d| d.broker_setting).and_then(|b| {
                        broker_values
                            .iter()
                            .find(|s| s.name == b)
                            .map(|s| (s.name, s.value.clone(), broker_source(s.source)))
                    });
                    Entry {
                        name: c.name.to_string(),
                        value: c.value,
                        source: c.source,
                        config_type: c.config_type,
                        read_only: false,
                        doc: None,
                        broker_synonym,
                    }
                })
                .collect())
        }
        RESOURCE_BROKER => {
            let name = r.resource_name.as_str();
            if !name.is_empty() && name != ctx.broker.node_id.to_string() {
                return Err((
                    ResponseError::InvalidRequest,
                    format!("broker '{name}' is not this broker"),
                ));
            }
            Ok(settings
                .entries()
                .into_iter()
                .map(|s| Entry {
                    name: s.name.to_string(),
                    value: s.value,
                    source: broker_source(s.source),
                    config_type: ConfigType::String,
                    // Sluice has no dynamic broker configs yet: every setting needs a restart.
                    read_only: true,
                    doc: Some(s.doc),
                    broker_synonym: None,
                })
                .collect())
        }
        other => Err((
            ResponseError::InvalidRequest,
            format!("resource type {other} is not supported"),
        )),
    }
}

/// Kafka's synonyms, most specific first: the topic override (if any), then the broker
/// setting that supplies the default, else the default itself.
fn synonyms_of(e: &Entry) -> Vec<DescribeConfigsSynonym> {
    let synonym = |name: &str, value: &str, source: ConfigSource| {
        DescribeConfigsSynonym::default()
            .with_name(text(name.to_string()))
            .with_value(Some(text(value.to_string())))
            .with_source(source as i8)
    };
    let mut list = Vec::new();
    if e.source == ConfigSource::Topic || e.broker_synonym.is_none() {
        list.push(synonym(&e.name, &e.value, e.source));
    }
    if let Some((name, value, source)) = &e.broker_synonym {
        list.push(synonym(name, value, *source));
    }
    list
}

fn to_result(e: Entry, synonyms: bool, docs: bool) -> DescribeConfigsResourceResult {
    let list = if synonyms { synonyms_of(&e) } else { Vec::new() };
    DescribeConfigsResourceResult::default()
        .with_name(text(e.name))
        .with_value(Some(text(e.value)))
        .with_read_only(e.read_only)
        .with_config_source(e.source as i8)
        .with_is_sensitive(false)
        .with_synonyms(list)
        .with_config_type(e.config_type as i8)
        .with_documentation(if docs { e.doc.map(text) } else { None })
}

/// IncrementalAlterConfigs operation codes.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// Kafka's replication throttles: the brokers' rates and the topics' throttled replica lists.
/// Sluice does not throttle replication, so none is ever set and deleting one changes nothing;
/// `kafka-reassign-partitions --verify` deletes them all once a reassignment is done.
/// Setting one is refused like any setting Sluice does not have.
const REPLICATION_THROTTLES: &[&str] = &[
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
    "replica.alter.log.dirs.io.max.bytes.per.second",
    "leader.replication.throttled.replicas",
    "follower.replication.throttled.replicas",
];

/// The changes less deletions of replication throttles, which are never set.
fn without_throttle_deletes(changes: Vec<(String, ConfigChange)>) -> Vec<(String, ConfigChange)> {
    changes
        .into_iter()
        .filter(|(name, c)| !(matches!(c, ConfigChange::Delete) && REPLICATION_THROTTLES.contains(&name.as_str())))
        .collect()
}

/// Applies one resource's changes; the error code and message for its response entry.
fn alter_resource(
    ctx: &Ctx,
    resource_type: i8,
    name: &str,
    changes: Result<Vec<(String, ConfigChange)>, String>,
    replace_all: bool,
    validate_only: bool,
) -> (i16, Option<StrBytes>) {
    let refused = |e: ResponseError, msg: String| (ctx.count(e), Some(text(msg)));
    let changes = changes.map(without_throttle_deletes);
    if resource_type == RESOURCE_BROKER && !replace_all && changes.as_ref().is_ok_and(Vec::is_empty) {
        return (0, None);
    }
    if resource_type == RESOURCE_BROKER {
        return refused(
            ResponseError::InvalidRequest,
            "broker settings are static in Sluice: change config/sluice.toml and restart".into(),
        );
    }
    if resource_type != RESOURCE_TOPIC {
        return refused(
            ResponseError::InvalidRequest,
            format!("resource type {resource_type} is not supported"),
        );
    }
    let changes = match changes {
        Ok(c) => c,
        Err(msg) => return refused(ResponseError::InvalidConfig, msg),
    };
    match ctx
        .broker
        .alter_topic_configs(name, &changes, replace_all, validate_only)
    {
        Ok(_) => (0, None),
        Err(e) => (ctx.code(&e), Some(text(e.to_string()))),
    }
}

pub(super) fn incremental_alter_configs(
    ctx: &Ctx,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let responses = req
        .resources
        .iter()
        .map(|r| {
            let changes = r
                .configs
                .iter()
                .map(|c| {
                    let value = || {
                        c.value
                            .as_ref()
                            .map(|v| v.to_string())
                            .ok_or(format!("no value for {}", c.name))
                    };
                    let change = match c.config_operation {
                        OP_SET => ConfigChange::Set(value()?),
                        OP_DELETE => ConfigChange::Delete,
                        OP_APPEND => ConfigChange::Append(value()?),
                        OP_SUBTRACT => ConfigChange::Subtract(value()?),
                        other => return Err(format!("unknown config operation {other}")),
                    };
                    Ok((c.name.to_string(), change))
                })
                .collect::<Result<Vec<_>, String>>();
            let (code, message) = alter_resource(
                ctx,
                r.resource_type,
                &r.resource_name,
                changes,
                false,
                req.validate_only,
            );
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

pub(super) fn alter_configs(ctx: &Ctx, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let responses = req
        .resources
        .iter()
        .map(|r| {
            // The legacy API sets the complete override set: what is not named goes back to default.
            let changes = r
                .configs
                .iter()
                .map(|c| {
                    let change = match &c.value {
                        Some(v) => ConfigChange::Set(v.to_string()),
                        None => ConfigChange::Delete,
                    };
                    Ok((c.name.to_string(), change))
                })
                .collect::<Result<Vec<_>, String>>();
            let (code, message) =
                alter_resource(ctx, r.resource_type, &r.resource_name, changes, true, req.validate_only);
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}
