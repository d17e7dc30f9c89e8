//! Durable Raft storage for the `__cluster_metadata` log.
//!
//! [`RaftStorage`] implements tikv's [`raft::Storage`] over one directory
//! (for example `<metadata.log.dir>/__cluster_metadata-0/`) and is owned by
//! the Raft thread; [`LogReader`] is a cheap handle other threads use to
//! read committed entries. The entries after the newest snapshot are kept in
//! memory (snapshots bound the metadata log), shared by both behind a lock
//! that is never held across file I/O.
//!
//! # On-disk format
//!
//! Every file starts with a magic and a format version, and checksums its
//! content with crc32c; integers are big-endian.
//!
//! - `<base:020>.log` — segments: `"KRAFTLOG"`, version `u32` (=1), then
//!   frames `length u32 | crc32c(payload) u32 | payload` where the payload is
//!   one protobuf `eraftpb::Entry`. A segment holds consecutive entries from
//!   `base`; a new one is started when the active one reaches
//!   [`StorageOptions::segment_bytes`].
//! - `quorum-state` — `"KRAFTQST"`, version `u32` (=1), `crc32c u32`,
//!   `length u32`, then a prost `kraft_proto::raft::QuorumState` (term,
//!   vote, commit, voters, learners).
//! - `<index:020>-<term:020>.checkpoint` — snapshots, whose bytes are opaque
//!   here (the state machine defines and validates them). The newest two are
//!   kept. The `kraft-checkpoint` crate names, writes, lists and retires them.
//!
//! # Durability contract
//!
//! - [`RaftStorage::append`] hands entries to the OS only. They are durable
//!   once [`RaftStorage::sync`] returns; Raft must not acknowledge them (send
//!   `ready.take_persisted_messages()`) before that. Exception: rolling to a
//!   new segment fsyncs the full one, and cutting a conflicting suffix fsyncs
//!   the truncated file, so only the last segment can ever have a torn tail.
//! - [`RaftStorage::set_hard_state`] is durable when it returns (the file is
//!   replaced atomically: temporary file, fsync, rename, directory fsync).
//!   It fsyncs the appended entries first, so the commit index it records
//!   never points past the durable log.
//! - [`RaftStorage::set_commit`] is memory only; see its docs for why.
//!   Dropping the storage (a clean close) persists it, unless an operation
//!   failed.
//! - [`write_checkpoint`] is durable when it returns; a checkpoint becomes
//!   the served snapshot with [`RaftStorage::snapshot_taken`], which then
//!   deletes the log it covers. [`RaftStorage::apply_snapshot`] makes the
//!   leader's snapshot durable before it deletes any log.
//!
//! # Recovery point
//!
//! Nothing records how far each fsync reached, so [`RaftStorage::open`]
//! takes as its recovery point what is provably durable: every segment but
//! the last (fsynced when the log rolled past it), and in the last one the
//! entries up to the persisted commit index (or the snapshot's index, if
//! higher), since `quorum-state` is only written after the log is fsynced.
//! A clean close persists the commit index, so after one the point covers
//! every committed entry; after a crash it is where it was last written.
//!
//! - Past the point, the first invalid frame ends the log: a frame cut
//!   short, a bad length or checksum, zeros, an undecodable entry or one out
//!   of sequence, even when well-formed frames follow (a power loss can
//!   leave unsynced pages unwritten or garbage while later ones reached the
//!   disk). It and everything after it are truncated, with a warning naming
//!   the file, position and bytes dropped. A last segment wholly past the
//!   point with an unwritten header is removed.
//! - At or below the point any damage is [`StorageError::Corrupt`] naming
//!   the file and byte offset; nothing is skipped or cut.
//!
//! Limitation: an entry past the commit index may have been fsynced and
//! acknowledged; media damage to it is indistinguishable from an unsynced
//! write and is truncated too (Kafka takes the same risk past its recovery
//! point). Power loss alone cannot cause that: acknowledged entries were
//! fsynced, and fsynced bytes come back intact.
//!
//! After any error the storage must be dropped and reopened (the Raft thread
//! stops on storage errors anyway); recovery brings disk and memory back in
//! line.

