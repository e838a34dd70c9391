//! ListConfigResources (KIP-1142; ListClientMetricsResources at v0, before Kafka 4.1), what
//! the Admin's `listConfigResources` and `kafka-configs --describe --entity-type groups` or
//! `client-metrics` ask: the config resources of the requested types, or of every type the
//! version lists when none is named.
//!
//! As in Kafka 4.4 (`KafkaApis.handleListConfigResources`): v0 lists client metrics only, v1
//! topics, brokers, broker loggers, client metrics and groups, in Kafka's order (groups, client
//! metrics, broker loggers, brokers, topics); a type outside the version's set fails the whole
//! request with UNSUPPORTED_VERSION. Groups are those with config overrides (the metadata log's
//! GroupConfig records) and client metrics the metrics subscriptions, which Sluice has none of.
//! Every live broker has its broker and broker-logger resources; every topic its topic one.

use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{ListConfigResourcesRequest, ListConfigResourcesResponse};
use kafka_protocol::protocol::StrBytes;

use super::request_error::RequestError;
use super::{Ctx, Reply};
use crate::metadata::MetadataImage;

/// Kafka's ConfigResource.Type ids.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const CLIENT_METRICS: i8 = 16;
const GROUP: i8 = 32;

/// The types each version lists, in the order Kafka answers them.
fn listable(version: i16) -> &'static [i8] {
    match version {
        0 => &[CLIENT_METRICS],
        _ => &[GROUP, CLIENT_METRICS, BROKER_LOGGER, BROKER, TOPIC],
    }
}

/// The types to list, in Kafka's order: those requested, or all the version lists.
fn types_to_list(version: i16, requested: &[i8]) -> Result<Vec<i8>, RequestError> {
    let listable = listable(version);
    if let Some(&resource_type) = requested.iter().find(|t| !listable.contains(t)) {
        return Err(RequestError::UnsupportedResourceType { resource_type, version });
    }
    Ok(listable
        .iter()
        .copied()
        .filter(|t| requested.is_empty() || requested.contains(t))
        .collect())
}

pub(super) fn list_config_resources(ctx: &Ctx, req: ListConfigResourcesRequest) -> Reply<ListConfigResourcesResponse> {
    let response = ListConfigResourcesResponse::default();
    let types = match types_to_list(ctx.version, &req.resource_types) {
        Ok(types) => types,
        Err(e) => return Reply::Now(response.with_error_code(ctx.code(&e))),
    };
    let image = ctx.broker.metadata.image();
    let resources = types
        .into_iter()
        .flat_map(|t| names(&image, t).into_iter().map(move |name| (t, name)))
        .map(|(t, name)| {
            ConfigResource::default()
                .with_resource_name(StrBytes::from_string(name))
                .with_resource_type(t)
        })
        .collect();
    Reply::Now(response.with_config_resources(resources))
}

/// The names of the resources of one type.
fn names(image: &MetadataImage, resource_type: i8) -> Vec<String> {
    match resource_type {
        TOPIC => image.topics().map(|t| t.name.clone()).collect(),
        BROKER | BROKER_LOGGER => image.live_brokers().map(|b| b.id.to_string()).collect(),
        // The groups with config overrides, as Kafka lists them.
        GROUP => image.groups_with_configs().map(str::to_string).collect(),
        // No client-metrics subscriptions exist in Sluice.
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_type_named_means_every_type_of_the_version_in_kafkas_order() {
        assert_eq!(types_to_list(0, &[]).unwrap(), [CLIENT_METRICS]);
        assert_eq!(
            types_to_list(1, &[]).unwrap(),
            [GROUP, CLIENT_METRICS, BROKER_LOGGER, BROKER, TOPIC]
        );
    }

    #[test]
    fn named_types_come_in_kafkas_order_once() {
        assert_eq!(types_to_list(1, &[TOPIC, BROKER, TOPIC]).unwrap(), [BROKER, TOPIC]);
    }

    #[test]
    fn a_type_the_version_does_not_list_is_unsupported() {
        for (version, t) in [(1, 0), (1, 1), (1, 7), (0, TOPIC)] {
            let err = types_to_list(version, &[TOPIC, t]).unwrap_err();
            assert!(
                matches!(err, RequestError::UnsupportedResourceType { resource_type, .. } if resource_type == t),
                "v{version} type {t}: {err}"
            );
        }
    }
}
