//! The replica manager: the partitions this broker hosts, kept in step with
//! the metadata log.
//!
//! In: at start-up, the partition directories already in `log.dirs`
//! (opened and recovered by [`ReplicaManager::open`]); then every metadata
//! delta ([`ReplicaManager::apply`], through [`ReplicaPublisher`]): a
//! partition this broker now leads or follows gets a log (created if new)
//! and its leader, epoch and ISR; a partition it no longer hosts, or whose
//! topic was deleted, is removed from disk; changed topic configs reach the
//! logs. Out: [`Partition`]s for the Produce, Fetch and ListOffsets
//! handlers, looked up by topic id and partition index.
//!
//! A partition this broker follows is fetched from its leader by
//! [`ReplicaFetchers`]; one it leads tracks its followers and asks the
//! controller for ISR changes ([`isr_manager`]).
//!
//! A storage error on any partition takes its whole log dir offline
//! ([`log_dirs`], as Kafka's LogDirFailureChannel): the dir's partitions
//! stop being served and are reported to the controller in heartbeats
//! ([`offline`] says why partitions, not only dirs). A partition known
//! offline is never recreated by a metadata delta: its directory may hold
//! the only copy of its data.
//!
//! A background task ([`ReplicaManager::run_maintenance`]) applies the flush
//! policy, retention and high-watermark checkpoints on blocking threads, so
//! no fsync runs on a runtime worker; the cleaner threads
//! ([`ReplicaManager::run_cleaner`]) compact the logs of compacted topics. [`ReplicaManager::close`] is the clean
//! shutdown: flush, checkpoint and mark every log clean.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kraft_log::{delete_partition_dir, PartitionLog, PartitionMetadata};
use kraft_metadata::{
    ConfigResource, ConfigResourceType, MetadataDelta, MetadataImage, PartitionRegistration,
};
use uuid::Uuid;

use crate::metadata_loader::MetadataPublisher;

pub mod cleaner;
#[cfg(test)]
mod cleaner_tests;
pub mod disk;
pub mod fetcher;
pub mod follower_progress;
pub mod isr_manager;
pub mod log_config;
pub mod log_dirs;
mod maintenance;
mod offline;
pub mod partition;
#[cfg(test)]
mod tests;

pub use cleaner::CleanerSettings;
pub use fetcher::ReplicaFetchers;
pub use log_config::{partition_settings, LogDefaults, PartitionSettings};
pub use log_dirs::LogDirFailures;
pub use offline::OfflineStorage;
pub use partition::{Partition, PartitionError, ReplicaState};

/// The replica manager's settings (Kafka's keys in the field docs).
#[derive(Clone, Debug)]
pub struct ReplicaManagerConfig {
    pub node_id: i32,
    /// `log.dirs`: where partition logs live.
    pub log_dirs: Vec<PathBuf>,
    /// The broker's `log.*` defaults for topic configs.
    pub defaults: LogDefaults,
    /// `log.retention.check.interval.ms` (default 5 minutes).
    pub retention_check_interval: Duration,
    /// `producer.id.expiration.ms` (default 1 day): checked with retention.
    pub producer_id_expiration: Duration,
    /// `replica.high.watermark.checkpoint.interval.ms` (default 5 s).
    pub checkpoint_interval: Duration,
    /// `replica.lag.time.max.ms` (default 30 s): a follower not caught up
    /// for this long leaves the ISR.
    pub replica_lag_time_max: Duration,
    /// `log.cleaner.*`: the cleaner threads of compacted topics.
    pub cleaner: CleanerSettings,
}

impl ReplicaManagerConfig {
    /// Kafka's defaults for one broker and its log dirs.
    pub fn new(node_id: i32, log_dirs: Vec<PathBuf>) -> ReplicaManagerConfig {
        ReplicaManagerConfig {
            node_id,
            log_dirs,
            defaults: LogDefaults::new(),
            retention_check_interval: Duration::from_secs(300),
            producer_id_expiration: Duration::from_secs(24 * 60 * 60),
            checkpoint_interval: Duration::from_secs(5),
            replica_lag_time_max: Duration::from_secs(30),
            cleaner: CleanerSettings::default(),
        }
    }
}

