//! The wire of the CONTROLLER listener, shared by everything that speaks
//! it: controllers (Raft peers and the RPC server), brokers, `kraftctl` and
//! the tests.
//!
//! - [`frame_codec`]: the framing of every CONTROLLER connection
//!   (length-delimited protobuf `ControllerRequest`/`ControllerResponse`).
//! - [`ControllerConnection`] and [`QuorumClient`]: a request body goes in,
//!   the active controller's response comes out (following NOT_CONTROLLER
//!   hints), or a [`ClientError`].
//! - [`ControllerError`]: the error a `ControllerResponse` carries (a Kafka
//!   error code, a sentence, a leader hint); codes are
//!   [`kafka_protocol::ResponseError`]s, named with [`error_name`].
//! - [`NetworkFault`]: the hook tests use to cut links between nodes.
//!
//! Its only kraft dependency is `kraft-proto`, so brokers and tools can use
//! it without the Raft driver or the controller.

#![forbid(unsafe_code)]

mod codec;
mod codes;
mod connection;
mod error;
mod fault;
mod quorum_client;

pub use codec::{frame_codec, FrameCodec, MAX_FETCH_BYTES, MAX_FRAME_BYTES, MAX_RAFT_BATCH_BYTES};
pub use codes::{error_code, error_name};
pub use connection::ControllerConnection;
pub use error::{ClientError, ControllerError};
pub use fault::{NetworkFault, NoFaults};
pub use quorum_client::QuorumClient;