mod error;
mod fsutil;
mod log_state;
mod quorum_state;
mod reader;
mod recovery;
mod segment;
mod segment_log;
mod storage_impl;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use kraft_checkpoint as checkpoint;
use kraft_proto::raft::QuorumState;
use raft::eraftpb::{ConfState, HardState, Snapshot};

pub use error::StorageError;
pub use kraft_checkpoint::{checkpoint_file_name, write_checkpoint, CHECKPOINTS_KEPT};
pub use reader::{LogReader, ReadCommitted};
pub use segment::segment_file_name;

use log_state::{LogState, SnapshotInfo};
use segment_log::SegmentLog;

/// Tuning of the on-disk log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageOptions {
    /// A new segment is started once the active one has reached this size.
    pub segment_bytes: u64,
}

impl Default for StorageOptions {
    fn default() -> StorageOptions {
        StorageOptions {
            segment_bytes: 16 * 1024 * 1024,
        }
    }
}

/// The durable Raft log, hard state and snapshots of one node. Owned by the
/// Raft thread; other threads read through [`RaftStorage::reader`].
pub struct RaftStorage {
    dir: PathBuf,
    state: Arc<RwLock<LogState>>,
    segments: SegmentLog,
    /// What `quorum-state` holds now.
    persisted: QuorumState,
    /// An operation failed: nothing more is written on drop.
    failed: bool,
}

impl Drop for RaftStorage {
    /// A clean close: persists the commit index reached in memory (after
    /// fsyncing the log), which raises the next open's recovery point to it.
    /// Skipped after any error; a failure here is logged.
    fn drop(&mut self) {
        let (hs, cs) = {
            let state = log_state::read(&self.state);
            (state.hard_state.clone(), state.conf_state.clone())
        };
        if self.failed || hs.commit <= self.persisted.commit {
            return;
        }
        if let Err(e) = self.persist(&hs, &cs) {
            tracing::warn!(error = %e, "could not persist the commit index on close");
        }
    }
}

impl RaftStorage {
    /// Opens the storage in `dir`, creating it if needed. `voters` is the
    /// conf state of a brand-new log (voters are static, from
    /// `controller.quorum.voters`). Recovery is described in the module docs.
    pub fn open(
        dir: &Path,
        voters: &[u64],
        opts: StorageOptions,
    ) -> Result<RaftStorage, StorageError> {
        let recovered = recovery::recover(dir, voters, &opts)?;
        Ok(RaftStorage {
            dir: dir.to_path_buf(),
            state: Arc::new(RwLock::new(recovered.state)),
            segments: recovered.segments,
            persisted: recovered.persisted,
            failed: false,
        })
    }

    /// The storage directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `entries` (consecutive indexes). Entries from the first one's
    /// index on are replaced: a conflicting suffix is cut from the files
    /// first. Written to the OS, not fsynced: call [`Self::sync`].
    pub fn append(&mut self, entries: &[raft::eraftpb::Entry]) -> Result<(), StorageError> {
        let Some(first_new) = entries.first() else {
            return Ok(());
        };
        for pair in entries.windows(2) {
            if pair[1].index != pair[0].index + 1 {
                return Err(StorageError::NotContiguous {
                    expected: pair[0].index + 1,
                    got: pair[1].index,
                });
            }
        }
        let (first, last) = {
            let state = log_state::read(&self.state);
            (state.first_index(), state.last_index())
        };
        let start = first_new.index;
        if start < first {
            return Err(StorageError::Compacted {
                index: start,
                first_index: first,
            });
        }
        if start > last + 1 {
            return Err(StorageError::NotContiguous {
                expected: last + 1,
                got: start,
            });
        }
        if start <= last {
            tracing::debug!(
                from = start,
                to = last,
                "replacing a conflicting log suffix"
            );
            let cut = self.segments.truncate_from(start);
            self.check(cut)?;
        }
        let appended = self.segments.append(entries);
        self.check(appended)?;
        let mut state = log_state::write(&self.state);
        state.entries.truncate((start - first) as usize);
        state.entries.extend_from_slice(entries);
        Ok(())
    }

