//! The features Sluice reports in ApiVersions v3+ (KIP-584: SupportedFeatures,
//! FinalizedFeatures, FinalizedFeaturesEpoch), which `kafka-features describe` and the Admin's
//! `describeFeatures` show, and UpdateFeatures (`kafka-features upgrade|downgrade`), which the
//! active controller carries out. What each feature and level means, and which can change, is
//! `metadata::features`.
//!
//! As in Kafka, a feature at level 0 is not finalized, and ApiVersions below v4 leaves out
//! features whose lowest level is 0 (older clients refuse such ranges).

use kafka_protocol::messages::api_versions_response::{FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
use kafka_protocol::messages::{UpdateFeaturesRequest, UpdateFeaturesResponse};
use kafka_protocol::protocol::StrBytes;

use super::{Ctx, Reply};
use crate::controller::{self, Command};
use crate::error::KafkaCode;
use crate::metadata::features::{self, FeatureUpdate, UpgradeType, FEATURES};
use crate::metadata::MetadataImage;

/// The features an ApiVersions response of `version` lists as supported.
pub(super) fn supported(version: i16) -> Vec<SupportedFeatureKey> {
    FEATURES
        .iter()
        .filter(|f| version >= 4 || f.min > 0)
        .map(|f| {
            SupportedFeatureKey::default()
                .with_name(StrBytes::from_static_str(f.name))
                .with_min_version(f.min)
                .with_max_version(f.max)
        })
        .collect()
}

/// The cluster's finalized features: those above level 0.
pub(super) fn finalized(image: &MetadataImage) -> Vec<FinalizedFeatureKey> {
    features::finalized(image)
        .into_iter()
        .map(|(name, level)| {
            FinalizedFeatureKey::default()
                .with_name(StrBytes::from_static_str(name))
                .with_min_version_level(level)
                .with_max_version_level(level)
        })
        .collect()
}

/// UpdateFeatures: every update or none, answered once this broker has applied it (so the
/// client's next ApiVersions shows the new levels). As Kafka's controller answers: a refusal
/// is the top-level error, "failed for all features"; success lists each feature up to v1.
pub(super) fn update_features(ctx: &Ctx, req: UpdateFeaturesRequest) -> Reply<UpdateFeaturesResponse> {
    let version = ctx.version;
    let updates: Vec<FeatureUpdate> = req
        .feature_updates
        .iter()
        .map(|u| FeatureUpdate {
            name: u.feature.to_string(),
            level: u.max_version_level,
            // v0 has only "allow downgrade".
            upgrade_type: match (version, u.allow_downgrade) {
                (0, true) => UpgradeType::SafeDowngrade,
                (0, false) => UpgradeType::Upgrade,
                _ => UpgradeType::from_code(u.upgrade_type),
            },
        })
        .collect();
    let names: Vec<StrBytes> = req.feature_updates.iter().map(|u| u.feature.clone()).collect();
    let ctx = ctx.clone();
    Reply::Later(Box::pin(async move {
        let command = Command::UpdateFeatures {
            updates,
            validate_only: req.validate_only,
        };
        let refused = |code: i16, message: String| {
            UpdateFeaturesResponse::default()
                .with_error_code(code)
                .with_error_message(Some(StrBytes::from_string(format!(
                    "The update failed for all features since the following feature had an error: {message}"
                ))))
        };
        match ctx.broker.submit_published(command).await {
            Ok(controller::Reply::Committed { .. }) => {
                let results = if version <= 1 {
                    names
                        .into_iter()
                        .map(|name| UpdatableFeatureResult::default().with_feature(name))
                        .collect()
                } else {
                    Vec::new()
                };
                UpdateFeaturesResponse::default().with_results(results)
            }
            Ok(other) => refused(
                ctx.count(kafka_protocol::ResponseError::UnknownServerError),
                format!("unexpected controller reply {other:?}"),
            ),
            Err(e) => refused(ctx.count(e.kafka_error()), e.to_string()),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_api_versions_see_no_zero_minimums() {
        let names = |f: Vec<SupportedFeatureKey>| f.into_iter().map(|k| k.name.to_string()).collect::<Vec<_>>();
        assert_eq!(names(supported(3)), ["metadata.version"]);
        assert_eq!(supported(4).len(), FEATURES.len());
        let tv = supported(4)
            .into_iter()
            .find(|f| f.name.as_str() == features::TRANSACTION_VERSION)
            .map(|f| (f.min_version, f.max_version));
        assert_eq!(tv, Some((0, 2)));
    }
}
