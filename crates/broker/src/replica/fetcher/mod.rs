//! Follower replication: one fetcher task per leader broker, fetching every
//! partition this broker follows from that leader in one Fetch request,
//! with the Kafka Fetch API (v15: `ReplicaState` = this broker's id and
//! its current broker epoch, which the leader checks), as Kafka's replica
//! fetcher threads do.
//!
//! In: [`ReplicaFetchers::follow`] / [`ReplicaFetchers::unfollow`] from the
//! replica manager as metadata deltas make this broker a follower (of
//! which leader, at which leader epoch) or not. Out: batches appended to
//! the follower logs with the leader's offsets and epochs, the leader's
//! high watermark, and truncation where the logs diverge: the fetch carries
//! the epoch of this log's last batch, and a leader whose log disagrees
//! answers with the end of the last epoch both share (KIP-595's
//! diverging-epoch fetch, which replaces the OffsetsForLeaderEpoch round
//! trip); the follower cuts at that end or at its own end of the same
//! epoch, whichever comes first ([`truncation_offset`]). The leader learns
//! this follower's position from the fetch offset.
//!
//! Errors back off and retry; leadership errors wait for the metadata to
//! move the partition. The [`NetworkFault`] hook lets the testkit cut this
//! broker off from a leader.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kraft_kafka_client::KafkaClient;
use kraft_log::PartitionLog;
use kraft_rpc::NetworkFault;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::metadata_cache::{CacheQueries, MetadataCache};
use crate::replica::Partition;

/// `replica.fetch.wait.max.ms`.
const FETCH_WAIT_MS: i32 = 500;
/// `replica.fetch.max.bytes` (per partition) and
/// `replica.fetch.response.max.bytes`.
const PARTITION_MAX_BYTES: i32 = 1 << 20;
const RESPONSE_MAX_BYTES: i32 = 10 << 20;
/// `replica.fetch.backoff.ms`.
const BACKOFF: Duration = Duration::from_millis(200);
/// Fetch v15: diverging epochs (v12), topic ids (v13), and the follower's
/// broker epoch in `ReplicaState`, without which a leader does not count
/// the fetch as this follower's.
const FETCH_VERSION: i16 = 15;

type PartitionKey = (Uuid, i32);

/// A partition followed from one leader.
#[derive(Clone)]
struct Followed {
    partition: Arc<Partition>,
    leader_epoch: i32,
}

/// The partitions one fetcher fetches, shared with its task.
#[derive(Default)]
struct FetchSet {
    partitions: Mutex<BTreeMap<PartitionKey, Followed>>,
    changed: Notify,
}

