//! DescribeConfigs: every topic config with its effective value and source, and the broker's
//! own settings. Kafka returns all configs (with defaults), never an empty list.

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{Ctx, Reply};
use crate::config::Source;
use crate::metadata::topic_config::{self, ConfigSource, ConfigType};

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
