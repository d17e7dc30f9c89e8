//! Bridges raft-rs's `slog` logging into `tracing`, once, here.

use slog::{o, Drain, Logger};

/// A `slog::Logger` whose records go to `tracing` (target `raft`), tagged
/// with this node's id.
pub fn raft_logger(node_id: u64) -> Logger {
    let drain = tracing_slog::TracingSlogDrain.fuse();
    Logger::root(drain, o!("raft_id" => node_id))
}
