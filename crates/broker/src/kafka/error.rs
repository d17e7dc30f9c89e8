//! Errors of the Kafka listener. None of them reaches a client as an error
//! code: each ends its connection, with a log line saying why. Per-item
//! problems (a bad topic name, an unknown topic) are error codes inside a
//! response and never show up here.

use kraft_kafka_client::frame::FrameError;

use crate::handlers::support::RequestError;

/// Why a connection stopped reading frames.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame size {size} is outside 0..={max} (socket.request.max.bytes)")]
    FrameSize { size: i32, max: usize },
    #[error("the peer closed the connection in the middle of a frame ({buffered} bytes buffered)")]
    EofMidFrame { buffered: usize },
    #[error("no activity for {0:?} (connections.max.idle.ms)")]
    Idle(std::time::Duration),
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
