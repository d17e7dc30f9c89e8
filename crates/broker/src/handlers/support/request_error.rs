//! [`RequestError`]: why one request frame could not be served. The
//! listener ([`crate::kafka`]) closes the connection on it, with a log line;
//! it never reaches a client as an error code.

use kafka_protocol::messages::ApiKey;

/// Why one request frame could not be served.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("a {len}-byte frame is too short for a request header")]
    ShortFrame { len: usize },
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("API {0:?} is not served by this listener")]
    UnsupportedApi(ApiKey),
    #[error("{api:?} v{version} is not supported (this broker serves v{min} to v{max})")]
    UnsupportedVersion {
        api: ApiKey,
        version: i16,
        min: i16,
        max: i16,
    },
    #[error("undecodable {api:?} v{version} {part}: {reason}")]
    Malformed {
        api: ApiKey,
        version: i16,
        part: &'static str,
        reason: String,
    },
    #[error("a {api:?} request that expects no response failed")]
    FailedWithoutResponse { api: ApiKey },
    #[error("cannot encode the {api:?} v{version} response: {reason}")]
    Encode {
        api: ApiKey,
        version: i16,
        reason: String,
    },
}
