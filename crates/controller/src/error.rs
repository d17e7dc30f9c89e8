//! The error a controller operation answers with: a Kafka error code, a
//! sentence, and (for NOT_CONTROLLER) where the leader is.

use kafka_protocol::ResponseError;
use kraft_metadata::{InvalidTopicName, TopicConfigError};
use kraft_proto::controller::{ControllerResponse, LeaderHint};

use crate::error_codes::{self, error_name};

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
            code: error_codes::NOT_CONTROLLER,
            message,
            leader: Some(leader),
        }
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

/// Kafka's code for `error`, as the controller RPCs carry it (an `i32`
/// field; Kafka's codes are `i16`).
pub(crate) fn code(error: ResponseError) -> i32 {
    i32::from(error.code())
}

/// An illegal topic name is INVALID_TOPIC_EXCEPTION, with Kafka's message.
impl From<InvalidTopicName> for ControllerError {
    fn from(e: InvalidTopicName) -> Self {
        ControllerError::new(code(ResponseError::InvalidTopicException), e.0)
    }
}

/// An unknown topic config key or a bad value is INVALID_CONFIG, with
/// Kafka's message.
impl From<TopicConfigError> for ControllerError {
    fn from(e: TopicConfigError) -> Self {
        ControllerError::new(code(ResponseError::InvalidConfig), e.to_string())
    }
}
