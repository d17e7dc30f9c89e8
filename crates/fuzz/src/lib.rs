//! Kraft's fuzz targets, as plain functions of `&[u8]`.
//!
//! Each target feeds hostile bytes to one place where input from the
//! network or the disk enters Kraft, and must return without panicking,
//! hanging or allocating without bound; what the code answers (an error,
//! a refusal) is its own business. [`TARGETS`] lists them by name:
//!
//! - `request_frame`: a whole Kafka request frame through a combined
//!   node's request path (header, shape check, decode, handler), for every
//!   API and version ([`frames`]);
//! - `produce_batch`: a producer's `records` through the broker's batch
//!   validation ([`batches`]);
//! - `partition_segment` and `raft_segment`: a segment file opened (and
//!   recovered) by a partition log and by the Raft log ([`segments`]);
//! - `producer_snapshot`: a producer-state snapshot read by a partition log
//!   at open ([`segments`]);
//! - `txn_index`: a segment's aborted-transactions index (`.txnindex`)
//!   read by a partition log at open, then asked for aborted transactions
//!   ([`transactions`]);
//! - `metadata_snapshot`: a metadata snapshot decoded into an image
//!   ([`metadata`]);
//! - `controller_rpc`: a CONTROLLER-port frame and the Raft messages in it
//!   decoded ([`controller`]).
//!
//! Two runners share these functions: `fuzz/` (cargo-fuzz with libFuzzer,
//! nightly; `scripts/fuzz`) and this crate's `tests/corpus.rs`, which
//! replays every file of the checked-in corpus (`fuzz/corpus/<target>/`)
//! on the stable toolchain in every `cargo test`. [`seeds`] are valid
//! inputs of each kind, the starting corpus.

pub mod batches;
pub mod controller;
pub mod frames;
pub mod metadata;
pub mod segments;
pub mod transactions;

/// A fuzz target: consumes any bytes, must never panic.
pub type Target = fn(&[u8]);

/// Every target, by the name its corpus directory and cargo-fuzz binary use.
pub const TARGETS: &[(&str, Target)] = &[
    ("request_frame", frames::request_frame),
    ("produce_batch", batches::produce_batch),
    ("partition_segment", segments::partition_segment),
    ("raft_segment", segments::raft_segment),
    ("producer_snapshot", segments::producer_snapshot),
    ("txn_index", transactions::txn_index),
    ("metadata_snapshot", metadata::metadata_snapshot),
    ("controller_rpc", controller::controller_rpc),
];

/// Valid inputs for `target`, to start its corpus from.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "request_frame" => frames::seeds(),
        "produce_batch" => batches::seeds(),
        "partition_segment" => segments::partition_seeds(),
        "raft_segment" => segments::raft_seeds(),
        "producer_snapshot" => segments::snapshot_seeds(),
        "txn_index" => transactions::txn_index_seeds(),
        "metadata_snapshot" => metadata::seeds(),
        "controller_rpc" => controller::seeds(),
        _ => Vec::new(),
    }
}
