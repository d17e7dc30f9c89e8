//! ApiVersions (key 18, v0–v3): which APIs and versions this broker
//! serves, taken from the handler registry ([`SUPPORTED_APIS`]), never from
//! a hand-kept list.
//!
//! In: the request (v3+ carries the client's software name and version,
//! which must match Kafka's pattern or the answer is INVALID_REQUEST). Out:
//! the API list and, from v3, the finalized feature levels of the current
//! metadata image (epoch = its offset). A request newer than v3 never gets
//! here: [`crate::kafka::request`] answers it at v0 with UNSUPPORTED_VERSION
//! via [`ApiVersionsHandler::unsupported_version_response`].

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::{ApiVersion, FinalizedFeatureKey};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use super::{Handler, SUPPORTED_APIS};
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Kind, Shape};

/// Serves ApiVersions.
pub struct ApiVersionsHandler;

impl ApiVersionsHandler {
    /// The API list every answer carries.
    fn api_keys() -> Vec<ApiVersion> {
        let mut keys: Vec<ApiVersion> = SUPPORTED_APIS
            .iter()
            .map(|api| {
                ApiVersion::default()
                    .with_api_key(api.api_key as i16)
                    .with_min_version(api.min_version)
                    .with_max_version(api.max_version)
            })
            .collect();
        keys.sort_by_key(|k| k.api_key);
        keys
    }

    /// The v0 answer to an ApiVersions request newer than we serve.
    pub fn unsupported_version_response() -> ApiVersionsResponse {
        ApiVersionsResponse::default()
            .with_error_code(ResponseError::UnsupportedVersion.code())
            .with_api_keys(Self::api_keys())
    }
}

/// Kafka's rule for client software names and versions:
/// `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`.
fn valid_software_field(s: &str) -> bool {
    let bytes = s.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.')
}

impl Handler for ApiVersionsHandler {
    const API_KEY: ApiKey = ApiKey::ApiVersions;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 3;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 3,
        fields: &[field(3, 4, Kind::String), field(3, 4, Kind::String)],
    };
    type Request = ApiVersionsRequest;
    type Response = ApiVersionsResponse;

    async fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: ApiVersionsRequest,
    ) -> ApiVersionsResponse {
        let version = header.request_api_version;
        let mut response = ApiVersionsResponse::default().with_api_keys(Self::api_keys());
        if version >= 3 {
            let name = request.client_software_name.as_str();
            let software_version = request.client_software_version.as_str();
            if !valid_software_field(name) || !valid_software_field(software_version) {
                tracing::debug!(
                    name,
                    software_version,
                    "invalid client software name or version"
                );
                return response.with_error_code(ResponseError::InvalidRequest.code());
            }
            let image = ctx.cache.image();
            if !image.features().is_empty() {
                response.finalized_features_epoch = i64::try_from(image.offset()).unwrap_or(-1);
                response.finalized_features = image
                    .features()
                    .iter()
                    .map(|(name, level)| {
                        FinalizedFeatureKey::default()
                            .with_name(StrBytes::from_string(name.to_string()))
                            .with_min_version_level(level)
                            .with_max_version_level(level)
                    })
                    .collect();
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_fields() {
        assert!(valid_software_field("apache-kafka-java"));
        assert!(valid_software_field("2.3.0"));
        assert!(valid_software_field("a"));
        for bad in ["", "-x", "x-", "x y", "."] {
            assert!(!valid_software_field(bad), "{bad:?}");
        }
    }
}
