//! ApiVersions: the API/version table the client negotiates against, and from v3 the features
//! (`features.rs`).

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::ResponseError;

use super::{features, versions, Ctx, Reply};

fn api_keys() -> Vec<ApiVersion> {
    versions::all()
        .map(|(api, range)| {
            ApiVersion::default()
                .with_api_key(api as i16)
                .with_min_version(range.min)
                .with_max_version(range.max)
        })
        .collect()
}

pub(super) fn handle(ctx: &Ctx, _req: ApiVersionsRequest) -> Reply<ApiVersionsResponse> {
    let response = ApiVersionsResponse::default().with_api_keys(api_keys());
    if ctx.version < 3 {
        return Reply::Now(response);
    }
    // Kafka's epoch of the finalized features is the metadata log offset they were read at
    // (clients look at the features again when it grows, e.g. after an UpdateFeatures).
    let applied = ctx.broker.metadata.applied();
    Reply::Now(
        response
            .with_supported_features(features::supported(ctx.version))
            .with_finalized_features(features::finalized(&applied.image))
            .with_finalized_features_epoch(applied.index as i64),
    )
}

/// KIP-511: the answer to an ApiVersions version we do not know, encoded as v0.
pub(super) fn unsupported_version() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_keys())
}