impl FetchSet {
    fn snapshot(&self) -> BTreeMap<PartitionKey, Followed> {
        self.partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

struct Fetcher {
    set: Arc<FetchSet>,
    task: JoinHandle<()>,
}

/// Every fetcher of this broker, by leader.
pub struct ReplicaFetchers {
    node_id: i32,
    listener: String,
    cache: MetadataCache,
    fault: Arc<dyn NetworkFault>,
    fetchers: Mutex<BTreeMap<i32, Fetcher>>,
}

impl ReplicaFetchers {
    pub fn new(
        node_id: i32,
        listener: String,
        cache: MetadataCache,
        fault: Arc<dyn NetworkFault>,
    ) -> ReplicaFetchers {
        ReplicaFetchers {
            node_id,
            listener,
            cache,
            fault,
            fetchers: Mutex::new(BTreeMap::new()),
        }
    }

    /// Fetches `partition` from `leader` (and from no other broker).
    /// Must be called within a tokio runtime (it may start a task).
    pub fn follow(&self, partition: Arc<Partition>, leader: i32, leader_epoch: i32) {
        let key = (partition.topic_id(), partition.index());
        let mut fetchers = self.fetchers.lock().unwrap_or_else(|e| e.into_inner());
        for (id, fetcher) in fetchers.iter() {
            if *id != leader {
                remove(&fetcher.set, &key);
            }
        }
        let fetcher = fetchers.entry(leader).or_insert_with(|| {
            let set = Arc::new(FetchSet::default());
            let task = tokio::spawn(
                FetcherTask {
                    node_id: self.node_id,
                    leader,
                    listener: self.listener.clone(),
                    cache: self.cache.clone(),
                    fault: self.fault.clone(),
                    set: set.clone(),
                    client: None,
                }
                .run(),
            );
            Fetcher { set, task }
        });
        fetcher
            .set
            .partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                key,
                Followed {
                    partition,
                    leader_epoch,
                },
            );
        fetcher.set.changed.notify_one();
    }

    /// Stops fetching a partition (it is led here now, or gone).
    pub fn unfollow(&self, topic_id: Uuid, index: i32) {
        let fetchers = self.fetchers.lock().unwrap_or_else(|e| e.into_inner());
        for fetcher in fetchers.values() {
            remove(&fetcher.set, &(topic_id, index));
        }
    }

    /// Stops every fetcher.
    pub fn shutdown(&self) {
        let mut fetchers = self.fetchers.lock().unwrap_or_else(|e| e.into_inner());
        for (_, fetcher) in std::mem::take(&mut *fetchers) {
            fetcher.task.abort();
        }
    }
}

impl Drop for ReplicaFetchers {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn remove(set: &FetchSet, key: &PartitionKey) {
    set.partitions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(key);
}

/// The loop fetching from one leader.
struct FetcherTask {
    node_id: i32,
    leader: i32,
    listener: String,
    cache: MetadataCache,
    fault: Arc<dyn NetworkFault>,
    set: Arc<FetchSet>,
    client: Option<KafkaClient>,
}

impl FetcherTask {
    async fn run(mut self) {
        loop {
            let partitions = self.set.snapshot();
            if partitions.is_empty() {
                self.client = None;
                self.set.changed.notified().await;
                continue;
            }
            if !self.fault.allows(self.node_id, self.leader) {
                self.client = None;
                tokio::time::sleep(BACKOFF).await;
                continue;
            }
            match self.fetch_once(&partitions).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::debug!(node = self.node_id, leader = self.leader, error = %e, "replica fetch failed");
                    self.client = None;
                    tokio::time::sleep(BACKOFF).await;
                }
            }
        }
    }

    async fn connect(&mut self) -> Result<&mut KafkaClient, String> {
        if self.client.is_none() {
            let image = self.cache.image();
            let endpoint = image
                .broker_endpoint(self.leader, &self.listener)
                .ok_or_else(|| {
                    format!("broker {} has no {} endpoint", self.leader, self.listener)
                })?;
            let addr = format!("{}:{}", endpoint.host, endpoint.port);
            let client = tokio::time::timeout(Duration::from_secs(5), KafkaClient::connect(addr))
                .await
                .map_err(|_| "connect timed out".to_string())?
                .map_err(|e| e.to_string())?;
            self.client = Some(client.with_client_id(format!("replica-fetcher-{}", self.node_id)));
        }
        self.client
            .as_mut()
            .ok_or_else(|| "no connection".to_string())
    }

    async fn fetch_once(
        &mut self,
        partitions: &BTreeMap<PartitionKey, Followed>,
    ) -> Result<(), String> {
        // This broker's current registration, as its own cache holds it:
        // the leader accepts the fetch as ours only with this epoch.
        let broker_epoch = self
            .cache
            .image()
            .cluster()
            .broker(self.node_id)
            .map_or(-1, |b| b.epoch);
        let request = build_request(self.node_id, broker_epoch, partitions);
        let client = self.connect().await?;
        let timeout = Duration::from_millis(FETCH_WAIT_MS as u64) + Duration::from_secs(10);
        let response: FetchResponse =
            tokio::time::timeout(timeout, client.send(FETCH_VERSION, &request))
                .await
                .map_err(|_| "fetch timed out".to_string())?
                .map_err(|e| e.to_string())?;
        if response.error_code != 0 {
            return Err(format!("fetch failed with error {}", response.error_code));
        }
        let mut backoff = false;
        for topic in response.responses {
            for data in topic.partitions {
                let Some(followed) = partitions.get(&(topic.topic_id, data.partition_index)) else {
                    continue;
                };
                if !self.still_following(followed) {
                    continue;
                }
                if let Err(e) = apply(followed, data) {
                    tracing::debug!(partition = ?followed.partition, error = %e, "follower fetch not applied");
                    backoff = true;
                }
            }
        }
        if backoff {
            tokio::time::sleep(BACKOFF).await;
        }
        Ok(())
    }

