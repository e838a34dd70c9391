//! The cluster's feature levels (KIP-584): what Sluice supports of each feature, what is
//! finalized, and the controller's checks of an UpdateFeatures (Kafka's
//! `FeatureControlManager`). A feature whose level Sluice can change lives in the metadata log
//! as `FeatureLevel` records; the others are fixed at what Sluice implements.
//!
//! The levels, in the meaning Kafka 4.4's server-common `Feature` / `MetadataVersion` give
//! them:
//! - `metadata.version` 7 (3.3-IV3): the KRaft metadata Sluice's controller follows (a Raft
//!   quorum with static voters, broker registration with fencing and controlled shutdown, topic
//!   ids), the lowest level Kafka 4 knows. Later levels bring ZooKeeper migration, tiered
//!   storage, SCRAM, delegation tokens and JBOD, which Sluice does not have. Fixed.
//! - `eligible.leader.replicas.version` 1 (KIP-966): the controller keeps eligible leader
//!   replicas and elects from them, as Kafka 4.1+ does by default. Fixed on.
//! - `transaction.version` 0-2, in the log: 1 writes `__transaction_state` values at their
//!   flexible version, 2 is transactions v2 (KIP-890 part 2: clients stop sending
//!   AddPartitionsToTxn, the coordinator bumps the epoch at every EndTxn). A new cluster
//!   starts at 2, as Kafka 4's `kafka-storage format` does (its latest production metadata
//!   version bootstraps TV_2); a cluster created before the feature existed stays at 0 until
//!   `kafka-features upgrade`. Kafka ties level 2 to metadata.version 4.0-IV2; Sluice's fixed
//!   metadata.version cannot move, so that dependency is not checked.
//! - `group.version` 1 (KIP-848: the consumer rebalance protocol is served) and
//!   `share.version` 1 (KIP-932: share groups are served), as a Kafka 4 cluster reports them
//!   when those protocols are on. Fixed on.
//! - `kraft.version` 0 (voters fixed by configuration), `streams.version` (KIP-1071): 0, as
//!   Sluice has neither; listed so clients see they cannot be turned on here.
//!
//! May call: nothing but the image. Must never: write anything (the controller commits what
//! [`plan_update`] returns).

use super::{MetadataError, MetadataImage, MetadataRecord};

/// Kafka's name of the transaction protocol's feature.
pub(crate) const TRANSACTION_VERSION: &str = "transaction.version";

/// Where a feature's finalized level comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finalized {
    /// Always this level.
    Fixed(i16),
    /// The metadata log's `FeatureLevel` record (0 without one); a new cluster starts at
    /// `bootstrap`.
    Log { bootstrap: i16 },
}

/// One feature: the levels Sluice supports, and its finalized level.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Feature {
    pub(crate) name: &'static str,
    pub(crate) min: i16,
    pub(crate) max: i16,
    finalized: Finalized,
}

/// Every feature Sluice reports, by name.
pub(crate) const FEATURES: &[Feature] = &[
    Feature {
        name: "eligible.leader.replicas.version",
        min: 0,
        max: 1,
        finalized: Finalized::Fixed(1),
    },
    Feature {
        name: "group.version",
        min: 0,
        max: 1,
        finalized: Finalized::Fixed(1),
    },
    Feature {
        name: "kraft.version",
        min: 0,
        max: 0,
        finalized: Finalized::Fixed(0),
    },
    Feature {
        name: "metadata.version",
        min: 7,
        max: 7,
        finalized: Finalized::Fixed(7),
    },
    Feature {
        name: "share.version",
        min: 0,
        max: 1,
        finalized: Finalized::Fixed(1),
    },
    Feature {
        name: "streams.version",
        min: 0,
        max: 0,
        finalized: Finalized::Fixed(0),
    },
    Feature {
        name: TRANSACTION_VERSION,
        min: 0,
        max: 2,
        finalized: Finalized::Log { bootstrap: 2 },
    },
];

fn feature(name: &str) -> Option<&'static Feature> {
    FEATURES.iter().find(|f| f.name == name)
}

/// The finalized level of feature `name` (0 for one Sluice does not know).
pub(crate) fn finalized_level(image: &MetadataImage, name: &str) -> i16 {
    match feature(name).map(|f| f.finalized) {
        Some(Finalized::Fixed(level)) => level,
        Some(Finalized::Log { .. }) => image.feature_level(name),
        None => 0,
    }
}

/// The finalized features: those above level 0, as Kafka reports them.
pub(crate) fn finalized(image: &MetadataImage) -> Vec<(&'static str, i16)> {
    FEATURES
        .iter()
        .map(|f| (f.name, finalized_level(image, f.name)))
        .filter(|(_, level)| *level > 0)
        .collect()
}

/// The records a new cluster's first metadata change carries: its features' starting levels.
pub(crate) fn bootstrap_records() -> Vec<MetadataRecord> {
    FEATURES
        .iter()
        .filter_map(|f| match f.finalized {
            Finalized::Log { bootstrap } if bootstrap > 0 => Some(MetadataRecord::FeatureLevel {
                name: f.name.to_string(),
                level: bootstrap,
            }),
            _ => None,
        })
        .collect()
}

/// How an UpdateFeatures may move a level (Kafka's `FeatureUpdate.UpgradeType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum UpgradeType {
    Upgrade,
    SafeDowngrade,
    UnsafeDowngrade,
    Unknown,
}

