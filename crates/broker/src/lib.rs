//! The broker side of Kraft: the Kafka protocol listener that unmodified
//! clients talk to, the MetadataCache it answers from, the replica manager
//! that hosts partition logs, and (with the broker lifecycle and metadata
//! loader) how a broker joins the cluster.

#![forbid(unsafe_code)]

pub mod broker_node;
pub mod context;
pub mod controller_channel;
pub mod group;
pub mod handlers;
pub mod kafka;
pub mod lifecycle;
pub mod metadata_cache;
pub mod metadata_loader;
pub mod producer_ids;
pub mod replica;
#[cfg(test)]
mod test_batches;
pub mod txn;

pub use broker_node::{BrokerNode, BrokerNodeConfig};
pub use context::{BrokerConfig, BrokerContext};
pub use controller_channel::ControllerChannel;
pub use group::{GroupCoordinator, GroupCoordinatorConfig};
pub use kafka::KafkaServer;
pub use lifecycle::BrokerState;
pub use metadata_cache::{CacheQueries, MetadataCache};
pub use replica::{ReplicaManager, ReplicaManagerConfig};
pub use txn::TransactionCoordinatorConfig;
