//! The error a controller operation answers with: a Kafka error code, a
//! sentence, and (for NOT_CONTROLLER) where the leader is. It is part of the
//! CONTROLLER wire, so it lives in `kraft-rpc`; re-exported here so the
//! controller's modules name it `crate::error::ControllerError`. The
//! conversions from kraft-metadata's rule errors live here, as functions
//! (neither type is this crate's, so they cannot be `From` impls).

use kafka_protocol::ResponseError;
use kraft_metadata::{InvalidTopicName, TopicConfigError};

pub use kraft_rpc::error_code as code;
pub use kraft_rpc::ControllerError;

/// An illegal topic name is INVALID_TOPIC_EXCEPTION, with Kafka's message.
pub(crate) fn invalid_topic_name(e: InvalidTopicName) -> ControllerError {
    ControllerError::new(code(ResponseError::InvalidTopicException), e.0)
}

/// An unknown topic config key or a bad value is INVALID_CONFIG, with
/// Kafka's message.
pub(crate) fn invalid_config(e: TopicConfigError) -> ControllerError {
    ControllerError::new(code(ResponseError::InvalidConfig), e.to_string())
}
