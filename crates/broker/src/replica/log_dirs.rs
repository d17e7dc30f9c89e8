//! [`LogDirFailures`]: which of this broker's log dirs have failed, as
//! Kafka's `LogDirFailureChannel`.
//!
//! In: a storage error from any partition log (an I/O error, or a log that
//! one already took offline — [`kraft_log::LogError::is_storage_failure`]),
//! reported by the partition that met it ([`Partition`](super::Partition))
//! or by log maintenance, with the log dir holding it. Out: whether a dir
//! is offline, and a generation number that moves with every newly failed
//! dir so the replica manager notices cheaply.
//!
//! As in Kafka, one failed file condemns the whole dir: the disk under it
//! is suspect, and a partial view of what failed cannot be trusted. A dir
//! stays offline for the life of the process (nothing is retried: after a
//! failed fsync the kernel may have dropped the pages, so a later success
//! would prove nothing); restarting the broker reopens and recovers its
//! logs. What follows is the replica manager's: the dir's partitions leave
//! its map and answer KAFKA_STORAGE_ERROR, and the lifecycle reports the
//! dir and its partitions in every heartbeat.
//!
//! A dir is named by its path as configured in `log.dirs`: unique within a
//! broker, which is all the controller needs, since Kraft's metadata keeps
//! no replica-to-dir assignment (Kafka's `directory.id` in meta.properties
//! exists for that assignment, and is not needed here).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use kraft_log::LogError;

/// The failed log dirs of this broker, shared by its partitions.
#[derive(Debug, Default)]
pub struct LogDirFailures {
    /// Offline dir -> the error that took it offline.
    offline: RwLock<BTreeMap<PathBuf, String>>,
    generation: AtomicU64,
}

impl LogDirFailures {
    /// Takes `dir` offline if `error` is a storage failure. Returns whether
    /// the dir is offline now.
    pub fn report(&self, dir: &Path, error: &LogError) -> bool {
        if !error.is_storage_failure() {
            return self.is_offline(dir);
        }
        let mut offline = self.offline.write().unwrap_or_else(|e| e.into_inner());
        if !offline.contains_key(dir) {
            tracing::error!(dir = %dir.display(), %error, "log dir is offline; its partitions stop being served here");
            offline.insert(dir.to_path_buf(), error.to_string());
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        true
    }

    /// Whether `dir` has failed.
    pub fn is_offline(&self, dir: &Path) -> bool {
        // The common case, on every produce: no dir ever failed.
        if self.generation() == 0 {
            return false;
        }
        self.offline
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(dir)
    }

    /// Why `dir` is offline, if it is.
    pub fn reason(&self, dir: &Path) -> Option<String> {
        self.offline
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(dir)
            .cloned()
    }

    /// Every failed dir.
    pub fn offline_dirs(&self) -> Vec<PathBuf> {
        self.offline
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// Moves each time a dir goes offline.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_storage_failures_take_a_dir_offline() {
        let failures = LogDirFailures::default();
        let dir = Path::new("/data/a");
        let out_of_range = LogError::OffsetOutOfRange {
            offset: 9,
            log_start: 0,
            log_end: 1,
        };
        assert!(!failures.report(dir, &out_of_range));
        assert_eq!(failures.generation(), 0);
        let io = LogError::Offline {
            dir: dir.join("t-0"),
        };
        assert!(failures.report(dir, &io));
        assert!(failures.report(dir, &io), "still offline");
        assert_eq!(failures.generation(), 1, "one dir went offline once");
        assert!(failures.is_offline(dir));
        assert!(!failures.is_offline(Path::new("/data/b")));
        assert_eq!(failures.offline_dirs(), vec![dir.to_path_buf()]);
        assert!(failures.reason(dir).is_some());
    }
}
