//! Writing a transaction's COMMIT or ABORT markers to the leaders of its
//! partitions, as Kafka's `TransactionMarkerChannelManager` does.
//!
//! In: the producer id and epoch, the result and the partitions of a
//! transaction in PrepareCommit or PrepareAbort, and the coordinator epoch.
//! Out: `Ok` once every partition's leader has appended the marker and its
//! ISR has it, or `Err` when the coordinator must give up (it lost its
//! partition, or a leader says a newer coordinator or producer epoch
//! exists). A partition this broker leads gets `Partition::append_marker`
//! directly (and a replicated marker on `__consumer_offsets` goes to the
//! group coordinator, for the offsets the transaction wrote there); any
//! other gets WriteTxnMarkers v1 over `kraft-kafka-client` to its leader in
//! the metadata cache. Retriable answers (no leader,
//! NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS, timeouts, a broker that
//! cannot be reached) are retried after a short pause, with fresh
//! metadata, until done; a partition whose topic was deleted is dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;
use kraft_kafka_client::KafkaClient;
use kraft_log::TxnMarker;
use kraft_metadata::CONSUMER_OFFSETS;

use crate::group::{GroupCoordinator, ReplicatedMarker};
use crate::metadata_cache::{CacheQueries, MetadataCache};
use crate::replica::{now_ms, PartitionLookup, ReplicaManager};

/// The pause between rounds of retries.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// What the markers of one transaction carry.
#[derive(Clone, Debug)]
pub struct Markers {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    pub commit: bool,
}

/// Why marker writing stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum MarkersStopped {
    /// This broker no longer coordinates the transaction.
    NotCoordinator,
    /// A leader refused with this code (a newer coordinator or producer
    /// epoch): someone else completes the transaction.
    Fenced(i16),
}

/// Sends markers for the coordinator of one broker.
pub struct MarkerWriter {
    pub node_id: i32,
    pub listener_name: String,
    pub cache: MetadataCache,
    pub replicas: Arc<ReplicaManager>,
    /// How long one attempt waits for an answer or for replication.
    pub write_timeout: Duration,
    /// Told of markers this broker wrote to `__consumer_offsets` (the
    /// offsets a transaction committed there).
    pub groups: Arc<GroupCoordinator>,
}

/// One partition's outcome in a round.
enum Outcome {
    Done,
    Retry,
    Stop(i16),
}

