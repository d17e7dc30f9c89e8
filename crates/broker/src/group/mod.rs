//! The group coordinator: consumer groups of the classic protocol
//! (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, ...), with
//! their state and committed offsets kept in `__consumer_offsets`.
//!
//! A group lives in partition `abs(hash(group)) % N` of `__consumer_offsets`
//! ([`partitioner`]); the leader of that partition is its coordinator.
//! When this broker becomes leader of such a partition (the metadata
//! publisher, [`publisher`]), it reads the partition back ([`loader`]) and
//! serves its groups from memory ([`shard::Shard`]); meanwhile requests
//! get COORDINATOR_LOAD_IN_PROGRESS, and after it loses leadership,
//! NOT_COORDINATOR. Each group is a pure state machine ([`state`],
//! [`join`], [`membership`]) whose changes are written to the partition as
//! Kafka's records ([`records`], [`snapshot`]) and acknowledged once
//! replicated. Offsets of groups without members expire ([`expiry`]).
//!
//! In: leadership changes from the metadata log; group requests from the
//! handlers in [`crate::handlers`], through [`GroupCoordinator::shard_for`].
//! Out: answers, and records appended to `__consumer_offsets`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kraft_metadata::CONSUMER_OFFSETS;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::metadata_cache::{CacheQueries, MetadataCache};
use crate::replica::{now_ms, PartitionLookup, ReplicaManager};

pub mod events;
pub mod expiry;
pub mod join;
pub mod loader;
pub mod member;
pub mod membership;
pub mod offset_delete;
pub mod partitioner;
pub mod publisher;
pub mod rebalance;
pub mod records;
pub mod shard;
pub mod shard_data;
pub mod shard_ops;
pub mod snapshot;
pub mod state;
pub mod txn_offsets;

pub use member::{JoinRequest, JoinResult, MemberRef, Protocol, SyncRequest, SyncResult};
pub use publisher::GroupPublisher;
pub use shard::Shard;
pub use shard_ops::{GroupListing, GroupSummary, OffsetCommit};
pub use state::{GroupState, GroupTimings};
pub use txn_offsets::TxnCommitter;

/// The coordinator's settings (Kafka's keys in the field docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupCoordinatorConfig {
    /// `offsets.topic.num.partitions` (50).
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor` (3): until this many brokers are
    /// alive, FindCoordinator answers COORDINATOR_NOT_AVAILABLE.
    pub offsets_topic_replication_factor: i16,
    /// `offsets.topic.segment.bytes` (100 MiB).
    pub offsets_topic_segment_bytes: i64,
    /// `offsets.commit.timeout.ms` (5 s): how long a write waits for the
    /// ISR.
    pub offsets_commit_timeout: Duration,
    /// `offset.metadata.max.bytes` (4096).
    pub offset_metadata_max_bytes: usize,
    /// `group.initial.rebalance.delay.ms` (3 s).
    pub initial_rebalance_delay: Duration,
    /// `group.min.session.timeout.ms` (6 s).
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms` (30 min).
    pub max_session_timeout_ms: i32,
    /// `offsets.retention.minutes` (7 days): how long the offsets of a
    /// group without members are kept.
    pub offsets_retention: Duration,
    /// `offsets.retention.check.interval.ms` (10 min): how often each
    /// shard looks for expired offsets.
    pub offsets_retention_check_interval: Duration,
}

impl Default for GroupCoordinatorConfig {
    fn default() -> Self {
        GroupCoordinatorConfig {
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: 3,
            offsets_topic_segment_bytes: 100 * 1024 * 1024,
            offsets_commit_timeout: Duration::from_secs(5),
            offset_metadata_max_bytes: 4096,
            initial_rebalance_delay: Duration::from_secs(3),
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            offsets_retention: Duration::from_secs(10_080 * 60),
            offsets_retention_check_interval: Duration::from_millis(600_000),
        }
    }
}

impl GroupCoordinatorConfig {
    pub fn timings(&self) -> GroupTimings {
        GroupTimings {
            initial_rebalance_delay_ms: self.initial_rebalance_delay.as_millis() as i64,
            ..GroupTimings::default()
        }
    }
}

/// A leadership change of a `__consumer_offsets` partition on this broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leadership {
    Lead {
        partition: i32,
        topic_id: Uuid,
        leader_epoch: i32,
    },
    Resign {
        partition: i32,
    },
}

