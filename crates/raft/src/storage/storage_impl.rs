//! `raft::Storage` for [`RaftStorage`]: answered from memory, with the
//! semantics of raft-rs's `MemStorage` (the snapshot's term at its index,
//! `Compacted` below the first index, `limit_size` for `max_size`).

use raft::eraftpb::{Entry, Snapshot};
use raft::{Error, GetEntriesContext, RaftState, Storage, StorageError as RaftStorageError};

use super::log_state;
use super::RaftStorage;

impl Storage for RaftStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let state = log_state::read(&self.state);
        Ok(RaftState::new(
            state.hard_state.clone(),
            state.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        log_state::read(&self.state)
            .entries(low, high, max_size.into())
            .map_err(Error::Store)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        log_state::read(&self.state).term(idx).map_err(Error::Store)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(log_state::read(&self.state).first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(log_state::read(&self.state).last_index())
    }

    /// The newest snapshot with the current conf state (voters are static).
    /// `SnapshotTemporarilyUnavailable` if there is none yet, or it is older
    /// than `request_index`: raft retries later.
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let state = log_state::read(&self.state);
        let Some(info) = state.snapshot.as_ref().filter(|s| s.index >= request_index) else {
            return Err(Error::Store(
                RaftStorageError::SnapshotTemporarilyUnavailable,
            ));
        };
        let mut snapshot = Snapshot {
            data: info.data.clone(),
            ..Snapshot::default()
        };
        let meta = snapshot.mut_metadata();
        meta.index = info.index;
        meta.term = info.term;
        meta.set_conf_state(state.conf_state.clone());
        Ok(snapshot)
    }
}
