//! [`TransactionCoordinator`]: which `__transaction_state` partitions this
//! broker coordinates, loading each when it becomes the partition's leader
//! and dropping it when it stops.
//!
//! In: [`Leadership`] events from the metadata publisher (the group
//! coordinator's, pointed at `__transaction_state`). Out: loaded
//! [`TxnShard`]s for [`super::ops`] through [`TransactionCoordinator::shard_for`]
//! — or COORDINATOR_LOAD_IN_PROGRESS while the partition loads, and
//! NOT_COORDINATOR when this broker does not lead it. After a load, every
//! transaction found in PrepareCommit or PrepareAbort is completed (its
//! markers written, then CompleteCommit or CompleteAbort), and a task
//! aborts the partition's transactions that outlive their timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use kafka_protocol::error::ResponseError;
use kraft_metadata::TRANSACTION_STATE;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::loader;
use super::markers::MarkerWriter;
use super::shard::TxnShard;
use super::verify::{TxnVerifier, TxnWrite};
use super::{ops, TransactionCoordinatorConfig};
use crate::group::{GroupCoordinator, GroupPublisher, Leadership};
use crate::metadata_cache::{CacheQueries, MetadataCache};
use crate::replica::{PartitionLookup, ReplicaManager};

enum Slot {
    Loading {
        epoch: i32,
        attempt: u64,
    },
    Loaded {
        shard: Arc<TxnShard>,
        tasks: JoinHandle<()>,
    },
}

/// The transaction coordinator of one broker.
pub struct TransactionCoordinator {
    pub(super) config: TransactionCoordinatorConfig,
    replicas: Arc<ReplicaManager>,
    cache: MetadataCache,
    pub(super) markers: MarkerWriter,
    verifier: TxnVerifier,
    slots: Mutex<HashMap<i32, Slot>>,
    attempts: AtomicU64,
    events: mpsc::UnboundedSender<Leadership>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Leadership>>>,
}

impl std::fmt::Debug for TransactionCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionCoordinator")
            .field("partitions", &self.lock_slots().len())
            .finish()
    }
}

impl TransactionCoordinator {
    pub fn new(
        config: TransactionCoordinatorConfig,
        replicas: Arc<ReplicaManager>,
        cache: MetadataCache,
        listener_name: String,
        groups: Arc<GroupCoordinator>,
    ) -> Arc<TransactionCoordinator> {
        let (events, receiver) = mpsc::unbounded_channel();
        let verifier = TxnVerifier::new(
            replicas.node_id(),
            listener_name.clone(),
            cache.clone(),
            config.write_timeout,
        );
        let markers = MarkerWriter {
            node_id: replicas.node_id(),
            listener_name,
            cache: cache.clone(),
            replicas: replicas.clone(),
            write_timeout: config.write_timeout,
            groups,
        };
        Arc::new(TransactionCoordinator {
            config,
            replicas,
            cache,
            markers,
            verifier,
            slots: Mutex::new(HashMap::new()),
            attempts: AtomicU64::new(0),
            events,
            receiver: Mutex::new(Some(receiver)),
        })
    }

    /// KIP-890: whether `write`'s partition is in its producer's ongoing
    /// transaction, asking the transaction's coordinator ([`TxnVerifier`]).
    pub async fn verify(&self, write: TxnWrite<'_>) -> Result<(), i16> {
        self.verifier.verify(self, write).await
    }

    pub fn config(&self) -> &TransactionCoordinatorConfig {
        &self.config
    }

