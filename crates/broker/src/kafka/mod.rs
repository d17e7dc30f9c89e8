//! The Kafka front door: the TCP listener that unmodified Kafka clients
//! (librdkafka, kafka-python, the Java client, kraftctl) talk to.
//!
//! Data enters as length-prefixed Kafka request frames on a socket (read
//! with [`kraft_kafka_client::frame`], the framing the client shares), is
//! routed by API key and version ([`request`]) to one
//! handler per API ([`crate::handlers`]), and leaves as response frames in
//! request order. Handlers read the [`MetadataCache`], write through the
//! [`ControllerChannel`], reach partition logs through the
//! [`ReplicaManager`] and consumer groups through the
//! [`GroupCoordinator`]; all of them live in the shared [`BrokerContext`].
//!
//! The other end, a minimal Kafka client for the replica fetcher, tests and
//! `kraftctl`, is the `kraft-kafka-client` crate.

use std::sync::Arc;
use std::time::Duration;

use crate::controller_channel::ControllerChannel;
use crate::group::GroupCoordinator;
use crate::metadata_cache::MetadataCache;
use crate::replica::ReplicaManager;

pub mod error;
pub mod request;
pub mod server;
pub mod shape;

pub use error::{ConnectionError, RequestError};
pub use server::KafkaServer;

/// `socket.request.max.bytes`: the largest request frame accepted (100 MiB).
pub const MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;

/// The broker settings the Kafka handlers need (Kafka's config keys in the
/// field docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerConfig {
    /// `auto.create.topics.enable`: whether Metadata may create unknown
    /// topics the client asks for (if the client allows it too).
    pub auto_create_topics_enable: bool,
    /// `num.partitions`: partitions of an auto-created topic.
    pub num_partitions: i32,
    /// `default.replication.factor`: replication factor of an auto-created
    /// topic.
    pub default_replication_factor: i32,
    /// How long an admin write may wait for the controller and for this
    /// broker's cache when the request carries no timeout of its own.
    pub write_timeout: Duration,
}

impl Default for BrokerConfig {
    /// Kafka's defaults: auto-creation on, 1 partition, replication factor
    /// 1, and a 30 s write timeout (`request.timeout.ms`).
    fn default() -> Self {
        BrokerConfig {
            auto_create_topics_enable: true,
            num_partitions: 1,
            default_replication_factor: 1,
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// Everything a Kafka handler may use, shared by every connection of one
/// listener.
#[derive(Debug)]
pub struct BrokerContext {
    /// This broker's `node.id`.
    pub node_id: i32,
    /// The cluster id from `meta.properties`.
    pub cluster_id: String,
    /// The listener this server serves (e.g. `PLAINTEXT`); Metadata and
    /// DescribeCluster advertise every broker's endpoint for this name.
    pub listener_name: String,
    /// The broker's view of the cluster metadata.
    pub cache: MetadataCache,
    /// Admin writes go to the active controller through this.
    pub controller: ControllerChannel,
    /// Broker settings.
    pub config: BrokerConfig,
    /// The partitions this broker hosts (Produce, Fetch, ListOffsets).
    pub replicas: Arc<ReplicaManager>,
    /// The consumer groups this broker coordinates (the group APIs).
    pub groups: Arc<GroupCoordinator>,
}
