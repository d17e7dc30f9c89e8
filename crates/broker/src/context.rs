//! [`BrokerContext`]: everything a Kafka handler may use, built once per
//! broker by [`crate::broker_node`] and shared by every connection of its
//! listener; and [`BrokerConfig`], the broker settings the handlers read.
//!
//! It sits below both the listener ([`crate::kafka`]) and the handlers
//! ([`crate::handlers`]), so neither imports the other to reach it. The
//! broker's fenced or unfenced state is a `watch` that the lifecycle owns;
//! the context carries a receiver, read by the listener (a fenced broker
//! hangs up on clients) and the Metadata handler.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::controller_channel::ControllerChannel;
use crate::group::GroupCoordinator;
use crate::lifecycle::BrokerState;
use crate::metadata_cache::MetadataCache;
use crate::producer_ids::ProducerIdManager;
use crate::replica::ReplicaManager;

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
    /// Producer ids for InitProducerId, in blocks from the controller.
    pub producer_ids: ProducerIdManager,
    /// The broker's lifecycle state, owned by
    /// [`BrokerLifecycle`](crate::lifecycle::BrokerLifecycle) and only read
    /// here.
    pub state: watch::Receiver<BrokerState>,
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