/// One partition's coordinator state on this broker.
enum Slot {
    Loading {
        epoch: i32,
        attempt: u64,
        /// Markers replicated while the partition loads, applied once it
        /// is loaded when the load read stopped before them.
        markers: Vec<ReplicatedMarker>,
    },
    Loaded {
        shard: Arc<Shard>,
        timers: JoinHandle<()>,
    },
}

/// A transaction marker appended to a `__consumer_offsets` partition and
/// replicated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicatedMarker {
    pub producer_id: i64,
    pub commit: bool,
    pub offset: i64,
    pub leader_epoch: i32,
}

/// The group coordinator of one broker.
pub struct GroupCoordinator {
    config: GroupCoordinatorConfig,
    replicas: Arc<ReplicaManager>,
    cache: MetadataCache,
    slots: Mutex<HashMap<i32, Slot>>,
    attempts: std::sync::atomic::AtomicU64,
    events: mpsc::UnboundedSender<Leadership>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Leadership>>>,
}

impl std::fmt::Debug for GroupCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCoordinator")
            .field("shards", &self.lock_slots().len())
            .finish()
    }
}

impl GroupCoordinator {
    pub fn new(
        config: GroupCoordinatorConfig,
        replicas: Arc<ReplicaManager>,
        cache: MetadataCache,
    ) -> Arc<GroupCoordinator> {
        let (events, receiver) = mpsc::unbounded_channel();
        Arc::new(GroupCoordinator {
            config,
            replicas,
            cache,
            slots: Mutex::new(HashMap::new()),
            attempts: std::sync::atomic::AtomicU64::new(0),
            events,
            receiver: Mutex::new(Some(receiver)),
        })
    }

    pub fn config(&self) -> &GroupCoordinatorConfig {
        &self.config
    }

    /// The metadata publisher that tells this coordinator which partitions
    /// it leads.
    pub fn publisher(&self) -> GroupPublisher {
        GroupPublisher::new(self.replicas.node_id(), self.events.clone())
    }

    fn lock_slots(&self) -> MutexGuard<'_, HashMap<i32, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Acts on leadership changes until the publisher is gone. Run it as a
    /// task; abort it (then call [`close`](Self::close)) to stop.
    pub async fn run(self: Arc<Self>) {
        let receiver = self
            .receiver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(mut receiver) = receiver else {
            return;
        };
        while let Some(event) = receiver.recv().await {
            match event {
                Leadership::Lead {
                    partition,
                    topic_id,
                    leader_epoch,
                } => self.lead(partition, topic_id, leader_epoch),
                Leadership::Resign { partition } => self.resign(partition),
            }
        }
    }

    /// Starts loading a partition this broker now leads (unless it already
    /// serves it in this leader epoch).
    fn lead(self: &Arc<Self>, partition: i32, topic_id: Uuid, epoch: i32) {
        let attempt = self
            .attempts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        {
            let mut slots = self.lock_slots();
            match slots.get(&partition) {
                Some(Slot::Loading { epoch: e, .. }) if *e == epoch => return,
                Some(Slot::Loaded { shard, .. }) if shard.leader_epoch == epoch => return,
                _ => {}
            }
            if let Some(Slot::Loaded { shard, timers }) = slots.remove(&partition) {
                shard.close(ResponseError::NotCoordinator.code());
                timers.abort();
            }
            slots.insert(
                partition,
                Slot::Loading {
                    epoch,
                    attempt,
                    markers: Vec::new(),
                },
            );
        }
        let PartitionLookup::Hosted(hosted) = self.replicas.lookup(topic_id, partition) else {
            tracing::warn!(
                partition,
                "leading a __consumer_offsets partition this broker does not host"
            );
            self.lock_slots().remove(&partition);
            return;
        };
        let coordinator = self.clone();
        tokio::spawn(async move {
            let timings = coordinator.config.timings();
            let reader = hosted.clone();
            let started = std::time::Instant::now();
            let loaded =
                tokio::task::spawn_blocking(move || loader::load(&reader, timings, now_ms())).await;
            let mut slots = coordinator.lock_slots();
            if !matches!(slots.get(&partition), Some(Slot::Loading { attempt: a, .. }) if *a == attempt)
            {
                return;
            }
            let early = match slots.get_mut(&partition) {
                Some(Slot::Loading { markers, .. }) => std::mem::take(markers),
                _ => Vec::new(),
            };
            match loaded {
                Ok(Ok((mut data, stats))) => {
                    for m in early {
                        if m.offset >= stats.end_offset && m.leader_epoch == epoch {
                            data.complete_txn(m.producer_id, m.commit, m.offset);
                        }
                    }
                    tracing::info!(
                        partition,
                        epoch,
                        groups = data.groups.len(),
                        records = stats.records,
                        ms = started.elapsed().as_millis() as u64,
                        "loaded __consumer_offsets partition"
                    );
                    let shard = Shard::new(
                        partition,
                        hosted,
                        epoch,
                        data,
                        timings,
                        coordinator.config.offsets_commit_timeout,
                    );
                    let retention = coordinator.config.offsets_retention;
                    let interval = coordinator.config.offsets_retention_check_interval;
                    let (deadlines, expiry) = (shard.clone(), shard.clone());
                    let timers = tokio::spawn(async move {
                        tokio::join!(
                            deadlines.run_timers(),
                            expiry.run_expiry(retention, interval)
                        );
                    });
                    slots.insert(partition, Slot::Loaded { shard, timers });
                }
                Ok(Err(e)) => {
                    tracing::error!(partition, error = %e, "cannot load __consumer_offsets partition");
                    slots.remove(&partition);
                }
                Err(e) => {
                    tracing::error!(partition, error = %e, "loading __consumer_offsets partition failed");
                    slots.remove(&partition);
                }
            }
        });
    }

