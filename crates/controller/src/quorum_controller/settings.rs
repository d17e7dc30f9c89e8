//! What the controller task is configured with: [`ControllerSettings`],
//! built by the node from `server.properties`, and the
//! [`LeaderBalanceSettings`] of the periodic preferred-leader election.
//!
//! Data enters once, when the node builds a
//! [`QuorumController`](super::QuorumController); nothing here changes after.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Settings the controller task needs.
#[derive(Clone, Debug)]
pub struct ControllerSettings {
    pub node_id: i32,
    pub cluster_id: String,
    /// Each voter's CONTROLLER address, for NOT_CONTROLLER hints.
    pub voters: BTreeMap<i32, String>,
    /// Where snapshot (checkpoint) files go: the `__cluster_metadata-0` dir.
    pub metadata_dir: PathBuf,
    /// `metadata.max.idle.interval.ms`; zero disables no-op records.
    pub max_idle_interval: Duration,
    /// `metadata.log.max.record.bytes.between.snapshots`.
    pub snapshot_max_bytes: u64,
    /// `metadata.log.max.snapshot.interval.ms`.
    pub snapshot_max_interval: Duration,
    /// `broker.session.timeout.ms`: a broker silent this long is fenced.
    pub session_timeout: Duration,
    /// `num.partitions` and `default.replication.factor`, for topics created
    /// without them.
    pub default_num_partitions: i32,
    pub default_replication_factor: i32,
    /// The periodic preferred-leader election.
    pub leader_balance: LeaderBalanceSettings,
}

/// `auto.leader.rebalance.enable`, `leader.imbalance.check.interval.seconds`
/// and `leader.imbalance.per.broker.percentage`: every `check_interval` the
/// active controller moves leadership back to preferred replicas for each
/// broker that is preferred for more than `imbalance_percentage` percent
/// more partitions than it leads (see `leader_election`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderBalanceSettings {
    pub enabled: bool,
    pub check_interval: Duration,
    pub imbalance_percentage: u32,
}

impl Default for LeaderBalanceSettings {
    /// Kafka's defaults: enabled, every 300 s, above 10%.
    fn default() -> Self {
        LeaderBalanceSettings {
            enabled: true,
            check_interval: Duration::from_secs(300),
            imbalance_percentage: 10,
        }
    }
}
