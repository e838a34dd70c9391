//! ApiVersions: the API/version table the client negotiates against.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::ResponseError;

use super::{versions, Ctx, Reply};

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

pub(super) fn handle(_ctx: &Ctx, _req: ApiVersionsRequest) -> Reply<ApiVersionsResponse> {
    Reply::Now(ApiVersionsResponse::default().with_api_keys(api_keys()))
}

/// KIP-511: the answer to an ApiVersions version we do not know, encoded as v0.
pub(super) fn unsupported_version() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_keys())
}
