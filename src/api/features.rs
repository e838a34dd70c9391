//! The features Sluice reports in ApiVersions v3+ (KIP-584: SupportedFeatures,
//! FinalizedFeatures, FinalizedFeaturesEpoch), which `kafka-features describe` and the Admin's
//! `describeFeatures` show. Each says what Sluice implements, in the meaning Kafka 4.4's
//! server-common `Feature` / `MetadataVersion` give the levels:
//!
//! - `metadata.version` 7 (3.3-IV3): the KRaft metadata Sluice's controller follows — a Raft
//!   quorum with static voters, broker registration with fencing and controlled shutdown,
//!   topic ids. It is also the lowest level Kafka 4 knows. The next levels bring ZooKeeper
//!   migration, tiered storage, SCRAM, delegation tokens and JBOD, which Sluice does not have.
//! - `eligible.leader.replicas.version` 1 (KIP-966): the controller keeps eligible leader
//!   replicas and elects from them, as Kafka 4.1+ does by default (`metadata/elections.rs`).
//!   Always on: UpdateFeatures cannot turn it off here.
//! - `kraft.version` 0: voters fixed by configuration (level 1 is KIP-853's dynamic quorum).
//! - `group.version` 1: KIP-848's consumer rebalance protocol (ConsumerGroupHeartbeat) is
//!   served (`group/consumer/`), as Kafka 4.0+ finalizes it by default.
//! - `transaction.version`, `share.version` (KIP-932), `streams.version` (KIP-1071): 0, as
//!   Sluice has none of these; listed so clients see they cannot be turned on here.
//!
//! As in Kafka, a feature at level 0 is not finalized, and ApiVersions below v4 leaves out
//! features whose lowest level is 0 (older clients refuse such ranges).

use kafka_protocol::messages::api_versions_response::{FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::protocol::StrBytes;

/// (name, lowest level supported, highest level supported and finalized).
const FEATURES: &[(&str, i16, i16)] = &[
    ("eligible.leader.replicas.version", 0, 1),
    ("group.version", 0, 1),
    ("kraft.version", 0, 0),
    ("metadata.version", 7, 7),
    ("share.version", 0, 0),
    ("streams.version", 0, 0),
    ("transaction.version", 0, 0),
];

/// The features an ApiVersions response of `version` lists as supported.
pub(super) fn supported(version: i16) -> Vec<SupportedFeatureKey> {
    FEATURES
        .iter()
        .filter(|(_, min, _)| version >= 4 || *min > 0)
        .map(|&(name, min, max)| {
            SupportedFeatureKey::default()
                .with_name(StrBytes::from_static_str(name))
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect()
}

/// The cluster's finalized features: those above level 0.
pub(super) fn finalized() -> Vec<FinalizedFeatureKey> {
    FEATURES
        .iter()
        .filter(|(_, _, level)| *level > 0)
        .map(|&(name, _, level)| {
            FinalizedFeatureKey::default()
                .with_name(StrBytes::from_static_str(name))
                .with_min_version_level(level)
                .with_max_version_level(level)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_version_elr_and_group_version_are_finalized_and_old_versions_see_no_zero_minimums() {
        let names = |f: Vec<SupportedFeatureKey>| f.into_iter().map(|k| k.name.to_string()).collect::<Vec<_>>();
        assert_eq!(names(supported(3)), ["metadata.version"]);
        assert_eq!(supported(4).len(), FEATURES.len());
        let finalized: Vec<_> = finalized()
            .into_iter()
            .map(|f| (f.name.to_string(), f.max_version_level))
            .collect();
        assert_eq!(
            finalized,
            [
                ("eligible.leader.replicas.version".to_string(), 1),
                ("group.version".to_string(), 1),
                ("metadata.version".to_string(), 7)
            ]
        );
    }
}
