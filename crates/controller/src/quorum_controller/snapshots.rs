//! Snapshotting the committed metadata image.
//!
//! The [`SnapshotPolicy`] counts the bytes committed since the last
//! snapshot; after each committed batch [`QuorumController::maybe_snapshot`]
//! asks it whether one is due and, if so, encodes the `committed` image and
//! writes it as a checkpoint file in the metadata directory on a blocking
//! thread. The result comes back to the controller task as a
//! [`SnapshotResult`]; [`QuorumController::on_snapshot_written`] then tells
//! Raft, which may compact its log up to the snapshot.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kraft_metadata::snapshot;
use kraft_proto::metadata::SnapshotHeader;
use tokio::sync::mpsc;

use super::{ControllerSettings, QuorumController};
use crate::snapshot_policy::SnapshotPolicy;

/// The controller's snapshot state: when the next one is due, whether one
/// is being written, and the channel finished writes come back on.
pub(super) struct SnapshotState {
    pub(super) policy: SnapshotPolicy,
    running: bool,
    done: mpsc::UnboundedSender<SnapshotResult>,
    /// Taken by `run`; finished snapshot writes arrive here.
    pub(super) results: Option<mpsc::UnboundedReceiver<SnapshotResult>>,
}

impl SnapshotState {
    pub(super) fn new(settings: &ControllerSettings) -> SnapshotState {
        let (done, results) = mpsc::unbounded_channel();
        SnapshotState {
            policy: SnapshotPolicy::new(
                settings.snapshot_max_bytes,
                settings.snapshot_max_interval,
            ),
            running: false,
            done,
            results: Some(results),
        }
    }
}

/// A finished snapshot write: the offset and term it covers, and the
/// encoded snapshot or why writing it failed.
pub(super) struct SnapshotResult {
    index: u64,
    term: u64,
    data: Result<Bytes, String>,
}

impl QuorumController {
    /// Starts writing a snapshot of the committed image when the policy says
    /// so; encoding and fsync happen on a blocking thread.
    pub(super) fn maybe_snapshot(&mut self, term: u64) {
        if self.snapshots.running || !self.snapshots.policy.due(Instant::now()) {
            return;
        }
        self.snapshots.running = true;
        self.snapshots.policy.reset(Instant::now());
        let image = self.committed.clone();
        let index = image.offset();
        let dir = self.settings.metadata_dir.clone();
        let voters = self
            .settings
            .voters
            .keys()
            .map(|id| kraft_raft::driver::raft_id(*id))
            .collect();
        let done = self.snapshots.done.clone();
        tokio::task::spawn_blocking(move || {
            let header = SnapshotHeader {
                offset: index,
                term,
                timestamp_ms: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0),
                voters,
                learners: Vec::new(),
            };
            let bytes = snapshot::encode(&header, &image);
            let data = kraft_raft::storage::write_checkpoint(&dir, index, term, &bytes)
                .map(|_| Bytes::from(bytes))
                .map_err(|e| e.to_string());
            let _ = done.send(SnapshotResult { index, term, data });
        });
    }

    pub(super) fn on_snapshot_written(&mut self, done: SnapshotResult) {
        self.snapshots.running = false;
        match done.data {
            Ok(data) => {
                tracing::info!(
                    offset = done.index,
                    bytes = data.len(),
                    "wrote metadata snapshot"
                );
                self.raft.snapshot_taken(done.index, done.term, data);
            }
            Err(e) => tracing::error!(offset = done.index, error = %e, "metadata snapshot failed"),
        }
    }
}
