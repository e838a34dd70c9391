//! Group configs (Kafka's GROUP config resource, KIP-848/KIP-932 `GroupConfig`): the per-group
//! overrides `kafka-configs --entity-type groups` and IncrementalAlterConfigs on a GROUP set,
//! kept in the metadata log (GroupConfig records) so every broker sees the same values. Sluice
//! serves the share-group ones; a name it does not know is refused with Kafka's words.
//!
//! Pure functions of the image and the settings, like `topics`; the controller commits the
//! records they return.

use std::collections::BTreeMap;

use super::image::MetadataImage;
use super::records::MetadataRecord;
use super::topic_config::ConfigType;
use super::topics::ConfigChange;
use super::MetadataError;
use crate::config::Settings;

pub(crate) const SHARE_AUTO_OFFSET_RESET: &str = "share.auto.offset.reset";
pub(crate) const SHARE_RECORD_LOCK_DURATION_MS: &str = "share.record.lock.duration.ms";
pub(crate) const SHARE_DELIVERY_COUNT_LIMIT: &str = "share.delivery.count.limit";
pub(crate) const SHARE_SESSION_TIMEOUT_MS: &str = "share.session.timeout.ms";
pub(crate) const SHARE_HEARTBEAT_INTERVAL_MS: &str = "share.heartbeat.interval.ms";

/// One group config: its name, type, documentation, and default (from the broker's settings).
#[derive(Debug, Clone)]
pub(crate) struct GroupConfigDef {
    pub(crate) name: &'static str,
    pub(crate) config_type: ConfigType,
    pub(crate) doc: &'static str,
    pub(crate) default: String,
}

/// The group configs Sluice serves, with their defaults under `settings`.
pub(crate) fn definitions(settings: &Settings) -> Vec<GroupConfigDef> {
    let def = |name, config_type, doc, default: String| GroupConfigDef {
        name,
        config_type,
        doc,
        default,
    };
    vec![
        def(
            SHARE_AUTO_OFFSET_RESET,
            ConfigType::String,
            "Where a share group starts reading a partition it has no state for: earliest or latest.",
            "latest".into(),
        ),
        def(
            SHARE_RECORD_LOCK_DURATION_MS,
            ConfigType::Int,
            "How long a share consumer holds a record it acquired before it is delivered again.",
            settings.group_share_record_lock_duration_ms.to_string(),
        ),
        def(
            SHARE_DELIVERY_COUNT_LIMIT,
            ConfigType::Int,
            "How many times a record is delivered before it is archived.",
            settings.group_share_delivery_count_limit.to_string(),
        ),
        def(
            SHARE_SESSION_TIMEOUT_MS,
            ConfigType::Int,
            "How long a share group member may go without a heartbeat.",
            settings.group_share_session_timeout_ms.to_string(),
        ),
        def(
            SHARE_HEARTBEAT_INTERVAL_MS,
            ConfigType::Int,
            "How often a share group member is asked to heartbeat.",
            settings.group_share_heartbeat_interval_ms.to_string(),
        ),
    ]
}

/// Checks one value, with Kafka's bounds for the share-group configs.
fn validate(settings: &Settings, name: &str, value: &str) -> Result<(), String> {
    let int_in = |lo: i64, hi: i64| -> Result<(), String> {
        match value.trim().parse::<i64>() {
            Ok(v) if (lo..=hi).contains(&v) => Ok(()),
            _ => Err(format!(
                "Invalid value {value} for configuration {name}: must be in [{lo}, {hi}]"
            )),
        }
    };
    match name {
        SHARE_AUTO_OFFSET_RESET => match value.trim() {
            "earliest" | "latest" => Ok(()),
            _ => Err(format!(
                "Invalid value {value} for configuration {name}: must be earliest or latest"
            )),
        },
        SHARE_RECORD_LOCK_DURATION_MS => int_in(1000, 3_600_000),
        SHARE_DELIVERY_COUNT_LIMIT => int_in(2, 10),
        SHARE_SESSION_TIMEOUT_MS => int_in(1, i64::from(i32::MAX)),
        SHARE_HEARTBEAT_INTERVAL_MS => int_in(1, i64::from(i32::MAX)),
        _ if definitions(settings).iter().any(|d| d.name == name) => Ok(()),
        _ => Err(format!("Unknown group config name: {name}")),
    }
}