    /// Makes everything appended so far durable (fsyncs the active segment,
    /// and the directory if segments were created).
    pub fn sync(&mut self) -> Result<(), StorageError> {
        let synced = self.segments.sync();
        self.check(synced)
    }

    /// Persists term, vote and commit (atomic replace of `quorum-state`,
    /// fsynced before returning). Entries appended before are fsynced first.
    pub fn set_hard_state(&mut self, hs: &HardState) -> Result<(), StorageError> {
        let cs = log_state::read(&self.state).conf_state.clone();
        self.persist(hs, &cs)?;
        log_state::write(&self.state).hard_state = hs.clone();
        Ok(())
    }

    /// Updates the commit index in memory only (no I/O); it is written with
    /// the next [`Self::set_hard_state`] or snapshot.
    ///
    /// This is safe because the commit index is not something a node
    /// promises to anyone: Raft's safety rests on the durable term, vote and
    /// log. After a restart a lower commit index only delays applying; the
    /// leader re-sends its commit index with the next append or heartbeat
    /// (and a leader re-learns it by committing an entry of its own term).
    /// Entries the state machine already applied beyond it are covered by
    /// its snapshot, which recovery takes as a lower bound of commit.
    pub fn set_commit(&mut self, commit: u64) {
        log_state::write(&self.state).hard_state.commit = commit;
    }

