//! Preferred-leader election: moving leadership back to each partition's
//! first replica, on request (Kafka's ElectLeaders) and periodically
//! (`auto.leader.rebalance.enable`).
//!
//! Pure. Data enters as the controller's `latest` [`MetadataImage`] plus an
//! [`ElectLeadersRequest`] or the imbalance threshold; what leaves is one
//! `PartitionChangeRecord` per partition whose leader moves (a new leader
//! epoch) and, for requests, a result per partition.
//!
//! Per partition, as Kafka's controller answers: UNKNOWN_TOPIC_OR_PARTITION
//! if it does not exist, ELECTION_NOT_NEEDED if the preferred replica leads
//! already, PREFERRED_LEADER_NOT_AVAILABLE if it is not in the ISR or not
//! usable (fenced, shutting down, unregistered), else NONE and a change
//! record. Only PREFERRED elections are served (type 0); UNCLEAN (1) would
//! let an out-of-sync replica lead, which Kraft never does, and is refused
//! with INVALID_REQUEST. When no partition is named (every partition), the
//! partitions whose election was not needed are left out of the results.
//!
//! The periodic check follows Kafka's (ZooKeeper-mode) controller: for each
//! broker, the share of the partitions it is preferred for that it does
//! not lead; above `leader.imbalance.per.broker.percentage`, every such
//! partition whose preferred replica can lead gets it back. (Kafka's KRaft
//! controller ignores the percentage and balances every partition; Kraft
//! honours the setting.) Partitions being reassigned are left alone.

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::ResponseError;
use kraft_metadata::{MetadataImage, PartitionRegistration};
use kraft_proto::controller::{ElectLeaderResult, ElectLeadersRequest, ElectLeadersResponse};
use kraft_proto::metadata::MetadataRecord;
use uuid::Uuid;

use crate::controller_result::ControllerResult;
use crate::error::{code, ControllerError};
use crate::partition_change::PartitionChangeBuilder;
use crate::placement::is_usable;

/// ElectLeaders' `election_type` for a preferred-leader election.
pub const PREFERRED: i32 = 0;
/// ElectLeaders' `election_type` for an unclean election (refused).
pub const UNCLEAN: i32 = 1;

/// Serves ElectLeaders; see the module docs. Fails as a whole only for an
/// unserved election type over every partition.
pub fn elect_leaders(
    image: &MetadataImage,
    request: &ElectLeadersRequest,
) -> Result<ControllerResult<ElectLeadersResponse>, ControllerError> {
    let refusal = election_type_refusal(request.election_type);
    let mut records = Vec::new();
    let mut results = Vec::new();
    if request.all_partitions {
        if let Some(message) = refusal {
            return Err(ControllerError::new(
                code(ResponseError::InvalidRequest),
                message,
            ));
        }
        for topic in image.topics().topics() {
            for (&partition_id, partition) in topic.partitions() {
                let (code, message) =
                    match elect_preferred(image, topic.id(), partition_id, partition) {
                        Ok(record) => {
                            records.push(record);
                            (0, String::new())
                        }
                        Err((c, _)) if c == code(ResponseError::ElectionNotNeeded) => continue,
                        Err(e) => e,
                    };
                results.push(result(topic.name(), partition_id, code, message));
            }
        }
        results.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    } else {
        let mut done = HashSet::new();
        for named in &request.partitions {
            for &partition_id in &named.partitions {
                if !done.insert((named.topic.as_str(), partition_id)) {
                    continue;
                }
                let outcome = match (&refusal, image.topics().topic_by_name(&named.topic)) {
                    (Some(message), _) => {
                        Err((code(ResponseError::InvalidRequest), message.clone()))
                    }
                    (None, None) => Err(unknown(&named.topic, partition_id)),
                    (None, Some(topic)) => match topic.partition(partition_id) {
                        None => Err(unknown(&named.topic, partition_id)),
                        Some(p) => elect_preferred(image, topic.id(), partition_id, p),
                    },
                };
                let (code, message) = match outcome {
                    Ok(record) => {
                        records.push(record);
                        (0, String::new())
                    }
                    Err(e) => e,
                };
                results.push(result(&named.topic, partition_id, code, message));
            }
        }
    }
    Ok(ControllerResult::new(
        records,
        ElectLeadersResponse { results },
    ))
}

