//! What every admin write shares: sending a request to the controller,
//! turning its failures into Kafka error codes, and waiting until this
//! broker's cache shows the committed result.
//!
//! In: a controller request body and a deadline. Out: the controller's
//! response, or an [`ItemError`] (code + message) that the handler puts on
//! each affected item of its response.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::protocol::StrBytes;
use kraft_proto::controller::{controller_request::Body, ControllerResponse};
use kraft_rpc::ClientError;
use tokio::time::Instant;

use crate::context::BrokerContext;

/// An error code and message for one item of a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemError {
    pub code: i16,
    pub message: String,
}

impl ItemError {
    pub fn new(error: ResponseError, message: impl Into<String>) -> ItemError {
        ItemError {
            code: error.code(),
            message: message.into(),
        }
    }

    /// The message as a response field.
    pub fn message(&self) -> Option<StrBytes> {
        Some(StrBytes::from_string(self.message.clone()))
    }
}

/// A controller error code (i32 on the internal protocol) as a Kafka code.
pub fn kafka_code(code: i32) -> i16 {
    i16::try_from(code).unwrap_or(ResponseError::UnknownServerError.code())
}

/// A failed controller call as the error its items get. Like Kafka's
/// forwarding: no active controller within the deadline is
/// REQUEST_TIMED_OUT; the controller's own errors (NOT_CONTROLLER included)
/// pass through.
pub fn client_error(e: &ClientError) -> ItemError {
    match e {
        ClientError::Server(e) => ItemError {
            code: kafka_code(e.code),
            message: e.message.clone(),
        },
        ClientError::Timeout { .. } | ClientError::Io { .. } | ClientError::Closed { .. } => {
            ItemError::new(ResponseError::RequestTimedOut, e.to_string())
        }
        ClientError::Decode { .. } | ClientError::OutOfOrder { .. } => {
            ItemError::new(ResponseError::UnknownServerError, e.to_string())
        }
    }
}

/// The deadline of a write whose request carries `timeout_ms` (<= 0: use
/// the broker's write timeout).
pub fn deadline(ctx: &BrokerContext, timeout_ms: i32) -> Instant {
    let timeout = u64::try_from(timeout_ms)
        .ok()
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
        .unwrap_or(ctx.config.write_timeout);
    Instant::now() + timeout
}

/// Sends `body` to the controller; on success waits (until `deadline`) for
/// this broker's cache to reach the offset the write committed at, so the
/// client's next request sees the change. The write is reported as done
/// even if the cache lags past the deadline: it did commit.
pub async fn write(
    ctx: &BrokerContext,
    body: Body,
    deadline: Instant,
) -> Result<ControllerResponse, ItemError> {
    let timeout = deadline.saturating_duration_since(Instant::now());
    let response = ctx
        .controller
        .call(body, timeout)
        .await
        .map_err(|e| client_error(&e))?;
    let offset = response.committed_offset;
    let remaining = deadline.saturating_duration_since(Instant::now());
    if !ctx.cache.wait_for_offset(offset, remaining).await {
        tracing::warn!(
            offset,
            cached = ctx.cache.offset(),
            "a controller write committed but this broker's metadata has not caught up yet"
        );
    }
    Ok(response)
}

/// A 16-byte id from the controller as a UUID (nil if malformed).
pub fn uuid_from_bytes(bytes: &[u8]) -> uuid::Uuid {
    uuid::Uuid::from_slice(bytes).unwrap_or(uuid::Uuid::nil())
}