impl MarkerWriter {
    /// Writes `markers` to every partition in `partitions`, retrying until
    /// done or until `still_coordinator` says no.
    pub async fn write(
        &self,
        markers: &Markers,
        partitions: &BTreeSet<(String, i32)>,
        still_coordinator: impl Fn() -> bool,
    ) -> Result<(), MarkersStopped> {
        let mut remaining = partitions.clone();
        loop {
            if !still_coordinator() {
                return Err(MarkersStopped::NotCoordinator);
            }
            let by_leader = self.leaders(&mut remaining);
            for (leader, topic_partitions) in by_leader {
                let outcomes = if leader == self.node_id {
                    self.write_local(markers, &topic_partitions).await
                } else {
                    self.write_remote(leader, markers, &topic_partitions).await
                };
                for (tp, outcome) in outcomes {
                    match outcome {
                        Outcome::Done => {
                            remaining.remove(&tp);
                        }
                        Outcome::Retry => {}
                        Outcome::Stop(code) => return Err(MarkersStopped::Fenced(code)),
                    }
                }
            }
            if remaining.is_empty() {
                return Ok(());
            }
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
    }

    /// The remaining partitions by their live leader; partitions whose
    /// topic or partition is gone are dropped from `remaining`.
    fn leaders(
        &self,
        remaining: &mut BTreeSet<(String, i32)>,
    ) -> BTreeMap<i32, Vec<(String, i32)>> {
        let image = self.cache.image();
        let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
        remaining.retain(|(topic, index)| {
            let Some(partitions) = image.partitions_of(topic) else {
                tracing::info!(topic, "no marker for a deleted topic");
                return false;
            };
            let Some((_, registration)) = partitions.iter().find(|(p, _)| p == index) else {
                return false;
            };
            if registration.leader >= 0 {
                by_leader
                    .entry(registration.leader)
                    .or_default()
                    .push((topic.clone(), *index));
            }
            true
        });
        by_leader
    }

    async fn write_local(
        &self,
        markers: &Markers,
        partitions: &[(String, i32)],
    ) -> Vec<((String, i32), Outcome)> {
        let image = self.cache.image();
        let marker = if markers.commit {
            TxnMarker::Commit
        } else {
            TxnMarker::Abort
        };
        let now = now_ms();
        let deadline = tokio::time::Instant::now() + self.write_timeout;
        let mut out = Vec::with_capacity(partitions.len());
        for (topic, index) in partitions {
            let tp = (topic.clone(), *index);
            let Some(topic_id) = image.topic_named(topic).map(|t| t.id()) else {
                out.push((tp, Outcome::Retry));
                continue;
            };
            let PartitionLookup::Hosted(partition) = self.replicas.lookup(topic_id, *index) else {
                out.push((tp, Outcome::Retry));
                continue;
            };
            let code = match partition.append_marker(
                markers.producer_id,
                markers.producer_epoch,
                markers.coordinator_epoch,
                marker,
                now,
            ) {
                Ok((info, leader_epoch)) => {
                    let code = partition
                        .wait_for_replication(info.last_offset + 1, leader_epoch, deadline)
                        .await;
                    if code == 0 && topic == CONSUMER_OFFSETS {
                        self.groups.complete_txn(
                            *index,
                            ReplicatedMarker {
                                producer_id: markers.producer_id,
                                commit: markers.commit,
                                offset: info.last_offset,
                                leader_epoch,
                            },
                        );
                    }
                    code
                }
                Err(e) => e.code(),
            };
            out.push((tp, outcome(code)));
        }
        out
    }

    async fn write_remote(
        &self,
        leader: i32,
        markers: &Markers,
        partitions: &[(String, i32)],
    ) -> Vec<((String, i32), Outcome)> {
        let retry_all = || {
            partitions
                .iter()
                .map(|tp| (tp.clone(), Outcome::Retry))
                .collect::<Vec<_>>()
        };
        let address = {
            let image = self.cache.image();
            match image.broker_endpoint(leader, &self.listener_name) {
                Some(e) => format!("{}:{}", e.host, e.port),
                None => return retry_all(),
            }
        };
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, index) in partitions {
            topics.entry(topic).or_default().push(*index);
        }
        let request =
            WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                .with_producer_id(ProducerId(markers.producer_id))
                .with_producer_epoch(markers.producer_epoch)
                .with_transaction_result(markers.commit)
                .with_coordinator_epoch(markers.coordinator_epoch)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(topic, indexes)| {
                            WritableTxnMarkerTopic::default()
                                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                                .with_partition_indexes(indexes)
                        })
                        .collect(),
                )]);
        let attempt = async {
            let mut client = KafkaClient::connect(address.as_str())
                .await
                .map_err(|e| e.to_string())?;
            client.send(1, &request).await.map_err(|e| e.to_string())
        };
        // The leader waits up to its own write timeout for replication.
        let response = match tokio::time::timeout(self.write_timeout * 2, attempt).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                tracing::debug!(leader, error = %e, "WriteTxnMarkers failed; retrying");
                return retry_all();
            }
            Err(_) => return retry_all(),
        };
        let mut out = Vec::with_capacity(partitions.len());
        for marker in &response.markers {
            for topic in &marker.topics {
                for p in &topic.partitions {
                    out.push((
                        (topic.name.0.to_string(), p.partition_index),
                        outcome(p.error_code),
                    ));
                }
            }
        }
        out
    }
}

/// What a leader's answer means for one partition.
fn outcome(code: i16) -> Outcome {
    use ResponseError::*;
    if code == 0 {
        return Outcome::Done;
    }
    match ResponseError::try_from_code(code) {
        Some(InvalidProducerEpoch | TransactionCoordinatorFenced | ProducerFenced) => {
            Outcome::Stop(code)
        }
        _ => Outcome::Retry,
    }
}
