//! [`StorageError`]: what can go wrong in the storage. I/O and corruption
//! errors name the file (and, for corruption, the byte offset).

use std::path::PathBuf;

use kraft_checkpoint::CheckpointError;

/// Errors of the storage. I/O and corruption errors name the file.
#[derive(thiserror::Error, Debug)]
pub enum StorageError {
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt file {} at byte {offset}: {reason}", file.display())]
    Corrupt {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("cannot append entry {index}: the log starts at {first_index} (compacted)")]
    Compacted { index: u64, first_index: u64 },
    #[error("entries are not contiguous: expected index {expected}, got {got}")]
    NotContiguous { expected: u64, got: u64 },
    #[error("snapshot at index {index} is out of date: the log starts at {first_index}")]
    SnapshotOutOfDate { index: u64, first_index: u64 },
    #[error("snapshot at index {index} (term {term}) rejected: {reason}")]
    SnapshotRejected {
        index: u64,
        term: u64,
        reason: String,
    },
    #[error("cannot encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },
}

impl From<CheckpointError> for StorageError {
    fn from(e: CheckpointError) -> StorageError {
        match e {
            CheckpointError::Io { path, source } => StorageError::Io { path, source },
        }
    }
}

impl From<StorageError> for raft::Error {
    fn from(e: StorageError) -> raft::Error {
        raft::Error::Store(raft::StorageError::Other(Box::new(e)))
    }
}
