//! The transaction coordinator: where a transactional id's state lives.
//!
//! A transactional id lives in partition `abs(hashCode(id)) % N` of the
//! internal topic `__transaction_state` (Kafka's
//! `transaction.state.log.num.partitions`, 50), computed as Kafka does with
//! Java's `String.hashCode` ([`crate::group::partitioner`]), so an id lands
//! on the same partition as on a Kafka cluster. The leader of that
//! partition is the id's coordinator: FindCoordinator (key type 1) names it.
//! The topic is created on first need, compacted, with
//! `transaction.state.log.replication.factor` replicas and
//! `transaction.state.log.min.isr` as its `min.insync.replicas`
//! (`handlers/support/internal_topics.rs`).
//!
//! In: the broker's `transaction.*` settings, and transactional ids from
//! the handlers. Out: the id's partition of `__transaction_state`.

use std::time::Duration;

use crate::group::partitioner;

/// The coordinator's settings (Kafka's keys in the field docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionCoordinatorConfig {
    /// `transaction.state.log.num.partitions` (50).
    pub state_log_num_partitions: i32,
    /// `transaction.state.log.replication.factor` (3): until this many
    /// brokers are alive, FindCoordinator answers COORDINATOR_NOT_AVAILABLE
    /// for transactional ids.
    pub state_log_replication_factor: i16,
    /// `transaction.state.log.min.isr` (2): the topic's
    /// `min.insync.replicas`.
    pub state_log_min_isr: i32,
    /// `transaction.state.log.segment.bytes` (100 MiB).
    pub state_log_segment_bytes: i64,
    /// `transaction.max.timeout.ms` (15 min): the longest transaction
    /// timeout a producer may ask for.
    pub max_timeout: Duration,
}

impl Default for TransactionCoordinatorConfig {
    fn default() -> Self {
        TransactionCoordinatorConfig {
            state_log_num_partitions: 50,
            state_log_replication_factor: 3,
            state_log_min_isr: 2,
            state_log_segment_bytes: 100 * 1024 * 1024,
            max_timeout: Duration::from_millis(900_000),
        }
    }
}

impl TransactionCoordinatorConfig {
    /// The partition of `__transaction_state` that holds
    /// `transactional_id`.
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        partitioner::partition_for(transactional_id, self.state_log_num_partitions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_land_on_kafkas_partitions() {
        let config = TransactionCoordinatorConfig::default();
        // abs("txn-a".hashCode()) % 50, as Java computes it.
        let hash = "txn-a"
            .encode_utf16()
            .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)));
        assert_eq!(config.partition_for("txn-a"), hash.abs() % 50);
        // Integer.MIN_VALUE hashes map to partition 0.
        assert_eq!(config.partition_for("polygenelubricants"), 0);
        let few = TransactionCoordinatorConfig {
            state_log_num_partitions: 4,
            ..config
        };
        assert!((0..4).contains(&few.partition_for("anything")));
    }
}
