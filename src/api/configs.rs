//! Configs: DescribeConfigs (every topic config with its effective value, source, type and
//! synonyms; the broker's own settings, and "" for the cluster-wide defaults the metadata log
//! holds; the broker's loggers, from `logging.level`; a group's share-group configs with their
//! overrides or defaults; Kafka returns all configs with defaults, never an empty list where it
//! has some), and IncrementalAlterConfigs / AlterConfigs for topic overrides, group overrides
//! and the cluster-wide defaults (all committed to the metadata log). A broker's own settings
//! are static (a restart applies them), so altering one is refused; of the cluster-wide ones
//! only `min.insync.replicas` is dynamic (see `metadata::cluster_configs`).

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

use super::{Ctx, Reply, RequestError};
use crate::config::{ClusterDefaults, Settings};
use crate::error::KafkaCode;
use crate::metadata::cluster_configs::{BROKER_MIN_ISR_REFUSED, DYNAMIC_CLUSTER_SETTINGS};
use crate::metadata::group_configs;
use crate::metadata::topic_config::{self, ConfigSource, ConfigSynonym, ConfigType, MIN_INSYNC_REPLICAS};
use crate::metadata::topics::{self, ConfigChange};
use crate::metadata::MetadataError;

/// Kafka's ConfigResource.Type codes.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_BROKER_LOGGER: i8 = 8;
const RESOURCE_GROUP: i8 = 32;

/// One config entry before it is turned into the response type.
struct Entry {
    name: String,
    /// None: not set and without a default (Kafka's null).
    value: Option<String>,
    source: ConfigSource,
    config_type: ConfigType,
    read_only: bool,
    doc: Option<&'static str>,
    synonyms: Vec<ConfigSynonym>,
}

fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
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
                Err((e, msg)) => base.with_error_code(ctx.count(e)).with_error_message(msg.map(text)),
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

/// A resource's error code and message (null where Kafka sends none) instead of its entries.
type Refusal = (ResponseError, Option<String>);

/// A typed refusal with its Kafka code and message.
fn refused(e: impl KafkaCode + std::fmt::Display) -> Refusal {
    (e.kafka_error(), Some(e.to_string()))
}

fn entries(ctx: &Ctx, r: &DescribeConfigsResource) -> Result<Vec<Entry>, Refusal> {
    let name = r.resource_name.as_str();
    match r.resource_type {
        RESOURCE_TOPIC => topic_entries(ctx, name),
        RESOURCE_BROKER => {
            check_broker_name(ctx, name, true)?;
            // "" is the cluster-wide default broker entity (`kafka-configs --entity-default`,
            // kadm's DescribeBrokerConfigs of no broker): Kafka lists only the configs set
            // dynamically for every broker there, which includes the min.insync.replicas its
            // controller writes at bootstrap for eligible leader replicas, as Sluice's does.
            let image = ctx.broker.metadata.image();
            let entries = broker_entries(&ctx.broker.settings, image.cluster_configs());
            match name.is_empty() {
                true => Ok(entries
                    .into_iter()
                    .filter(|e| image.cluster_configs().contains_key(&e.name))
                    .collect()),
                false => Ok(entries),
            }
        }
        RESOURCE_BROKER_LOGGER => {
            check_broker_name(ctx, name, false)?;
            Ok(logger_entries(&ctx.broker.settings))
        }
        RESOURCE_GROUP if name.is_empty() => Err(refused(RequestError::EmptyGroupName)),
        RESOURCE_GROUP => Ok(group_entries(ctx, name)),
        other => Err(refused(RequestError::UnsupportedConfigResource(other))),
    }
}

/// Every topic config of the topic `name`. An unknown topic has Kafka's null message.
fn topic_entries(ctx: &Ctx, name: &str) -> Result<Vec<Entry>, Refusal> {
    topics::validate_topic_name(name).map_err(refused)?;
    let image = ctx.broker.metadata.image();
    let topic = image
        .topic(name)
        .ok_or((ResponseError::UnknownTopicOrPartition, None))?;
    Ok(
        topic_config::effective(&ctx.broker.settings, image.cluster_configs(), &topic.configs)
            .into_iter()
            .map(|c| Entry {
                name: c.name.to_string(),
                value: Some(c.value),
                source: c.source,
                config_type: c.config_type,
                read_only: false,
                doc: Some(c.doc),
                synonyms: c.synonyms,
            })
            .collect(),
    )
}

/// The group configs Sluice serves (the share-group ones; Kafka 4.4 also has KIP-848's and
/// streams groups'), each with its override or its default from the broker's settings.
fn group_entries(ctx: &Ctx, name: &str) -> Vec<Entry> {
    let image = ctx.broker.metadata.image();
    let overrides = image.group_configs(name);
    group_configs::definitions(&ctx.broker.settings)
        .into_iter()
        .map(|d| {
            let set = overrides.and_then(|o| o.get(d.name)).cloned();
            Entry {
                name: d.name.to_string(),
                source: if set.is_some() {
                    ConfigSource::Group
                } else {
                    ConfigSource::Default
                },
                value: Some(set.unwrap_or(d.default)),
                config_type: d.config_type,
                read_only: false,
                doc: Some(d.doc),
                synonyms: Vec::new(),
            }
        })
        .collect()
}