/// IncrementalAlterConfigs / AlterConfigs on a group: the overrides after `changes` (applied in
/// order; `replace_all` drops every one not named), as GroupConfig records.
pub(crate) fn plan_alter_group_configs(
    image: &MetadataImage,
    settings: &Settings,
    group: &str,
    changes: &[(String, ConfigChange)],
    replace_all: bool,
) -> Result<Vec<MetadataRecord>, MetadataError> {
    if group.is_empty() {
        return Err(MetadataError::InvalidRequest("Group name must not be empty".into()));
    }
    let current = image.group_configs(group).cloned().unwrap_or_default();
    let mut next: BTreeMap<String, String> = if replace_all { BTreeMap::new() } else { current.clone() };
    for (name, change) in changes {
        match change {
            ConfigChange::Set(v) => {
                validate(settings, name, v).map_err(MetadataError::InvalidConfig)?;
                next.insert(name.clone(), v.trim().to_string());
            }
            ConfigChange::Delete => {
                validate(settings, name, "").or_else(|e| match e.starts_with("Unknown") {
                    true => Err(MetadataError::InvalidConfig(e)),
                    false => Ok(()),
                })?;
                next.remove(name);
            }
            ConfigChange::Append(_) | ConfigChange::Subtract(_) => {
                return Err(MetadataError::InvalidConfig(format!(
                    "Config value append/subtract is not allowed for config key: {name}"
                )));
            }
        }
    }
    let names: std::collections::BTreeSet<&String> = current.keys().chain(next.keys()).collect();
    Ok(names
        .into_iter()
        .filter(|n| current.get(*n) != next.get(*n))
        .map(|n| MetadataRecord::GroupConfig {
            group: group.to_string(),
            name: n.clone(),
            value: next.get(n).cloned(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, v: &str) -> (String, ConfigChange) {
        (name.to_string(), ConfigChange::Set(v.to_string()))
    }

    #[test]
    fn share_auto_offset_reset_is_recorded_and_applied() {
        let settings = Settings::defaults();
        let mut image = MetadataImage::default();
        let records = plan_alter_group_configs(
            &image,
            &settings,
            "g",
            &[set(SHARE_AUTO_OFFSET_RESET, "earliest")],
            false,
        )
        .unwrap();
        for r in &records {
            image.apply(r).unwrap();
        }
        assert_eq!(image.group_configs("g").unwrap()[SHARE_AUTO_OFFSET_RESET], "earliest");
        let again = plan_alter_group_configs(
            &image,
            &settings,
            "g",
            &[set(SHARE_AUTO_OFFSET_RESET, "earliest")],
            false,
        )
        .unwrap();
        assert!(again.is_empty(), "the same value changes nothing");
        let del = plan_alter_group_configs(
            &image,
            &settings,
            "g",
            &[(SHARE_AUTO_OFFSET_RESET.into(), ConfigChange::Delete)],
            false,
        )
        .unwrap();
        for r in &del {
            image.apply(r).unwrap();
        }
        assert!(image.group_configs("g").is_none());
    }

    #[test]
    fn bad_values_and_unknown_names_are_refused() {
        let settings = Settings::defaults();
        let image = MetadataImage::default();
        for change in [
            set(SHARE_AUTO_OFFSET_RESET, "middle"),
            set(SHARE_DELIVERY_COUNT_LIMIT, "1"),
            set("no.such.config", "1"),
        ] {
            let r = plan_alter_group_configs(&image, &settings, "g", &[change], false);
            assert!(matches!(r, Err(MetadataError::InvalidConfig(_))), "{r:?}");
        }
    }
}
