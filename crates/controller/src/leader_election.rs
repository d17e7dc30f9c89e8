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

use kraft_metadata::{MetadataImage, PartitionRegistration};
use kraft_proto::controller::{ElectLeaderResult, ElectLeadersRequest, ElectLeadersResponse};
use kraft_proto::metadata::MetadataRecord;
use uuid::Uuid;

use crate::controller_result::ControllerResult;
use crate::error::ControllerError;
use crate::error_codes::{
    ELECTION_NOT_NEEDED, INVALID_REQUEST, PREFERRED_LEADER_NOT_AVAILABLE,
    UNKNOWN_TOPIC_OR_PARTITION,
};
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
            return Err(ControllerError::new(INVALID_REQUEST, message));
        }
        for topic in image.topics().topics() {
            for (&partition_id, partition) in topic.partitions() {
                let (code, message) =
                    match elect_preferred(image, topic.id(), partition_id, partition) {
                        Ok(record) => {
                            records.push(record);
                            (0, String::new())
                        }
                        Err((ELECTION_NOT_NEEDED, _)) => continue,
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
                    (Some(message), _) => Err((INVALID_REQUEST, message.clone())),
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
        UNKNOWN_TOPIC_OR_PARTITION,
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
            PREFERRED_LEADER_NOT_AVAILABLE,
            "The partition has no replicas.".to_string(),
        ));
    };
    if partition.leader == preferred {
        return Err((ELECTION_NOT_NEEDED, String::new()));
    }
    if !partition.isr.contains(&preferred) {
        return Err((
            PREFERRED_LEADER_NOT_AVAILABLE,
            format!("The preferred replica {preferred} is not in the ISR."),
        ));
    }
    if !is_usable(image, preferred) {
        return Err((
            PREFERRED_LEADER_NOT_AVAILABLE,
            format!(
                "The preferred replica {preferred} is fenced, shutting down or not registered."
            ),
        ));
    }
    let usable = |b: i32| is_usable(image, b);
    PartitionChangeBuilder::new(topic_id, partition_id, partition, &usable)
        .elect_preferred_leader()
        .build()
        .ok_or((ELECTION_NOT_NEEDED, String::new()))
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
mod tests {
    use kraft_proto::controller::TopicPartitions;
    use kraft_proto::metadata::metadata_record::Record;

    use super::*;
    use crate::partition_change::test_image::{apply, broker, fence, image, partition, topic};

    const A: Uuid = Uuid::from_u128(1);
    const B: Uuid = Uuid::from_u128(2);

    /// Topic a: p0 [1,2] led by 2 (electable), p1 [2,1] led by 2 (already
    /// preferred), p2 [3,1] isr [1] led by 1 (3 not in sync), p3 [4,1] led
    /// by 1 with 4 fenced. Topic b: p0 [1,3] led by 3 (electable).
    fn cluster() -> MetadataImage {
        image(vec![
            broker(1, None),
            broker(2, None),
            broker(3, None),
            broker(4, None),
            fence(4),
            topic("a", A),
            partition(A, 0, &[1, 2], &[1, 2], 2),
            partition(A, 1, &[2, 1], &[2, 1], 2),
            partition(A, 2, &[3, 1], &[1], 1),
            partition(A, 3, &[4, 1], &[4, 1], 1),
            topic("b", B),
            partition(B, 0, &[1, 3], &[1, 3], 3),
        ])
    }

    fn named(topic: &str, partitions: &[i32]) -> TopicPartitions {
        TopicPartitions {
            topic: topic.into(),
            partitions: partitions.to_vec(),
        }
    }

    fn request(partitions: Vec<TopicPartitions>) -> ElectLeadersRequest {
        ElectLeadersRequest {
            election_type: PREFERRED,
            partitions,
            all_partitions: false,
        }
    }

    fn outcome(r: &ControllerResult<ElectLeadersResponse>) -> Vec<(String, i32, i32)> {
        r.response
            .results
            .iter()
            .map(|r| (r.topic.clone(), r.partition, r.error_code))
            .collect()
    }