/// Every broker setting, with Kafka's synonyms; the value is the cluster-wide one where the
/// metadata log sets one, and the source is the first synonym's, as Kafka's.
fn broker_entries(settings: &Settings, cluster: &ClusterDefaults) -> Vec<Entry> {
    let catalog = settings.catalog();
    settings
        .entries()
        .into_iter()
        .map(|s| {
            let synonyms: Vec<ConfigSynonym> = catalog.synonyms(s.name, cluster).into_iter().map(Into::into).collect();
            Entry {
                name: s.name.to_string(),
                value: cluster.get(s.name).cloned().or(s.value),
                source: synonyms.first().map_or(ConfigSource::Default, |y| y.source),
                config_type: s.config_type,
                // Every other setting needs a restart.
                read_only: !DYNAMIC_CLUSTER_SETTINGS.contains(&s.name),
                doc: Some(s.doc),
                synonyms,
            }
        })
        .collect()
}

/// The loggers `logging.level` sets, as Kafka reports its loggers: source
/// DYNAMIC_BROKER_LOGGER_CONFIG, type UNKNOWN. Read-only: Sluice cannot change them at run time
/// (and RUST_LOG, when set, overrides them and is not shown).
fn logger_entries(settings: &Settings) -> Vec<Entry> {
    settings
        .logger_levels()
        .into_iter()
        .map(|(logger, level)| Entry {
            name: logger,
            value: Some(level),
            source: ConfigSource::DynamicBrokerLogger,
            config_type: ConfigType::Unknown,
            read_only: true,
            doc: Some(""),
            synonyms: Vec::new(),
        })
        .collect()
}

/// The BROKER resource is this broker (by id) or, where `default_allowed`, "" (the
/// cluster-wide defaults); BROKER_LOGGER this broker only. Kafka's words for anything else.
fn check_broker_name(ctx: &Ctx, name: &str, default_allowed: bool) -> Result<(), Refusal> {
    let expected = ctx.broker.node_id;
    let received = name.to_string();
    match name.parse::<i32>() {
        _ if name.is_empty() && default_allowed => Ok(()),
        _ if name.is_empty() => Err(refused(RequestError::EmptyBrokerId)),
        Ok(id) if id == expected => Ok(()),
        Ok(_) => Err(refused(RequestError::UnexpectedBrokerId {
            expected,
            received,
            default_allowed,
        })),
        Err(_) => Err(refused(RequestError::BrokerIdNotAnInteger(received))),
    }
}

fn to_result(e: Entry, synonyms: bool, docs: bool) -> DescribeConfigsResourceResult {
    // A secret (a password, a private key) is reported as sensitive, never with its value.
    let sensitive = e.config_type == ConfigType::Password;
    let list = match synonyms {
        true => e
            .synonyms
            .iter()
            .map(|y| {
                DescribeConfigsSynonym::default()
                    .with_name(text(y.name))
                    .with_value((!sensitive).then(|| text(y.value.clone())))
                    .with_source(y.source as i8)
            })
            .collect(),
        false => Vec::new(),
    };
    DescribeConfigsResourceResult::default()
        .with_name(text(e.name))
        .with_value(e.value.filter(|_| !sensitive).map(text))
        .with_read_only(e.read_only)
        .with_config_source(e.source as i8)
        .with_is_sensitive(sensitive)
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
    changes: Result<Vec<(String, ConfigChange)>, MetadataError>,
    replace_all: bool,
    validate_only: bool,
) -> (i16, Option<StrBytes>) {
    let refused = |e: ResponseError, msg: String| (ctx.count(e), Some(text(msg)));
    let changes = changes.map(without_throttle_deletes);
    if resource_type == RESOURCE_BROKER && !replace_all && changes.as_ref().is_ok_and(Vec::is_empty) {
        return (0, None);
    }
    let changes = match changes {
        Ok(c) => c,
        Err(e) => return (ctx.code(&e), Some(text(e.to_string()))),
    };
    let done = match resource_type {
        RESOURCE_TOPIC => ctx
            .broker
            .alter_topic_configs(name, &changes, replace_all, validate_only),
        RESOURCE_BROKER if name.is_empty() => ctx.broker.alter_cluster_configs(&changes, replace_all, validate_only),
        RESOURCE_GROUP => ctx
            .broker
            .alter_group_configs(name, &changes, replace_all, validate_only),
        RESOURCE_BROKER if changes.iter().any(|(n, _)| n == MIN_INSYNC_REPLICAS) => {
            return refused(ResponseError::InvalidConfig, BROKER_MIN_ISR_REFUSED.into());
        }
        RESOURCE_BROKER => {
            return refused(
                ResponseError::InvalidRequest,
                "a broker's own settings are static in Sluice: change config/sluice.toml and restart".into(),
            );
        }
        _ => {
            return refused(
                ResponseError::InvalidRequest,
                format!("resource type {resource_type} is not supported"),
            );
        }
    };
    match done {
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
                    // Kafka's words for an operation that needs a value and has none.
                    let value = || {
                        c.value.as_ref().map(|v| v.to_string()).ok_or_else(|| {
                            MetadataError::InvalidRequest(format!("Null value not supported for : {}", c.name))
                        })
                    };
                    let change = match c.config_operation {
                        OP_SET => ConfigChange::Set(value()?),
                        OP_DELETE => ConfigChange::Delete,
                        OP_APPEND => ConfigChange::Append(value()?),
                        OP_SUBTRACT => ConfigChange::Subtract(value()?),
                        other => {
                            return Err(MetadataError::InvalidRequest(format!(
                                "Unknown config operation {other}"
                            )))
                        }
                    };
                    Ok((c.name.to_string(), change))
                })
                .collect::<Result<Vec<_>, MetadataError>>();
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
                .collect::<Result<Vec<_>, MetadataError>>();
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