    /// Whether the partition is still followed from this leader at the
    /// same epoch (the set may have changed while the fetch was out).
    fn still_following(&self, followed: &Followed) -> bool {
        let key = (followed.partition.topic_id(), followed.partition.index());
        self.set
            .partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .is_some_and(|f| f.leader_epoch == followed.leader_epoch)
    }
}

fn build_request(
    node_id: i32,
    broker_epoch: i64,
    partitions: &BTreeMap<PartitionKey, Followed>,
) -> FetchRequest {
    let mut topics: BTreeMap<Uuid, Vec<FetchPartition>> = BTreeMap::new();
    for followed in partitions.values() {
        let p = &followed.partition;
        let log = p.log();
        topics.entry(p.topic_id()).or_default().push(
            FetchPartition::default()
                .with_partition(p.index())
                .with_current_leader_epoch(followed.leader_epoch)
                .with_fetch_offset(log.log_end_offset())
                .with_last_fetched_epoch(log.latest_epoch().unwrap_or(-1))
                .with_log_start_offset(log.log_start_offset())
                .with_partition_max_bytes(PARTITION_MAX_BYTES),
        );
    }
    FetchRequest::default()
        .with_replica_state(
            ReplicaState::default()
                .with_replica_id(node_id.into())
                .with_replica_epoch(broker_epoch),
        )
        .with_max_wait_ms(FETCH_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(RESPONSE_MAX_BYTES)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(
            topics
                .into_iter()
                .map(|(topic_id, partitions)| {
                    FetchTopic::default()
                        .with_topic_id(topic_id)
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

/// Applies one partition of a fetch response to the follower log.
fn apply(
    followed: &Followed,
    data: kafka_protocol::messages::fetch_response::PartitionData,
) -> Result<(), String> {
    let partition = &followed.partition;
    match ResponseError::try_from_code(data.error_code) {
        None => {
            let diverging = &data.diverging_epoch;
            if diverging.epoch >= 0 || diverging.end_offset >= 0 {
                let target =
                    truncation_offset(partition.log(), diverging.epoch, diverging.end_offset)
                        .ok_or_else(|| {
                            format!(
                                "the leader's diverging epoch {} has no end offset",
                                diverging.epoch
                            )
                        })?;
                return partition
                    .truncate_to_leader(target)
                    .map_err(|e| e.to_string());
            }
            let records = data.records.unwrap_or_default();
            partition
                .append_as_follower(records, data.high_watermark)
                .map_err(|e| e.to_string())
        }
        Some(ResponseError::OffsetOutOfRange) => {
            let log = partition.log();
            if data.log_start_offset > log.log_end_offset() {
                partition
                    .restart_at(data.log_start_offset)
                    .map_err(|e| e.to_string())
            } else {
                partition
                    .truncate_to_leader(data.high_watermark)
                    .map_err(|e| e.to_string())
            }
        }
        Some(_) => Err(format!("leader answered error {}", data.error_code)),
    }
}

#[cfg(test)]
mod tests;

/// Where this follower's log must end after the leader answered a fetch
/// with a diverging epoch: `epoch`, the last epoch the leader thinks both
/// logs share, ends at `leader_end` in the leader's log. As Kafka's
/// `AbstractFetcherThread` (KIP-279, KIP-595): the follower looks up its
/// own end of `epoch` (with no such epoch, the end of its largest epoch
/// below it) and cuts at whichever end comes first, never beyond its own
/// log end; a follower that knows no epoch at or below it takes the
/// leader's offset. `None` when the leader gave no end offset (Kafka then
/// does not truncate). The cut may go below the follower's high watermark
/// ([`Partition::truncate_to_leader`] says why).
///
/// Taking the leader's offset alone would keep the follower's own
/// batches of a later epoch between its end of `epoch` and the leader's:
/// the next fetch diverges again at the same point, forever.
fn truncation_offset(log: &PartitionLog, epoch: i32, leader_end: i64) -> Option<i64> {
    if leader_end < 0 {
        return None;
    }
    let log_end = log.log_end_offset();
    let own_end = log
        .end_offset_for_epoch(epoch)
        .map_or(log_end, |(_, end)| end);
    Some(leader_end.min(own_end).min(log_end))
}
