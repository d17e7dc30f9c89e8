//! The errors of the controller RPCs.
//!
//! [`ControllerError`] is what a controller operation answers with: a Kafka
//! error code, a sentence, and (for NOT_CONTROLLER) where the leader is. It
//! travels in a `ControllerResponse` ([`ControllerError::into_response`] on
//! the server, `From<&ControllerResponse>` on the client).
//! [`ClientError`] is what a client call can end in: the server's
//! `ControllerError`, or a connection that failed, closed, sent garbage, or
//! found no active controller in time.

use std::time::Duration;

use kafka_protocol::ResponseError;
use kraft_proto::controller::{ControllerResponse, LeaderHint};

use crate::codes::{error_code, error_name};

/// The error a controller operation answers with: a Kafka error code, a
/// sentence, and (for NOT_CONTROLLER) where the leader is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", error_name(*code))]
pub struct ControllerError {
    pub code: i32,
    pub message: String,
    pub leader: Option<LeaderHint>,
}

impl ControllerError {
    pub fn new(code: i32, message: impl Into<String>) -> ControllerError {
        ControllerError {
            code,
            message: message.into(),
            leader: None,
        }
    }

    pub fn not_controller(leader: LeaderHint) -> ControllerError {
        let message = if leader.leader_id >= 0 {
            format!(
                "this node is not the active controller; node {} at {} is",
                leader.leader_id, leader.address
            )
        } else {
            "this node is not the active controller, and no leader is known yet".to_string()
        };
        ControllerError {
            code: error_code(ResponseError::NotController),
            message,
            leader: Some(leader),
        }
    }

    /// Whether this error carries `error`'s code.
    pub fn is(&self, error: ResponseError) -> bool {
        self.code == error_code(error)
    }

    /// The response frame carrying this error.
    pub fn into_response(self, correlation_id: u64) -> ControllerResponse {
        ControllerResponse {
            correlation_id,
            error_code: self.code,
            error_message: self.message,
            leader: self.leader,
            committed_offset: 0,
            body: None,
        }
    }
}

impl From<&ControllerResponse> for ControllerError {
    fn from(resp: &ControllerResponse) -> Self {
        ControllerError {
            code: resp.error_code,
            message: resp.error_message.clone(),
            leader: resp.leader.clone(),
        }
    }
}

/// How a call to a CONTROLLER listener failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{addr} closed the connection")]
    Closed { addr: String },
    #[error("{addr} sent an undecodable response: {source}")]
    Decode {
        addr: String,
        #[source]
        source: prost::DecodeError,
    },
    #[error("{addr} answered request {got} where request {expected} was next")]
    OutOfOrder {
        addr: String,
        expected: u64,
        got: u64,
    },
    #[error(transparent)]
    Server(#[from] ControllerError),
    #[error("no active controller answered within {waited:?} (last error: {})", last_error.as_deref().unwrap_or("none"))]
    Timeout {
        waited: Duration,
        last_error: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_starts_with_kafkas_name() {
        let e = ControllerError::new(error_code(ResponseError::TopicAlreadyExists), "taken");
        assert_eq!(e.to_string(), "TOPIC_ALREADY_EXISTS: taken");
        assert!(e.is(ResponseError::TopicAlreadyExists));
        assert!(!e.is(ResponseError::NotController));
    }

    #[test]
    fn not_controller_round_trips_through_a_response() {
        let hint = LeaderHint {
            leader_id: 2,
            address: "localhost:9093".to_string(),
            ..Default::default()
        };
        let e = ControllerError::not_controller(hint);
        assert!(e.is(ResponseError::NotController));
        let response = e.clone().into_response(7);
        assert_eq!(response.correlation_id, 7);
        assert_eq!(ControllerError::from(&response), e);
    }
}
