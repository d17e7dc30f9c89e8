//! The controller side of Kraft: the [`QuorumController`] that owns the
//! cluster metadata, the CONTROLLER listener that serves Raft peers, brokers
//! and `kraftctl`. The clients that talk to it ([`QuorumClient`],
//! [`ControllerConnection`]) live in `kraft-rpc` and are re-exported here.
//!
//! Data enters as requests on the CONTROLLER listener ([`rpc_server`]) and as
//! committed entries from the Raft thread; it leaves as committed metadata
//! records (read by brokers from the log), responses, and snapshots.
//!
//! [`QuorumController`]: quorum_controller::QuorumController

#![forbid(unsafe_code)]

mod alter_partition;
mod broker_fencing;
mod cluster_control;
mod config_control;
pub mod controller_node;
mod controller_result;
mod error;
mod leader_election;
mod partition_change;
mod placement;
mod producer_id_control;
pub mod quorum_controller;
mod reassignment;
mod replication_control;
pub mod rpc_server;
mod snapshot_policy;

pub use controller_node::{ControllerNode, ControllerNodeConfig, ControllerNodeError};
pub use error::ControllerError;
pub use kraft_rpc::{ClientError, ControllerConnection, QuorumClient};
pub use quorum_controller::LeaderBalanceSettings;