    #[test]
    fn named_partitions_get_one_result_each() {
        let img = cluster();
        let req = request(vec![named("a", &[0, 1, 2, 3, 9, 0]), named("zz", &[0])]);
        let result = elect_leaders(&img, &req).unwrap();
        let s = |t: &str| t.to_string();
        assert_eq!(
            outcome(&result),
            vec![
                (s("a"), 0, 0),
                (s("a"), 1, ELECTION_NOT_NEEDED),
                (s("a"), 2, PREFERRED_LEADER_NOT_AVAILABLE),
                (s("a"), 3, PREFERRED_LEADER_NOT_AVAILABLE),
                (s("a"), 9, UNKNOWN_TOPIC_OR_PARTITION),
                (s("zz"), 0, UNKNOWN_TOPIC_OR_PARTITION),
            ]
        );
        assert_eq!(result.records.len(), 1, "named twice, elected once");
        let after = apply(&img, &result.records);
        let p = after.topics().partition(A, 0).unwrap();
        assert_eq!(
            (p.leader, p.leader_epoch, p.isr.clone()),
            (1, 1, vec![1, 2])
        );
    }

    #[test]
    fn all_partitions_leaves_out_those_that_need_nothing() {
        let img = cluster();
        let req = ElectLeadersRequest {
            all_partitions: true,
            ..request(vec![])
        };
        let result = elect_leaders(&img, &req).unwrap();
        let s = |t: &str| t.to_string();
        assert_eq!(
            outcome(&result),
            vec![
                (s("a"), 0, 0),
                (s("a"), 2, PREFERRED_LEADER_NOT_AVAILABLE),
                (s("a"), 3, PREFERRED_LEADER_NOT_AVAILABLE),
                (s("b"), 0, 0),
            ]
        );
        assert_eq!(result.records.len(), 2);
        let after = apply(&img, &result.records);
        assert_eq!(after.topics().partition(B, 0).unwrap().leader, 1);
    }

    #[test]
    fn unclean_elections_are_refused() {
        let img = cluster();
        let req = ElectLeadersRequest {
            election_type: UNCLEAN,
            ..request(vec![named("a", &[0])])
        };
        let result = elect_leaders(&img, &req).unwrap();
        assert_eq!(result.response.results[0].error_code, INVALID_REQUEST);
        assert!(result.records.is_empty());
        let all = ElectLeadersRequest {
            all_partitions: true,
            ..req
        };
        assert_eq!(elect_leaders(&img, &all).unwrap_err().code, INVALID_REQUEST);
    }

    #[test]
    fn rebalance_moves_leaders_of_imbalanced_brokers_only() {
        let img = cluster();
        // Broker 1 is preferred for a-0 and b-0 and leads neither (100%);
        // broker 3 for a-2 (not in sync); broker 4 for a-3 (fenced).
        let records = rebalance_leaders(&img, 10);
        let moved: Vec<(Vec<u8>, i32, Option<i32>)> = records
            .iter()
            .map(|r| match &r.record {
                Some(Record::PartitionChange(c)) => (c.topic_id.to_vec(), c.partition_id, c.leader),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            moved,
            vec![
                (A.as_bytes().to_vec(), 0, Some(1)),
                (B.as_bytes().to_vec(), 0, Some(1)),
            ]
        );
        let after = apply(&img, &records);
        assert!(rebalance_leaders(&after, 10).is_empty(), "balanced now");
        // At 100% nothing is ever imbalanced enough.
        assert!(rebalance_leaders(&img, 100).is_empty());
    }

    #[test]
    fn rebalance_threshold_is_a_strict_share() {
        // Broker 1 is preferred for 4 partitions and leads 3 of them: 25%.
        let img = image(vec![
            broker(1, None),
            broker(2, None),
            topic("a", A),
            partition(A, 0, &[1, 2], &[1, 2], 2),
            partition(A, 1, &[1, 2], &[1, 2], 1),
            partition(A, 2, &[1, 2], &[1, 2], 1),
            partition(A, 3, &[1, 2], &[1, 2], 1),
        ]);
        assert!(rebalance_leaders(&img, 25).is_empty());
        assert_eq!(rebalance_leaders(&img, 24).len(), 1);
    }

    #[test]
    fn rebalance_leaves_reassigning_partitions_alone() {
        let img = image(vec![
            broker(1, None),
            broker(2, None),
            topic("a", A),
            kraft_metadata::record(Record::Partition(kraft_proto::metadata::PartitionRecord {
                topic_id: bytes::Bytes::copy_from_slice(A.as_bytes()),
                partition_id: 0,
                replicas: vec![1, 2],
                isr: vec![1, 2],
                leader: 2,
                adding_replicas: vec![1],
                ..Default::default()
            })),
        ]);
        assert!(rebalance_leaders(&img, 0).is_empty());
    }
}
