//! What the handlers share, and nothing else: each file here is used by
//! more than one handler (or by the registry in [`super`]), and none of them
//! serves an API of its own.
//!
//! - [`shape`]: the structural pre-check of request bodies, run before
//!   decoding;
//! - [`encode`]: a response as the frame that goes to the socket;
//! - [`request_error`]: why a frame could not be served;
//! - [`partitions`]: finding the partition Produce, Fetch and ListOffsets
//!   name;
//! - [`writes`]: forwarding admin writes to the controller and waiting for
//!   the cache;
//! - [`groups`]: finding a group's coordinator shard;
//! - [`internal_topics`]: creating `__consumer_offsets` and
//!   `__transaction_state` on first need;
//! - [`configs`]: effective configs with their sources;
//! - [`cluster`]: the controller id clients are told;
//! - [`transactions`]: transactional ids checked, and PRODUCER_FENCED for
//!   old clients.

pub mod cluster;
pub mod configs;
pub mod encode;
pub mod groups;
pub mod internal_topics;
pub mod partitions;
pub mod request_error;
pub mod shape;
pub mod transactions;
pub mod writes;

pub use encode::encode_response;
pub use request_error::RequestError;
