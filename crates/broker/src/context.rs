//! [`BrokerContext`]: everything a Kafka handler may use, built once per
//! broker by [`crate::broker_node`] and shared by every connection of its
//! listener; and [`BrokerConfig`], the broker settings the handlers read.
//!
//! It sits below both the listener ([`crate::kafka`]) and the handlers
//! ([`crate::handlers`]), so neither imports the other to reach it. The
//! broker's fenced or unfenced state is a `watch` that the lifecycle owns;
//! the context carries a receiver, read by the listener (a fenced broker
//! hangs up on clients) and the Metadata handler. The listener's memory
//! budgets live here too ([`memory`]), since both the listener and the
//! Fetch handler take from them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

mod memory;

pub use memory::{hold_until_written, holding, Memory, MemoryPermit, MemoryPool};

use crate::controller_channel::ControllerChannel;
use crate::group::GroupCoordinator;
use crate::lifecycle::BrokerState;
use crate::metadata_cache::MetadataCache;
use crate::producer_ids::ProducerIdManager;
use crate::replica::ReplicaManager;
use crate::txn::TransactionCoordinator;

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
    /// `fetch.max.bytes`: the most record bytes a consumer's Fetch answer
    /// carries, whatever `max_bytes` it asks for (Kafka: 55 MiB).
    pub fetch_max_bytes: usize,
    /// `replica.fetch.response.max.bytes`: the same for a follower's fetch
    /// (Kafka: 10 MiB).
    pub replica_fetch_response_max_bytes: usize,
    /// `connections.max.idle.ms`: a connection that neither sends nor takes
    /// a byte for this long is closed (Kafka: 10 minutes).
    pub connections_max_idle: Duration,
    /// `max.connections`: client connections open at once (Kafka: no limit,
    /// `i32::MAX`).
    pub max_connections: usize,
    /// `max.connections.per.ip`: the same from one IP address (Kafka: no
    /// limit).
    pub max_connections_per_ip: usize,
    /// `queued.max.request.bytes`: the listener's memory pool, shared by the
    /// bytes of requests being read and served and the records of Fetch
    /// answers not yet written (Kraft: 512 MiB; Kafka's -1 is unbounded).
    pub queued_max_request_bytes: usize,
}

impl Default for BrokerConfig {
    /// Kafka's defaults: auto-creation on, 1 partition, replication factor
    /// 1, a 30 s write timeout (`request.timeout.ms`), and Kafka's fetch and
    /// connection limits (the memory pool excepted: see its field).
    fn default() -> Self {
        BrokerConfig {
            auto_create_topics_enable: true,
            num_partitions: 1,
            default_replication_factor: 1,
            write_timeout: Duration::from_secs(30),
            fetch_max_bytes: 55 * 1024 * 1024,
            replica_fetch_response_max_bytes: 10 * 1024 * 1024,
            connections_max_idle: Duration::from_secs(600),
            max_connections: i32::MAX as usize,
            max_connections_per_ip: i32::MAX as usize,
            queued_max_request_bytes: 512 * 1024 * 1024,
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
    /// The transactions this broker coordinates (InitProducerId with a
    /// transactional id, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn).
    pub transactions: Arc<TransactionCoordinator>,
    /// Producer ids for InitProducerId, in blocks from the controller.
    pub producer_ids: ProducerIdManager,
    /// The broker's lifecycle state, owned by
    /// [`BrokerLifecycle`](crate::lifecycle::BrokerLifecycle) and only read
    /// here.
    pub state: watch::Receiver<BrokerState>,
    /// The listener's memory budgets (`queued.max.request.bytes`), built
    /// from `config` with [`Memory::new`].
    pub memory: Memory,
}

impl BrokerContext {
    /// Whether the broker counts itself fenced: registered, but no heartbeat
    /// answered for a whole session, so its metadata may be stale and the
    /// controller has likely moved its leaderships away. Such a broker
    /// leads nothing and serves no client.
    pub fn counts_itself_fenced(&self) -> bool {
        matches!(*self.state.borrow(), BrokerState::Fenced { .. })
    }
}
