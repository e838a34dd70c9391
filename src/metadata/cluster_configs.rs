//! Planning changes to the cluster-wide broker defaults: the BROKER config resource "" that
//! `kafka-configs --entity-type brokers --entity-default` alters. Pure functions of the image,
//! like `topics`; the controller commits the records they return.
//!
//! Sluice's broker settings are static (the file and `--override`) but for the one Kafka 4.1+
//! keeps in the metadata log for eligible leader replicas (KIP-966): `min.insync.replicas`. The
//! active controller writes it from its own setting when the log has none, so every broker and
//! every election counts the ISR against the same number, and Kafka's rules hold: it cannot be
//! removed, and a change makes every eligible leader replica ineligible (ELR was computed
//! against the old number), as Kafka's ClearElrRecord does.

use super::image::MetadataImage;
use super::records::MetadataRecord;
use super::topic_config::{self, MIN_INSYNC_REPLICAS};
use super::topics::ConfigChange;
use super::MetadataError;

/// The broker settings that can change at run time, for every broker at once.
pub(crate) const DYNAMIC_CLUSTER_SETTINGS: &[&str] = &[MIN_INSYNC_REPLICAS];

/// Kafka's refusal of a broker-level `min.insync.replicas` while ELR is on.
pub(crate) const BROKER_MIN_ISR_REFUSED: &str =
    "Broker-level min.insync.replicas cannot be altered while ELR is enabled.";

/// IncrementalAlterConfigs / AlterConfigs on the cluster defaults: `changes` applied in order to
/// the current ones (`replace_all` drops every one not named, as the legacy AlterConfigs does),
/// as ClusterConfig records, plus the ELR clearing a new `min.insync.replicas` needs. Names
/// that are not dynamic in Sluice are refused with Kafka's words for a static one.
pub(crate) fn plan_alter_cluster_configs(
    image: &MetadataImage,
    changes: &[(String, ConfigChange)],
    replace_all: bool,
) -> Result<Vec<MetadataRecord>, MetadataError> {
    let current = image.cluster_configs();
    let static_names: Vec<&str> = changes
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|n| !DYNAMIC_CLUSTER_SETTINGS.contains(n))
        .collect();
    if !static_names.is_empty() {
        return Err(MetadataError::InvalidConfig(format!(
            "Cannot update these configs dynamically: Set({})",
            static_names.join(", ")
        )));
    }
    let mut next = if replace_all {
        Default::default()
    } else {
        current.clone()
    };
    for (name, change) in changes {
        match change {
            ConfigChange::Set(v) => {
                // The topic config's rule is the broker setting's (an int of at least 1).
                topic_config::validate(name, v).map_err(MetadataError::InvalidConfig)?;
                next.insert(name.clone(), v.trim().to_string());
            }
            ConfigChange::Delete => {
                next.remove(name);
            }
            ConfigChange::Append(_) | ConfigChange::Subtract(_) => {
                let op = if matches!(change, ConfigChange::Append(_)) {
                    "append"
                } else {
                    "subtract"
                };
                return Err(MetadataError::InvalidConfig(format!(
                    "Config value {op} is not allowed for config key: {name}"
                )));
            }
        }
    }
    if current.contains_key(MIN_INSYNC_REPLICAS) && !next.contains_key(MIN_INSYNC_REPLICAS) {
        return Err(MetadataError::InvalidConfig(
            "Cluster-level min.insync.replicas cannot be removed while ELR is enabled.".into(),
        ));
    }
    let names: std::collections::BTreeSet<&String> = current.keys().chain(next.keys()).collect();
    let mut records: Vec<MetadataRecord> = names
        .into_iter()
        .filter(|n| current.get(*n) != next.get(*n))
        .map(|n| MetadataRecord::ClusterConfig {
            name: n.clone(),
            value: next.get(n).cloned(),
        })
        .collect();
    if records.iter().any(is_min_isr_change) {
        records.push(MetadataRecord::ClearElr { topic_id: None });
    }
    Ok(records)
}

/// Whether `record` changes a `min.insync.replicas` (a topic's or the cluster's), which makes
/// the eligible leader replicas it was counted against stale.
pub(crate) fn is_min_isr_change(record: &MetadataRecord) -> bool {
    match record {
        MetadataRecord::ClusterConfig { name, .. } | MetadataRecord::TopicConfig { name, .. } => {
            name == MIN_INSYNC_REPLICAS
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, v: &str) -> (String, ConfigChange) {
        (name.to_string(), ConfigChange::Set(v.to_string()))
    }

    fn with_min_isr(v: &str) -> MetadataImage {
        let mut image = MetadataImage::default();
        image
            .apply(&MetadataRecord::ClusterConfig {
                name: MIN_INSYNC_REPLICAS.into(),
                value: Some(v.into()),
            })
            .unwrap();
        image
    }

    #[test]
    fn a_new_min_isr_is_recorded_and_clears_every_elr() {
        let image = with_min_isr("1");
        let records = plan_alter_cluster_configs(&image, &[set(MIN_INSYNC_REPLICAS, "2")], false).unwrap();
        assert_eq!(
            records,
            [
                MetadataRecord::ClusterConfig {
                    name: MIN_INSYNC_REPLICAS.into(),
                    value: Some("2".into())
                },
                MetadataRecord::ClearElr { topic_id: None },
            ]
        );
        // The same value again changes nothing, as in Kafka.
        assert!(
            plan_alter_cluster_configs(&image, &[set(MIN_INSYNC_REPLICAS, "1")], false)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn kafkas_refusals() {
        let image = with_min_isr("2");
        let refused = |changes: &[(String, ConfigChange)], replace_all: bool| match plan_alter_cluster_configs(
            &image,
            changes,
            replace_all,
        ) {
            Err(MetadataError::InvalidConfig(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            refused(&[(MIN_INSYNC_REPLICAS.into(), ConfigChange::Delete)], false),
            "Cluster-level min.insync.replicas cannot be removed while ELR is enabled."
        );
        // The legacy AlterConfigs replaces everything: leaving it out removes it.
        assert_eq!(
            refused(&[], true),
            "Cluster-level min.insync.replicas cannot be removed while ELR is enabled."
        );
        assert_eq!(
            refused(&[set("log.dirs", "/x")], false),
            "Cannot update these configs dynamically: Set(log.dirs)"
        );
        assert!(refused(&[set(MIN_INSYNC_REPLICAS, "0")], false).contains("min.insync.replicas"));
        assert_eq!(
            refused(&[(MIN_INSYNC_REPLICAS.into(), ConfigChange::Append("3".into()))], false),
            "Config value append is not allowed for config key: min.insync.replicas"
        );
    }
}
