//! The in-memory half of the storage, shared by [`RaftStorage`] (the Raft
//! thread, the only writer) and every [`LogReader`]: the entries after the
//! newest snapshot, that snapshot, the hard state and the conf state.
//!
//! Invariant: `entries[k].index == snapshot_index() + 1 + k`, so the first
//! log index is always `snapshot_index() + 1`.
//!
//! [`RaftStorage`]: super::RaftStorage
//! [`LogReader`]: super::LogReader

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState};
use raft::StorageError as RaftStorageError;

/// The newest snapshot: its position and its (opaque) bytes.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotInfo {
    pub index: u64,
    pub term: u64,
    pub data: Bytes,
}

#[derive(Debug, Default)]
pub(crate) struct LogState {
    pub entries: Vec<Entry>,
    pub snapshot: Option<SnapshotInfo>,
    pub hard_state: HardState,
    pub conf_state: ConfState,
}

impl LogState {
    pub fn snapshot_index(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.index)
    }

    pub fn snapshot_term(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.term)
    }

    pub fn first_index(&self) -> u64 {
        self.snapshot_index() + 1
    }

    pub fn last_index(&self) -> u64 {
        self.entries
            .last()
            .map_or_else(|| self.snapshot_index(), |e| e.index)
    }

    /// The commit index, never past the last entry this node holds.
    pub fn committed_index(&self) -> u64 {
        self.hard_state.commit.min(self.last_index())
    }

    /// The entry at `index` if it is held in memory.
    pub fn entry(&self, index: u64) -> Option<&Entry> {
        let offset = index.checked_sub(self.first_index())?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// `raft::Storage::term` semantics: the snapshot's term at its index,
    /// `Compacted` below it, `Unavailable` past the last entry.
    pub fn term(&self, index: u64) -> Result<u64, RaftStorageError> {
        if index == self.snapshot_index() {
            return Ok(self.snapshot_term());
        }
        if index < self.first_index() {
            return Err(RaftStorageError::Compacted);
        }
        self.entry(index)
            .map(|e| e.term)
            .ok_or(RaftStorageError::Unavailable)
    }

    /// `raft::Storage::entries` semantics: `[low, high)`, `Compacted` if
    /// `low` is below the first index, at least one entry when any is in
    /// range, then no more than `max_size` bytes.
    pub fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: Option<u64>,
    ) -> Result<Vec<Entry>, RaftStorageError> {
        let first = self.first_index();
        if low < first {
            return Err(RaftStorageError::Compacted);
        }
        if high > self.last_index() + 1 {
            return Err(RaftStorageError::Unavailable);
        }
        if low >= high {
            return Ok(Vec::new());
        }
        let (lo, hi) = ((low - first) as usize, (high - first) as usize);
        let mut out = self.entries[lo..hi].to_vec();
        raft::util::limit_size(&mut out, max_size);
        Ok(out)
    }

    /// Committed entries from `from` on, at least one if any, then no more
    /// than `max_bytes` (encoded size).
    pub fn committed_from(&self, from: u64, max_bytes: u64) -> Vec<Entry> {
        let from = from.max(self.first_index());
        let commit = self.committed_index();
        let mut out = Vec::new();
        let mut size = 0u64;
        let mut index = from;
        while index <= commit {
            let Some(entry) = self.entry(index) else {
                break;
            };
            size += u64::from(entry.compute_size());
            if !out.is_empty() && size > max_bytes {
                break;
            }
            out.push(entry.clone());
            index += 1;
        }
        out
    }
}

/// Read-locks `lock`. A poisoned lock is still read: writers only ever do
/// simple in-memory updates that leave the state consistent.
pub(crate) fn read(lock: &RwLock<LogState>) -> RwLockReadGuard<'_, LogState> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Write-locks `lock`; see [`read`] on poisoning.
pub(crate) fn write(lock: &RwLock<LogState>) -> RwLockWriteGuard<'_, LogState> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