/// Why an election type is not served, if it is not.
fn election_type_refusal(election_type: i32) -> Option<String> {
    match election_type {
        PREFERRED => None,
        UNCLEAN => Some(
            "Unclean leader election is not supported: only an in-sync replica may lead."
                .to_string(),
        ),
        other => Some(format!("Unknown election type {other}.")),
    }
}

fn unknown(topic: &str, partition_id: i32) -> (i32, String) {
    (
        code(ResponseError::UnknownTopicOrPartition),
        format!("No such partition as {topic}-{partition_id}."),
    )
}

fn result(
    topic: &str,
    partition: i32,
    error_code: i32,
    error_message: String,
) -> ElectLeaderResult {
    ElectLeaderResult {
        topic: topic.to_string(),
        partition,
        error_code,
        error_message,
    }
}

/// The record making the preferred replica lead, or why not.
fn elect_preferred(
    image: &MetadataImage,
    topic_id: Uuid,
    partition_id: i32,
    partition: &PartitionRegistration,
) -> Result<MetadataRecord, (i32, String)> {
    let Some(&preferred) = partition.replicas.first() else {
        return Err((
            code(ResponseError::PreferredLeaderNotAvailable),
            "The partition has no replicas.".to_string(),
        ));
    };
    if partition.leader == preferred {
        return Err((
            code(ResponseError::ElectionNotNeeded),
            format!("The preferred replica {preferred} already leads."),
        ));
    }
    if !partition.isr.contains(&preferred) {
        return Err((
            code(ResponseError::PreferredLeaderNotAvailable),
            format!("The preferred replica {preferred} is not in the ISR."),
        ));
    }
    if !is_usable(image, preferred) {
        return Err((
            code(ResponseError::PreferredLeaderNotAvailable),
            format!(
                "The preferred replica {preferred} is fenced, shutting down or not registered."
            ),
        ));
    }
    let usable = |b: i32| is_usable(image, b);
    PartitionChangeBuilder::new(topic_id, partition_id, partition, &usable)
        .elect_preferred_leader()
        .build()
        .ok_or_else(|| {
            (
                code(ResponseError::ElectionNotNeeded),
                "Leader election not needed for topic partition.".to_string(),
            )
        })
}

/// The partitions one broker is preferred for: how many, and those of them
/// it does not lead.
#[derive(Default)]
struct PreferredFor<'a> {
    total: usize,
    not_led: Vec<(Uuid, i32, &'a PartitionRegistration)>,
}

/// The periodic rebalance: preferred-leader elections for the brokers whose
/// imbalance is above `imbalance_percentage`; see the module docs.
pub fn rebalance_leaders(image: &MetadataImage, imbalance_percentage: u32) -> Vec<MetadataRecord> {
    let mut by_preferred: BTreeMap<i32, PreferredFor> = BTreeMap::new();
    for topic in image.topics().topics() {
        for (&partition_id, partition) in topic.partitions() {
            let Some(&preferred) = partition.replicas.first() else {
                continue;
            };
            let entry = by_preferred.entry(preferred).or_default();
            entry.total += 1;
            if partition.leader != preferred {
                entry.not_led.push((topic.id(), partition_id, partition));
            }
        }
    }
    let threshold = u64::from(imbalance_percentage);
    let mut records = Vec::new();
    for PreferredFor { total, not_led } in by_preferred.into_values() {
        // not_led / total > percentage / 100, in integers.
        if (not_led.len() as u64) * 100 <= threshold * (total as u64) {
            continue;
        }
        for (topic_id, partition_id, partition) in not_led {
            let reassigning =
                !partition.adding_replicas.is_empty() || !partition.removing_replicas.is_empty();
            if reassigning {
                continue;
            }
            if let Ok(record) = elect_preferred(image, topic_id, partition_id, partition) {
                records.push(record);
            }
        }
    }
    records
}

#[cfg(test)]
mod tests;