type PartitionKey = (Uuid, i32);

/// What this broker knows of one partition.
pub enum PartitionLookup {
    /// Hosted here (possibly as a follower, or not yet told its leader).
    Hosted(Arc<Partition>),
    /// Hosted here but its log could not be opened: KAFKA_STORAGE_ERROR.
    Offline(String),
    /// Not hosted here.
    NotHosted,
}

/// The partitions this broker hosts.
pub struct ReplicaManager {
    config: ReplicaManagerConfig,
    partitions: RwLock<HashMap<PartitionKey, Arc<Partition>>>,
    /// Partitions that cannot be served (their log failed to open, or
    /// their log dir failed), with the reason.
    offline: RwLock<HashMap<PartitionKey, String>>,
    /// The failed log dirs, shared with every partition.
    failures: Arc<LogDirFailures>,
    /// The failures' generation last swept (`offline.rs`).
    swept: AtomicU64,
    /// Fetch the partitions this broker follows.
    fetchers: ReplicaFetchers,
    /// False while this broker is fenced: no partition acknowledges writes.
    may_lead: Arc<AtomicBool>,
}

impl std::fmt::Debug for ReplicaManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaManager")
            .field("node_id", &self.config.node_id)
            .field("partitions", &self.read_partitions().len())
            .finish()
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl ReplicaManager {
    /// Opens (and recovers) every partition log already on disk. Blocking:
    /// call it off the runtime. A log that fails to open is reported
    /// offline, not fatal: the other partitions still serve.
    pub fn open(config: ReplicaManagerConfig, fetchers: ReplicaFetchers) -> ReplicaManager {
        let may_lead = Arc::new(AtomicBool::new(true));
        let failures = Arc::new(LogDirFailures::default());
        let mut partitions = HashMap::new();
        let mut offline = HashMap::new();
        for found in disk::scan(&config.log_dirs) {
            let key = (found.topic_id, found.index);
            // Settings arrive with the metadata; recovery needs none of them.
            let settings = partition_settings(None, &config.defaults);
            match PartitionLog::open(&found.dir, settings.log.clone()) {
                Ok(log) => {
                    tracing::info!(dir = %found.dir.display(), end = log.log_end_offset(), "loaded partition log");
                    let partition = Partition::new_in(
                        found.topic_id,
                        found.topic,
                        found.index,
                        config.node_id,
                        log,
                        settings,
                        may_lead.clone(),
                        failures.clone(),
                    );
                    partitions.insert(key, partition);
                }
                Err(e) => {
                    tracing::error!(dir = %found.dir.display(), error = %e, "partition log is offline");
                    offline.insert(key, e.to_string());
                }
            }
        }
        ReplicaManager {
            config,
            partitions: RwLock::new(partitions),
            offline: RwLock::new(offline),
            failures,
            swept: AtomicU64::new(0),
            fetchers,
            may_lead,
        }
    }

    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    pub fn config(&self) -> &ReplicaManagerConfig {
        &self.config
    }

    /// Whether partitions may acknowledge writes as leader (false while
    /// this broker counts itself fenced).
    pub fn may_lead(&self) -> bool {
        self.may_lead.load(Ordering::Acquire)
    }

    /// Lets partitions acknowledge writes as leader, or stops them (while
    /// this broker is fenced).
    pub fn set_may_lead(&self, may_lead: bool) {
        if self.may_lead.swap(may_lead, Ordering::AcqRel) != may_lead {
            tracing::info!(
                node = self.config.node_id,
                may_lead,
                "leadership of partitions allowed"
            );
            // Wake produces waiting for replication so they answer now.
            for p in self.partitions() {
                p.wake();
            }
        }
    }

    fn read_partitions(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<PartitionKey, Arc<Partition>>> {
        self.partitions.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_partitions(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<PartitionKey, Arc<Partition>>> {
        self.partitions.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Looks a partition up by topic id and index.
    pub fn lookup(&self, topic_id: Uuid, index: i32) -> PartitionLookup {
        self.sweep_offline_dirs();
        if let Some(p) = self.read_partitions().get(&(topic_id, index)) {
            return PartitionLookup::Hosted(p.clone());
        }
        let offline = self.offline.read().unwrap_or_else(|e| e.into_inner());
        match offline.get(&(topic_id, index)) {
            Some(reason) => PartitionLookup::Offline(reason.clone()),
            None => PartitionLookup::NotHosted,
        }
    }

    /// Every hosted partition.
    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.sweep_offline_dirs();
        self.read_partitions().values().cloned().collect()
    }

    /// Brings the hosted partitions in line with a metadata delta.
    pub fn apply(&self, delta: &MetadataDelta, image: &MetadataImage) {
        self.sweep_offline_dirs();
        let node_id = self.config.node_id;
        if let Some(topics) = delta.topics() {
            let changes = topics.local_changes(node_id);
            for ((topic_id, index), name) in &changes.deletes {
                self.remove(*topic_id, *index, name);
            }
            for ((topic_id, index), registration) in
                changes.leaders.iter().chain(&changes.followers)
            {
                let Some(topic) = image.topics().topic(*topic_id) else {
                    continue;
                };
                self.become_replica(topic.name(), *topic_id, *index, registration, image);
            }
        }
        if let Some(configs) = delta.configs() {
            for (resource, _) in configs.changed_resources() {
                if resource.resource_type == ConfigResourceType::ConfigResourceTopic {
                    self.refresh_settings(&resource.name, image);
                }
            }
        }
    }

    /// Makes this broker a replica (leader or follower) of a partition.
    fn become_replica(
        &self,
        topic: &str,
        topic_id: Uuid,
        index: i32,
        registration: &PartitionRegistration,
        image: &MetadataImage,
    ) {
        if self.is_offline(topic_id, index) {
            // Its directory may hold the only copy: never recreate it.
            self.fetchers.unfollow(topic_id, index);
            return;
        }
        let existing = self.read_partitions().get(&(topic_id, index)).cloned();
        let partition = match existing {
            Some(p) => p,
            None => match self.create(topic, topic_id, index, image) {
                Some(p) => p,
                None => return,
            },
        };
        let node_id = self.config.node_id;
        if partition.set_state(registration.clone(), now_ms()) {
            tracing::info!(
                partition = %format!("{topic}-{index}"),
                epoch = registration.leader_epoch,
                end = partition.log().log_end_offset(),
                "became leader"
            );
        }
        if registration.leader == node_id || registration.leader < 0 {
            self.fetchers.unfollow(topic_id, index);
        } else {
            self.fetchers
                .follow(partition, registration.leader, registration.leader_epoch);
        }
    }

    /// Creates a new partition log (replacing any stale directory of the
    /// same name left by a deleted topic).
    fn create(
        &self,
        topic: &str,
        topic_id: Uuid,
        index: i32,
        image: &MetadataImage,
    ) -> Option<Arc<Partition>> {
        let name = disk::partition_dir_name(topic, index);
        // A directory with this name from an older topic of the same name.
        let stale: Vec<PartitionKey> = self
            .read_partitions()
            .iter()
            .filter(|(_, p)| p.topic() == topic && p.index() == index)
            .map(|(k, _)| *k)
            .collect();
        for (old_id, old_index) in stale {
            self.remove(old_id, old_index, topic);
        }
        let counts = self.dir_counts();
        let online: Vec<PathBuf> = self
            .config
            .log_dirs
            .iter()
            .filter(|d| !self.failures.is_offline(d))
            .cloned()
            .collect();
        if online.is_empty() {
            tracing::error!(partition = %name, "cannot create a partition log: every log dir is offline");
            self.offline
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert((topic_id, index), "every log dir is offline".to_string());
            return None;
        }
        let dir = disk::choose_dir(&online, &counts).join(&name);
        if dir.exists() {
            if let Err(e) = delete_partition_dir(&dir) {
                tracing::error!(dir = %dir.display(), error = %e, "cannot remove a stale partition directory");
            }
        }
        let settings = self.settings_for(topic, image);
        let opened = std::fs::create_dir_all(&dir)
            .map_err(|e| e.to_string())
            .and_then(|()| PartitionMetadata::write(&dir, topic_id).map_err(|e| e.to_string()))
            .and_then(|()| {
                PartitionLog::open(&dir, settings.log.clone()).map_err(|e| e.to_string())
            });
        match opened {
            Ok(log) => {
                tracing::debug!(dir = %dir.display(), "created partition log");
                let partition = Partition::new_in(
                    topic_id,
                    topic.to_string(),
                    index,
                    self.config.node_id,
                    log,
                    settings,
                    self.may_lead.clone(),
                    self.failures.clone(),
                );
                self.write_partitions()
                    .insert((topic_id, index), partition.clone());
                Some(partition)
            }
            Err(reason) => {
                tracing::error!(dir = %dir.display(), %reason, "cannot create partition log");
                self.offline
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((topic_id, index), reason);
                None
            }
        }
    }

    fn is_offline(&self, topic_id: Uuid, index: i32) -> bool {
        self.offline
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&(topic_id, index))
    }

    fn dir_counts(&self) -> HashMap<PathBuf, usize> {
        let mut counts = HashMap::new();
        for p in self.read_partitions().values() {
            if let Some(parent) = p.log().dir().parent() {
                *counts.entry(parent.to_path_buf()).or_insert(0) += 1;
            }
        }
        counts
    }

    fn settings_for(&self, topic: &str, image: &MetadataImage) -> PartitionSettings {
        let configs = image.configs().resource(&ConfigResource::topic(topic));
        partition_settings(configs, &self.config.defaults)
    }

    fn refresh_settings(&self, topic: &str, image: &MetadataImage) {
        let settings = self.settings_for(topic, image);
        for p in self.partitions() {
            if p.topic() == topic {
                p.set_settings(settings.clone());
            }
        }
    }

    /// Stops hosting a partition and deletes its directory.
    fn remove(&self, topic_id: Uuid, index: i32, topic: &str) {
        self.offline
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(topic_id, index));
        self.fetchers.unfollow(topic_id, index);
        let Some(partition) = self.write_partitions().remove(&(topic_id, index)) else {
            return;
        };
        // Wake long polls on it: they find the partition gone and answer.
        partition.set_state(
            PartitionRegistration {
                leader: kraft_metadata::NO_LEADER,
                leader_epoch: -1,
                ..Default::default()
            },
            now_ms(),
        );
        match delete_partition_dir(partition.log().dir()) {
            Ok(()) => {
                tracing::info!(partition = %format!("{topic}-{index}"), "deleted partition log")
            }
            Err(e) => {
                tracing::error!(partition = %format!("{topic}-{index}"), error = %e, "cannot delete partition log")
            }
        }
    }

    /// Deletes logs this broker should not have: their topic is gone from
    /// `image` (deleted while the broker was down) or the replica moved
    /// elsewhere. Call it only once the broker's metadata is caught up,
    /// since an older image may simply not know a new topic yet.
    pub fn remove_strays(&self, image: &MetadataImage) {
        let node_id = self.config.node_id;
        let strays: Vec<(PartitionKey, String)> = self
            .read_partitions()
            .iter()
            .filter(|((id, index), _)| {
                !image
                    .topics()
                    .partition(*id, *index)
                    .is_some_and(|p| p.has_replica(node_id))
            })
            .map(|(k, p)| (*k, p.topic().to_string()))
            .collect();
        for ((id, index), topic) in strays {
            tracing::info!(partition = %format!("{topic}-{index}"), "removing a stray partition log");
            self.remove(id, index, &topic);
        }
    }

    /// Stops every replica fetcher (the broker is going away).
    pub fn stop_fetching(&self) {
        self.fetchers.shutdown();
    }

    /// Clean shutdown of every log: flush, checkpoint, mark clean.
    /// Blocking.
    pub fn close(&self) {
        self.fetchers.shutdown();
        for p in self.partitions() {
            if let Err(e) = p.log().close() {
                tracing::error!(dir = %p.log().dir().display(), error = %e, "closing partition log failed");
            }
        }
    }
}

/// Feeds metadata deltas to the replica manager.
pub struct ReplicaPublisher(pub Arc<ReplicaManager>);

impl MetadataPublisher for ReplicaPublisher {
    fn publish(&mut self, delta: &MetadataDelta, image: &Arc<MetadataImage>) {
        self.0.apply(delta, image);
    }
}