    /// The metadata publisher that tells this coordinator which
    /// `__transaction_state` partitions it leads.
    pub fn publisher(&self) -> GroupPublisher {
        GroupPublisher::for_topic(
            TRANSACTION_STATE,
            self.replicas.node_id(),
            self.events.clone(),
        )
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

    fn lead(self: &Arc<Self>, partition: i32, topic_id: Uuid, epoch: i32) {
        let attempt = self.attempts.fetch_add(1, Ordering::Relaxed);
        {
            let mut slots = self.lock_slots();
            match slots.get(&partition) {
                Some(Slot::Loading { epoch: e, .. }) if *e == epoch => return,
                Some(Slot::Loaded { shard, .. }) if shard.coordinator_epoch == epoch => return,
                _ => {}
            }
            if let Some(Slot::Loaded { shard, tasks }) = slots.remove(&partition) {
                shard.close();
                tasks.abort();
            }
            slots.insert(partition, Slot::Loading { epoch, attempt });
        }
        let PartitionLookup::Hosted(hosted) = self.replicas.lookup(topic_id, partition) else {
            tracing::warn!(
                partition,
                "leading a {TRANSACTION_STATE} partition this broker does not host"
            );
            self.lock_slots().remove(&partition);
            return;
        };
        let coordinator = self.clone();
        tokio::spawn(async move {
            let reader = hosted.clone();
            let loaded = tokio::task::spawn_blocking(move || loader::load(&reader)).await;
            let mut slots = coordinator.lock_slots();
            if !matches!(slots.get(&partition), Some(Slot::Loading { attempt: a, .. }) if *a == attempt)
            {
                return;
            }
            match loaded {
                Ok(Ok(ids)) => {
                    tracing::info!(
                        partition,
                        epoch,
                        ids = ids.len(),
                        "loaded {TRANSACTION_STATE} partition"
                    );
                    let shard = TxnShard::new(
                        partition,
                        hosted,
                        epoch,
                        ids,
                        coordinator.config.write_timeout,
                    );
                    let tasks = tokio::spawn(ops::after_load(coordinator.clone(), shard.clone()));
                    slots.insert(partition, Slot::Loaded { shard, tasks });
                }
                Ok(Err(e)) => {
                    tracing::error!(partition, error = %e, "cannot load {TRANSACTION_STATE} partition");
                    slots.remove(&partition);
                }
                Err(e) => {
                    tracing::error!(partition, error = %e, "loading {TRANSACTION_STATE} partition failed");
                    slots.remove(&partition);
                }
            }
        });
    }

    fn resign(&self, partition: i32) {
        if let Some(Slot::Loaded { shard, tasks }) = self.lock_slots().remove(&partition) {
            tracing::info!(partition, "unloaded {TRANSACTION_STATE} partition");
            shard.close();
            tasks.abort();
        }
    }

    /// Stops serving every partition (the broker is stopping).
    pub fn close(&self) {
        let slots: Vec<Slot> = self.lock_slots().drain().map(|(_, s)| s).collect();
        for slot in slots {
            if let Slot::Loaded { shard, tasks } = slot {
                shard.close();
                tasks.abort();
            }
        }
    }

    /// How many partitions `__transaction_state` has (the configured count
    /// until it exists).
    pub fn partition_count(&self) -> i32 {
        self.cache
            .image()
            .partitions_of(TRANSACTION_STATE)
            .map(|p| p.len() as i32)
            .filter(|n| *n > 0)
            .unwrap_or(self.config.state_log_num_partitions)
    }

    /// The partition of `__transaction_state` that holds `transactional_id`.
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        crate::group::partitioner::partition_for(transactional_id, self.partition_count())
    }

    /// Whether `shard` is still the one serving its partition.
    pub(super) fn serves(&self, shard: &Arc<TxnShard>) -> bool {
        !shard.is_closed()
            && matches!(self.lock_slots().get(&shard.index), Some(Slot::Loaded { shard: s, .. }) if Arc::ptr_eq(s, shard))
    }

    /// Every loaded shard, and whether any partition is still loading.
    pub fn shards(&self) -> (Vec<Arc<TxnShard>>, bool) {
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

    /// The loaded shard coordinating `transactional_id`, or the error a
    /// client gets.
    pub fn shard_for(&self, transactional_id: &str) -> Result<Arc<TxnShard>, ResponseError> {
        let partition = self.partition_for(transactional_id);
        match self.lock_slots().get(&partition) {
            Some(Slot::Loaded { shard, .. }) => Ok(shard.clone()),
            Some(Slot::Loading { .. }) => Err(ResponseError::CoordinatorLoadInProgress),
            None => Err(ResponseError::NotCoordinator),
        }
    }
}
