//! The leader-epoch cache: which leader epoch started at which offset, as
//! Kafka's `LeaderEpochFileCache`, checkpointed to `leader-epoch-checkpoint`.
//!
//! In: the epoch of every leader append and of replicated or recovered
//! batches ([`LeaderEpochCache::assign`]); truncations from either end.
//! Out: `latest_epoch` and `end_offset_for` (OffsetsForLeaderEpoch, so a
//! follower knows where its log diverges). The file is our checksummed
//! container holding `(epoch i32, start offset i64)` pairs; it is rewritten
//! (atomically, fsynced) whenever the entries change, which happens once
//! per leader change, not per append.

use std::path::{Path, PathBuf};

use crate::error::LogError;
use crate::state_file::{read_checksummed, write_checksummed};

pub(crate) const FILE: &str = "leader-epoch-checkpoint";
const MAGIC: &[u8; 4] = b"KREP";
const VERSION: u16 = 1;
const ENTRY_LEN: usize = 12;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// Epoch start offsets, both strictly increasing.
#[derive(Debug)]
pub(crate) struct LeaderEpochCache {
    dir: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// Loads the checkpoint in `dir` (empty if there is none).
    pub fn load(dir: &Path) -> Result<LeaderEpochCache, LogError> {
        let mut cache = LeaderEpochCache {
            dir: dir.to_path_buf(),
            entries: Vec::new(),
        };
        let Some((version, payload)) = read_checksummed(dir, FILE, MAGIC)? else {
            return Ok(cache);
        };
        let path = dir.join(FILE);
        if version != VERSION {
            return Err(LogError::corrupt(
                &path,
                4,
                format!("unknown format version {version}"),
            ));
        }
        if payload.len() % ENTRY_LEN != 0 {
            return Err(LogError::corrupt(
                &path,
                10,
                "payload is not a whole number of entries",
            ));
        }
        for chunk in payload.chunks_exact(ENTRY_LEN) {
            let mut epoch = [0u8; 4];
            let mut start = [0u8; 8];
            epoch.copy_from_slice(&chunk[0..4]);
            start.copy_from_slice(&chunk[4..12]);
            let entry = EpochEntry {
                epoch: i32::from_be_bytes(epoch),
                start_offset: i64::from_be_bytes(start),
            };
            if cache
                .entries
                .last()
                .is_some_and(|l| l.epoch >= entry.epoch || l.start_offset >= entry.start_offset)
            {
                return Err(LogError::corrupt(&path, 10, "entries do not increase"));
            }
            cache.entries.push(entry);
        }
        Ok(cache)
    }

    /// Writes the checkpoint file.
    pub fn persist(&self) -> Result<(), LogError> {
        let mut payload = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        for e in &self.entries {
            payload.extend_from_slice(&e.epoch.to_be_bytes());
            payload.extend_from_slice(&e.start_offset.to_be_bytes());
        }
        write_checksummed(&self.dir, FILE, MAGIC, VERSION, &payload)
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset`. Entries it contradicts
    /// (a later or equal epoch, or a start at or after it) are dropped, as
    /// Kafka does. Negative epochs (none assigned) are ignored. Returns
    /// whether anything changed.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 {
            return false;
        }
        if let Some(last) = self.entries.last() {
            if last.epoch == epoch && last.start_offset <= start_offset {
                return false;
            }
        }
        self.entries
            .retain(|e| e.epoch < epoch && e.start_offset < start_offset);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// The log was truncated to end at `end_offset`: epochs starting at or after it go.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        self.entries.len() != before
    }

    /// The log now starts at `start_offset`: the epoch in force there is
    /// kept, moved to start there; earlier ones go.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let in_force = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        let Some(keep_from) = in_force.checked_sub(1) else {
            return false;
        };
        let moved = self.entries[keep_from].start_offset != start_offset;
        if keep_from == 0 && !moved {
            return false;
        }
        self.entries.drain(..keep_from);
        self.entries[0].start_offset = start_offset;
        true
    }

    pub fn clear(&mut self) -> bool {
        let changed = !self.entries.is_empty();
        self.entries.clear();
        changed
    }

    /// Kafka's `endOffsetFor`: for `epoch`, the largest known epoch at or
    /// below it and the start offset of the first epoch above it (the log
    /// end for the latest epoch). An epoch below every known one gives
    /// `(epoch, first start offset)`; an undefined (negative) epoch, an epoch
    /// above every known one or an empty cache gives `None`.
    pub fn end_offset_for(&self, epoch: i32, log_end: i64) -> Option<(i32, i64)> {
        if epoch < 0 {
            return None;
        }
        if self.latest_epoch() == Some(epoch) {
            return Some((epoch, log_end));
        }
        let higher = self.entries.partition_point(|e| e.epoch <= epoch);
        let next = self.entries.get(higher)?;
        match higher.checked_sub(1) {
            Some(floor) => Some((self.entries[floor].epoch, next.start_offset)),
            None => Some((epoch, next.start_offset)),
        }
    }
}
