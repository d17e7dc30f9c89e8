//! [`LogReader`]: a read-only, cheaply cloned view of the log for tokio tasks
//! (brokers and observers fetching metadata from an offset) while the Raft
//! thread writes. It only ever shows committed entries, straight from memory:
//! no file I/O, and the lock is held just long enough to clone the entries.

use std::sync::{Arc, RwLock};

use bytes::Bytes;
use raft::eraftpb::Entry;

use super::log_state::{self, LogState};

/// The answer to [`LogReader::read_committed`].
#[derive(Debug, Clone, PartialEq)]
pub enum ReadCommitted {
    /// Committed entries from the requested index on, in order. Empty when
    /// nothing at or after that index is committed yet.
    Entries(Vec<Entry>),
    /// The requested index is covered by a snapshot (the log before it is
    /// gone): load the snapshot at (`index`, `term`), then read from
    /// `index + 1`.
    SnapshotRequired { index: u64, term: u64 },
}

/// A handle on the committed part of the log, for other threads.
#[derive(Clone)]
pub struct LogReader {
    state: Arc<RwLock<LogState>>,
}

impl LogReader {
    pub(crate) fn new(state: Arc<RwLock<LogState>>) -> LogReader {
        LogReader { state }
    }

    /// Committed entries starting at `from`: at least one if any is
    /// available, then no more than `max_bytes` of encoded entries.
    /// `SnapshotRequired` when `from` is at or below the newest snapshot's
    /// index; an empty `Entries` when `from` is past the commit index.
    pub fn read_committed(&self, from: u64, max_bytes: u64) -> ReadCommitted {
        let state = log_state::read(&self.state);
        if let Some(snapshot) = &state.snapshot {
            if from <= snapshot.index {
                return ReadCommitted::SnapshotRequired {
                    index: snapshot.index,
                    term: snapshot.term,
                };
            }
        }
        ReadCommitted::Entries(state.committed_from(from, max_bytes))
    }

    /// The highest committed index held by this node.
    pub fn commit_index(&self) -> u64 {
        log_state::read(&self.state).committed_index()
    }

    /// The first index in the log (the newest snapshot's index + 1).
    pub fn first_index(&self) -> u64 {
        log_state::read(&self.state).first_index()
    }

    /// The last index in the log, committed or not.
    pub fn last_index(&self) -> u64 {
        log_state::read(&self.state).last_index()
    }

    /// The newest snapshot: (index, term, bytes).
    pub fn latest_snapshot(&self) -> Option<(u64, u64, Bytes)> {
        let state = log_state::read(&self.state);
        state
            .snapshot
            .as_ref()
            .map(|s| (s.index, s.term, s.data.clone()))
    }
}
