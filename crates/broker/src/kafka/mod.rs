//! The Kafka front door: the TCP listener that unmodified Kafka clients
//! (librdkafka, kafka-python, the Java client, kraftctl) talk to.
//!
//! Data enters as length-prefixed Kafka request frames on a socket (read
//! by [`connection`] within the listener's limits: [`limits`] for
//! connection counts, the memory pool in [`crate::context`]), is
//! routed by API key and version ([`request`]) to one
//! handler per API ([`crate::handlers`]), and leaves as response frames in
//! request order. Handlers read the [`MetadataCache`], write through the
//! [`ControllerChannel`], reach partition logs through the
//! [`ReplicaManager`] and consumer groups through the
//! [`GroupCoordinator`]; all of them live in the shared
//! [`BrokerContext`](crate::context::BrokerContext).
//!
//! The other end, a minimal Kafka client for the replica fetcher, tests and
//! `kraftctl`, is the `kraft-kafka-client` crate.

pub mod connection;
pub mod error;
pub mod limits;
pub mod request;
pub mod server;

pub use crate::handlers::support::RequestError;
pub use error::ConnectionError;
pub use server::KafkaServer;

/// `socket.request.max.bytes`: the largest request frame accepted (100 MiB).
pub const MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;
