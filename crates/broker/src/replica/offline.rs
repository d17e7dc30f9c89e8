//! What the replica manager does when a log dir fails: the dir's
//! partitions stop being served here, and what is offline is reported to
//! the controller.
//!
//! In: [`LogDirFailures`] (a partition or log maintenance reported a
//! storage error). Out: the dir's partitions move from the hosted map to
//! the offline one, so lookups answer KAFKA_STORAGE_ERROR; their fetchers
//! stop; nothing touches their files again (no flush, checkpoint,
//! retention or close). [`ReplicaManager::offline_storage`] is what the
//! broker lifecycle puts in each heartbeat (Kafka's OfflineLogDirs).
//!
//! Why partitions, not just dirs, go to the controller: Kraft's metadata
//! has no replica-to-dir assignment (Kafka's KIP-858 adds one), so the
//! controller cannot tell which replicas a dir held. The broker knows, and
//! lists them; the controller then treats exactly those replicas as it
//! treats a fenced broker's (out of the ISR, leadership moved) while the
//! broker stays registered and serves its other dirs. With one log dir
//! (the default) that is every replica of the broker. A failed dir is
//! never retried: it stays offline until the broker restarts, which
//! reopens and recovers its logs.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use uuid::Uuid;

use super::log_dirs::LogDirFailures;
use super::{PartitionKey, ReplicaManager};

/// What this broker cannot serve, for the heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OfflineStorage {
    /// Failed log dirs, as configured in `log.dirs`.
    pub log_dirs: Vec<PathBuf>,
    /// Hosted partitions that are offline (in a failed dir, or whose log
    /// did not open), by topic id and index, sorted.
    pub partitions: Vec<(Uuid, i32)>,
    /// Every configured log dir has failed: this broker can host nothing,
    /// so it asks to be fenced and no new replica is placed on it.
    pub all_log_dirs_offline: bool,
}

impl ReplicaManager {
    /// The broker's failed log dirs.
    pub fn log_dir_failures(&self) -> &Arc<LogDirFailures> {
        &self.failures
    }

    /// Moves the partitions of newly failed dirs out of service. Cheap when
    /// no dir failed since the last call.
    pub(super) fn sweep_offline_dirs(&self) {
        let generation = self.failures.generation();
        if self.swept.swap(generation, Ordering::AcqRel) == generation {
            return;
        }
        let failed: Vec<PartitionKey> = self
            .read_partitions()
            .iter()
            .filter(|(_, p)| p.is_offline())
            .map(|(k, _)| *k)
            .collect();
        for key in failed {
            let Some(partition) = self.write_partitions().remove(&key) else {
                continue;
            };
            let dir = partition.log_dir().to_path_buf();
            let reason = self
                .failures
                .reason(&dir)
                .unwrap_or_else(|| "storage failure".to_string());
            tracing::error!(
                partition = %format!("{}-{}", partition.topic(), partition.index()),
                dir = %dir.display(),
                "partition is offline: its log dir failed"
            );
            self.offline
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    key,
                    format!("log dir {} is offline: {reason}", dir.display()),
                );
            self.fetchers.unfollow(key.0, key.1);
            // Waiters (acks=all produces, long polls) answer now.
            partition.wake();
        }
    }

    /// The failed dirs and the offline partitions, for the heartbeat.
    pub fn offline_storage(&self) -> OfflineStorage {
        self.sweep_offline_dirs();
        let mut partitions: Vec<(Uuid, i32)> = self
            .offline
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect();
        partitions.sort_unstable();
        let log_dirs = self.failures.offline_dirs();
        let all_log_dirs_offline = !self.config.log_dirs.is_empty()
            && self
                .config
                .log_dirs
                .iter()
                .all(|d| self.failures.is_offline(d));
        OfflineStorage {
            log_dirs,
            partitions,
            all_log_dirs_offline,
        }
    }
}