    /// Stops serving a partition this broker no longer leads.
    fn resign(&self, partition: i32) {
        if let Some(Slot::Loaded { shard, timers }) = self.lock_slots().remove(&partition) {
            tracing::info!(partition, "unloaded __consumer_offsets partition");
            shard.close(ResponseError::NotCoordinator.code());
            timers.abort();
        }
    }

    /// Stops serving every partition (the broker is stopping).
    pub fn close(&self) {
        let slots: Vec<Slot> = self.lock_slots().drain().map(|(_, s)| s).collect();
        for slot in slots {
            if let Slot::Loaded { shard, timers } = slot {
                shard.close(ResponseError::NotCoordinator.code());
                timers.abort();
            }
        }
    }

    /// How many partitions `__consumer_offsets` has (the configured count
    /// until it exists).
    pub fn partition_count(&self) -> i32 {
        self.cache
            .image()
            .partitions_of(CONSUMER_OFFSETS)
            .map(|p| p.len() as i32)
            .filter(|n| *n > 0)
            .unwrap_or(self.config.offsets_topic_num_partitions)
    }

    /// The partition of `__consumer_offsets` that holds `group`.
    pub fn partition_for(&self, group: &str) -> i32 {
        partitioner::partition_for(group, self.partition_count())
    }

    /// The loaded shard serving `group`, or the error a client gets:
    /// COORDINATOR_LOAD_IN_PROGRESS while loading, NOT_COORDINATOR if this
    /// broker does not lead its partition.
    pub fn shard_for(&self, group: &str) -> Result<Arc<Shard>, i16> {
        let partition = self.partition_for(group);
        match self.lock_slots().get(&partition) {
            Some(Slot::Loaded { shard, .. }) => Ok(shard.clone()),
            Some(Slot::Loading { .. }) => Err(ResponseError::CoordinatorLoadInProgress.code()),
            None => Err(ResponseError::NotCoordinator.code()),
        }
    }

    /// A transaction marker appended to partition `partition` of
    /// `__consumer_offsets` and replicated: the offsets the transaction
    /// wrote there are committed or dropped (now, or once the partition is
    /// loaded).
    pub fn complete_txn(&self, partition: i32, marker: ReplicatedMarker) {
        let shard = match self.lock_slots().get_mut(&partition) {
            Some(Slot::Loaded { shard, .. }) => shard.clone(),
            Some(Slot::Loading { markers, .. }) => {
                markers.push(marker);
                return;
            }
            None => return,
        };
        shard.complete_txn(
            marker.producer_id,
            marker.commit,
            marker.offset,
            marker.leader_epoch,
        );
    }

    /// Every loaded shard, and whether any partition is still loading.
    pub fn shards(&self) -> (Vec<Arc<Shard>>, bool) {
        let slots = self.lock_slots();
        let loading = slots.values().any(|s| matches!(s, Slot::Loading { .. }));
        let loaded = slots
            .values()
            .filter_map(|s| match s {
                Slot::Loaded { shard, .. } => Some(shard.clone()),
                Slot::Loading { .. } => None,
            })
            .collect();
        (loaded, loading)
    }
}
