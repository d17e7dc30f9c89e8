//! Errors of the Kafka listener. None of them reaches a client as an error
//! code: each ends its connection, with a log line saying why. Per-item
//! problems (a bad topic name, an unknown topic) are error codes inside a
//! response and never show up here.

use kafka_protocol::messages::ApiKey;
use kraft_kafka_client::frame::FrameError;

/// Why a connection stopped reading frames.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame size {size} is outside 0..={max} (socket.request.max.bytes)")]
    FrameSize { size: i32, max: usize },
    #[error("the peer closed the connection in the middle of a frame ({buffered} bytes buffered)")]
    EofMidFrame { buffered: usize },
    #[error(transparent)]
    Request(#[from] RequestError),
}

impl From<FrameError> for ConnectionError {
    fn from(error: FrameError) -> ConnectionError {
        match error {
            FrameError::Io(e) => ConnectionError::Io(e),
            FrameError::FrameSize { size, max } => ConnectionError::FrameSize { size, max },
            FrameError::EofMidFrame { buffered } => ConnectionError::EofMidFrame { buffered },
        }
    }
}

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