    /// Replaces the whole log with a snapshot received from the leader
    /// (`ready.snapshot()`): writes the checkpoint durably, persists the hard
    /// state (commit and term raised to the snapshot's) and the conf state
    /// from its metadata, then deletes every segment.
    pub fn apply_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        let meta = snapshot.get_metadata();
        let (index, term) = (meta.index, meta.term);
        let (first, mut hs, mut cs) = {
            let state = log_state::read(&self.state);
            let cs = state.conf_state.clone();
            (state.first_index(), state.hard_state.clone(), cs)
        };
        if index == 0 {
            return Err(StorageError::SnapshotRejected {
                index,
                term,
                reason: "empty snapshot".to_string(),
            });
        }
        if index < first {
            return Err(StorageError::SnapshotOutOfDate {
                index,
                first_index: first,
            });
        }
        let written = write_checkpoint(&self.dir, index, term, &snapshot.data);
        self.check(written.map_err(StorageError::from))?;
        hs.commit = hs.commit.max(index);
        if term > hs.term {
            hs.term = term;
            hs.vote = 0;
        }
        if meta.has_conf_state() && !meta.get_conf_state().voters.is_empty() {
            cs = meta.get_conf_state().clone();
        }
        self.persist(&hs, &cs)?;
        let cleared = self.segments.clear(index + 1);
        self.check(cleared)?;
        {
            let mut state = log_state::write(&self.state);
            state.entries.clear();
            state.snapshot = Some(SnapshotInfo {
                index,
                term,
                data: snapshot.data.clone(),
            });
            state.hard_state = hs;
            state.conf_state = cs;
        }
        self.retire_old_checkpoints(index, term);
        Ok(())
    }

    /// Records a snapshot the local state machine took at `index` (at most
    /// the commit index) and already wrote with [`write_checkpoint`], then
    /// compacts: entries up to `index` leave memory and segments holding
    /// nothing newer are deleted.
    pub fn snapshot_taken(
        &mut self,
        index: u64,
        term: u64,
        data: Bytes,
    ) -> Result<(), StorageError> {
        let reject = |reason: String| StorageError::SnapshotRejected {
            index,
            term,
            reason,
        };
        let (snap_index, hs, cs) = {
            let state = log_state::read(&self.state);
            if index <= state.snapshot_index() {
                tracing::debug!(
                    index,
                    current = state.snapshot_index(),
                    "snapshot already covered"
                );
                return Ok(());
            }
            if index > state.committed_index() {
                return Err(reject(format!(
                    "beyond the commit index {}",
                    state.committed_index()
                )));
            }
            match state.term(index) {
                Ok(t) if t == term => {}
                Ok(t) => return Err(reject(format!("the log has term {t} at that index"))),
                Err(_) => return Err(reject("the log no longer holds that index".to_string())),
            }
            let hs = state.hard_state.clone();
            (state.snapshot_index(), hs, state.conf_state.clone())
        };
        if !checkpoint::exists(&self.dir, index, term) {
            return Err(reject(format!(
                "{} not found: write it with write_checkpoint first",
                checkpoint_file_name(index, term)
            )));
        }
        if self.persisted != to_quorum_state(&hs, &cs) {
            self.persist(&hs, &cs)?;
        }
        let compacted = self.segments.compact_to(index);
        self.check(compacted)?;
        {
            let mut state = log_state::write(&self.state);
            let drop = ((index - snap_index) as usize).min(state.entries.len());
            state.entries.drain(..drop);
            state.snapshot = Some(SnapshotInfo { index, term, data });
        }
        self.retire_old_checkpoints(index, term);
        Ok(())
    }

    /// Index of the newest snapshot (0 if none).
    pub fn snapshot_index(&self) -> u64 {
        log_state::read(&self.state).snapshot_index()
    }

    /// Term of the newest snapshot (0 if none).
    pub fn snapshot_term(&self) -> u64 {
        log_state::read(&self.state).snapshot_term()
    }

    /// The newest snapshot: (index, term, bytes).
    pub fn latest_snapshot(&self) -> Option<(u64, u64, Bytes)> {
        self.reader().latest_snapshot()
    }

    /// The current hard state (commit as last set, clamped at open).
    pub fn hard_state(&self) -> HardState {
        log_state::read(&self.state).hard_state.clone()
    }

    /// The current conf state.
    pub fn conf_state(&self) -> ConfState {
        log_state::read(&self.state).conf_state.clone()
    }

    /// A read-only handle on the committed log for other threads.
    pub fn reader(&self) -> LogReader {
        LogReader::new(Arc::clone(&self.state))
    }

    /// Writes `quorum-state` for (`hs`, `cs`), after fsyncing the log: a
    /// persisted commit index never covers an unsynced entry, which is what
    /// makes it a safe recovery point (see the module docs).
    fn persist(&mut self, hs: &HardState, cs: &ConfState) -> Result<(), StorageError> {
        let synced = self.segments.sync();
        self.check(synced)?;
        let qs = to_quorum_state(hs, cs);
        let written = quorum_state::write(&self.dir, &qs);
        self.check(written)?;
        self.persisted = qs;
        Ok(())
    }

    /// Passes `result` on, remembering a failure: the storage must then be
    /// reopened, and dropping it writes nothing.
    fn check<T>(&mut self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    /// Old checkpoints are housekeeping: failing to delete one is logged,
    /// not fatal.
    fn retire_old_checkpoints(&self, index: u64, term: u64) {
        if let Err(e) = checkpoint::retire_old(&self.dir, (index, term)) {
            tracing::warn!(error = %e, "could not delete old checkpoints");
        }
    }
}

pub(crate) fn to_quorum_state(hs: &HardState, cs: &ConfState) -> QuorumState {
    QuorumState {
        term: hs.term,
        vote: hs.vote,
        commit: hs.commit,
        voters: cs.voters.clone(),
        learners: cs.learners.clone(),
    }
}