impl UpgradeType {
    /// From the request's code (v1+: 1 upgrade, 2 safe, 3 unsafe downgrade).
    pub(crate) fn from_code(code: i8) -> UpgradeType {
        match code {
            1 => UpgradeType::Upgrade,
            2 => UpgradeType::SafeDowngrade,
            3 => UpgradeType::UnsafeDowngrade,
            _ => UpgradeType::Unknown,
        }
    }
}

/// One feature update asked for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct FeatureUpdate {
    pub(crate) name: String,
    pub(crate) level: i16,
    pub(crate) upgrade_type: UpgradeType,
}

/// The records that carry out `updates`, all or none: the first refused update refuses the
/// request (INVALID_UPDATE_VERSION, Kafka's message). A fixed feature may be "updated" only to
/// its level, which changes nothing.
pub(crate) fn plan_update(
    image: &MetadataImage,
    updates: &[FeatureUpdate],
) -> Result<Vec<MetadataRecord>, MetadataError> {
    let mut records = Vec::new();
    for u in updates {
        let refuse = |why: &str| {
            MetadataError::InvalidUpdateVersion(format!(
                "Invalid update version {} for feature {}. {why}",
                u.level, u.name
            ))
        };
        if u.upgrade_type == UpgradeType::Unknown {
            return Err(refuse("The controller does not support the given upgrade type."));
        }
        if u.level < 0 {
            return Err(refuse("A feature version cannot be less than 0."));
        }
        let Some(f) = feature(&u.name) else {
            return Err(refuse("The controller does not support the given feature."));
        };
        let current = finalized_level(image, f.name);
        let supported = match f.finalized {
            Finalized::Fixed(level) => u.level == level,
            Finalized::Log { .. } => (f.min..=f.max).contains(&u.level),
        };
        if !supported {
            return Err(refuse(&format!(
                "The controller does not support the given feature version: Sluice supports {} at {}.",
                f.name,
                match f.finalized {
                    Finalized::Fixed(level) => level.to_string(),
                    Finalized::Log { .. } => format!("{} to {}", f.min, f.max),
                }
            )));
        }
        if u.level < current && u.upgrade_type == UpgradeType::Upgrade {
            return Err(refuse(
                "Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.",
            ));
        }
        if u.level > current && u.upgrade_type != UpgradeType::Upgrade {
            return Err(refuse("Can't downgrade to a newer version."));
        }
        if matches!(f.finalized, Finalized::Log { .. }) && u.level != current {
            records.push(MetadataRecord::FeatureLevel {
                name: f.name.to_string(),
                level: u.level,
            });
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(name: &str, level: i16, upgrade_type: UpgradeType) -> FeatureUpdate {
        FeatureUpdate {
            name: name.into(),
            level,
            upgrade_type,
        }
    }

    fn applied(records: Vec<MetadataRecord>) -> MetadataImage {
        let mut image = MetadataImage::default();
        for r in &records {
            image.apply(r).expect("applies");
        }
        image
    }

    #[test]
    fn a_new_cluster_finalizes_transactions_v2_and_an_old_one_has_none() {
        let new = applied(bootstrap_records());
        assert_eq!(finalized_level(&new, TRANSACTION_VERSION), 2);
        assert!(finalized(&new).contains(&(TRANSACTION_VERSION, 2)));
        let old = MetadataImage::default();
        assert_eq!(finalized_level(&old, TRANSACTION_VERSION), 0);
        assert_eq!(
            finalized(&old),
            [
                ("eligible.leader.replicas.version", 1),
                ("group.version", 1),
                ("metadata.version", 7),
                ("share.version", 1)
            ]
        );
    }

    #[test]
    fn transaction_version_moves_up_freely_and_down_only_as_a_downgrade() {
        let old = MetadataImage::default();
        let up = plan_update(&old, &[update(TRANSACTION_VERSION, 2, UpgradeType::Upgrade)]).unwrap();
        let image = applied(up);
        assert_eq!(finalized_level(&image, TRANSACTION_VERSION), 2);
        let refused = plan_update(&image, &[update(TRANSACTION_VERSION, 0, UpgradeType::Upgrade)]);
        assert!(matches!(refused, Err(MetadataError::InvalidUpdateVersion(_))));
        let down = plan_update(&image, &[update(TRANSACTION_VERSION, 0, UpgradeType::SafeDowngrade)]).unwrap();
        assert_eq!(finalized_level(&applied(down), TRANSACTION_VERSION), 0);
        assert!(
            plan_update(&image, &[update(TRANSACTION_VERSION, 2, UpgradeType::Upgrade)])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn unsupported_levels_fixed_features_and_unknown_names_are_refused() {
        let image = MetadataImage::default();
        for u in [
            update(TRANSACTION_VERSION, 3, UpgradeType::Upgrade),
            update("metadata.version", 8, UpgradeType::Upgrade),
            update("eligible.leader.replicas.version", 0, UpgradeType::SafeDowngrade),
            update("no.such.version", 1, UpgradeType::Upgrade),
            update(TRANSACTION_VERSION, 1, UpgradeType::Unknown),
            update(TRANSACTION_VERSION, 1, UpgradeType::SafeDowngrade),
        ] {
            assert!(
                matches!(
                    plan_update(&image, std::slice::from_ref(&u)),
                    Err(MetadataError::InvalidUpdateVersion(_))
                ),
                "{u:?}"
            );
        }
        assert!(
            plan_update(&image, &[update("metadata.version", 7, UpgradeType::Upgrade)])
                .unwrap()
                .is_empty()
        );
    }
}
