//! One request frame in, one response frame out.
//!
//! In: a frame from [`FramedConnection`](kraft_kafka_client::frame::FramedConnection).
//! The API key, version and correlation id sit at fixed offsets, so they are
//! read before anything is decoded; the key must be one a registered
//! handler serves ([`crate::handlers::supported_api`]) and the version must
//! be in that handler's range. The one exception is ApiVersions with a
//! version newer than ours: like Kafka, the broker answers it at v0 with
//! UNSUPPORTED_VERSION and its version list, so the client can pick a
//! version both sides know. Then the header is decoded (its version depends
//! on the API and version) and the handler runs.
//!
//! Out: the encoded response header and body, or a [`RequestError`] that
//! makes the caller close the connection.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;

use crate::context::BrokerContext;
use crate::handlers::support::{encode_response, RequestError};
use crate::handlers::{self, api_versions::ApiVersionsHandler};

/// The fields every request header starts with, read without decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FramePrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

impl FramePrefix {
    /// Reads the first 8 bytes of a request frame.
    pub fn read(frame: &[u8]) -> Result<FramePrefix, RequestError> {
        match frame {
            [k0, k1, v0, v1, c0, c1, c2, c3, ..] => Ok(FramePrefix {
                api_key: i16::from_be_bytes([*k0, *k1]),
                api_version: i16::from_be_bytes([*v0, *v1]),
                correlation_id: i32::from_be_bytes([*c0, *c1, *c2, *c3]),
            }),
            _ => Err(RequestError::ShortFrame { len: frame.len() }),
        }
    }
}

/// Serves one request frame and returns the response frame's payload
/// (`None` for a request the client expects no response to).
pub async fn serve_request(
    ctx: &BrokerContext,
    mut frame: Bytes,
) -> Result<Option<BytesMut>, RequestError> {
    let prefix = FramePrefix::read(&frame)?;
    let api = ApiKey::try_from(prefix.api_key)
        .map_err(|_| RequestError::UnknownApiKey(prefix.api_key))?;
    let served = handlers::supported_api(api).ok_or(RequestError::UnsupportedApi(api))?;
    let version = prefix.api_version;
    if version < served.min_version || version > served.max_version {
        if api == ApiKey::ApiVersions && version > served.max_version {
            tracing::debug!(
                version,
                "ApiVersions request newer than ours; answering at v0"
            );
            let response = ApiVersionsHandler::unsupported_version_response();
            return encode_response(api, 0, prefix.correlation_id, &response).map(Some);
        }
        return Err(RequestError::UnsupportedVersion {
            api,
            version,
            min: served.min_version,
            max: served.max_version,
        });
    }
    let header =
        RequestHeader::decode(&mut frame, api.request_header_version(version)).map_err(|e| {
            RequestError::Malformed {
                api,
                version,
                part: "header",
                reason: e.to_string(),
            }
        })?;
    handlers::dispatch(ctx, api, &header, frame).await
}
