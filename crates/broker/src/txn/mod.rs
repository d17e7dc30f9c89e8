//! The transaction coordinator: transactional producers' state, kept in
//! `__transaction_state`, and the COMMIT and ABORT markers that end their
//! transactions, as Kafka's `TransactionCoordinator` (transaction version
//! 1).
//!
//! A transactional id lives in partition `abs(hashCode(id)) % N` of the
//! internal topic `__transaction_state` (`transaction.state.log.num.partitions`,
//! 50), computed as Kafka does with Java's `String.hashCode`
//! ([`crate::group::partitioner`]). The leader of that partition is the
//! id's coordinator: FindCoordinator (key type 1) names it. The topic is
//! created on first need (`handlers/support/internal_topics.rs`). When this
//! broker becomes leader of such a partition ([`coordinator`], following
//! the metadata log like the group coordinator), it reads the partition
//! back ([`loader`]) and serves its ids from memory ([`shard`]); meanwhile
//! requests get COORDINATOR_LOAD_IN_PROGRESS, and after it loses
//! leadership, NOT_COORDINATOR. Each id's state changes by Kafka's rules
//! ([`state`]), is written as Kafka's records ([`records`]) and answered
//! once replicated ([`ops`]); a transaction being committed or aborted gets
//! its markers written to its partitions' leaders ([`markers`]). Partition
//! leaders ask the coordinator before a transaction's first write to a
//! partition whether it was added to the transaction ([`verify`], KIP-890).
//!
//! In: leadership changes from the metadata log; requests from the
//! handlers (InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn).
//! Out: answers, records appended to `__transaction_state`, and markers
//! (local appends or WriteTxnMarkers to other brokers).

use std::time::Duration;

pub mod coordinator;
pub mod loader;
pub mod markers;
pub mod ops;
pub mod records;
pub mod shard;
pub mod state;
pub mod verify;

pub use coordinator::TransactionCoordinator;
pub use verify::TxnWrite;

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
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` (10 s):
    /// how often transactions past their timeout are looked for.
    pub abort_timed_out_interval: Duration,
    /// `transactional.id.expiration.ms` (7 days): an id with no
    /// transaction open and no change for this long is removed (a
    /// tombstone in `__transaction_state`).
    pub id_expiration: Duration,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms` (1 h):
    /// how often expired ids are looked for.
    pub remove_expired_interval: Duration,
    /// How long a state write waits for the in-sync replicas, and a marker
    /// for its leader (Kafka: `request.timeout.ms`, 30 s).
    pub write_timeout: Duration,
}

impl Default for TransactionCoordinatorConfig {
    fn default() -> Self {
        TransactionCoordinatorConfig {
            state_log_num_partitions: 50,
            state_log_replication_factor: 3,
            state_log_min_isr: 2,
            state_log_segment_bytes: 100 * 1024 * 1024,
            max_timeout: Duration::from_millis(900_000),
            abort_timed_out_interval: Duration::from_secs(10),
            id_expiration: Duration::from_secs(7 * 24 * 3600),
            remove_expired_interval: Duration::from_secs(3600),
            write_timeout: Duration::from_secs(30),
        }
    }
}
