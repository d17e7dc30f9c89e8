//! A partition's storage failures: an error from its log that means the
//! disk failed ([`LogError::is_storage_failure`]) is reported to the
//! broker's [`LogDirFailures`](crate::replica::LogDirFailures), which takes
//! the whole log dir offline.
//!
//! In: the results of the partition's log operations. Out: the report, a
//! wake-up of everything waiting on the partition, and whether its dir is
//! offline (then produce and acks=all waits answer KAFKA_STORAGE_ERROR).

use std::path::Path;

use kraft_log::LogError;

use super::{Partition, PartitionError};

impl Partition {
    /// The log dir (one of `log.dirs`) holding this partition's log.
    pub fn log_dir(&self) -> &Path {
        self.log.dir().parent().unwrap_or(Path::new("."))
    }

    /// Whether the log dir holding this partition has failed.
    pub fn is_offline(&self) -> bool {
        self.failures.is_offline(self.log_dir())
    }

    /// Reports a log error: a storage failure takes this partition's log
    /// dir offline, and everything waiting on the partition looks again.
    pub fn note_log_error(&self, error: &LogError) {
        if error.is_storage_failure() && self.failures.report(self.log_dir(), error) {
            self.wake();
        }
    }

    /// `result`, after reporting its error (see [`Self::note_log_error`]).
    pub(super) fn checked<T>(&self, result: Result<T, LogError>) -> Result<T, LogError> {
        if let Err(e) = &result {
            self.note_log_error(e);
        }
        result
    }

    /// The error for an operation on a partition whose log dir failed.
    pub(super) fn offline_error(&self) -> PartitionError {
        PartitionError::Log(LogError::Offline {
            dir: self.log.dir().to_path_buf(),
        })
    }
}
