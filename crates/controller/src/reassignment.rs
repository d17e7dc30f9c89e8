//! Partition reassignment (KIP-455): Kafka's AlterPartitionReassignments
//! and ListPartitionReassignments on the controller.
//!
//! Pure. Data enters as the controller's [`MetadataImage`] and a request;
//! what leaves is `PartitionChangeRecord`s (for alter) and a response.
//!
//! # The state machine
//!
//! A partition whose replicas are `R` (its *original* replicas: the current
//! replicas minus any being added) gets a target `T`:
//! `replicas = T ++ (R − T)`, `adding_replicas = T − R`,
//! `removing_replicas = R − T`. The ISR stays as it is (less any broker no
//! longer a replica). Brokers see themselves in `replicas` and start
//! fetching. When every adding replica is in the ISR, which happens through
//! the leader's AlterPartition, the [`PartitionChangeBuilder`] finishes the
//! reassignment in that same change: `replicas = T`, the ISR loses the
//! removed replicas, both lists are cleared, and a leader outside `T` gives
//! way to the first usable in-sync replica of `T` (a new leader epoch). A
//! target that adds nothing (a shrink or a reordering) finishes at once.
//!
//! A new target while one is in progress starts again from `R`: replicas
//! the old target was adding and the new one does not name are dropped.
//! Cancelling (no replicas) goes back to `R` and an ISR without the adding
//! replicas; a cancellation that would leave no in-sync replica would need
//! an unclean election and is refused (INVALID_REPLICA_ASSIGNMENT), as in
//! Kafka with unclean election disabled.
//!
//! # Errors, per partition
//!
//! Named twice: INVALID_REQUEST. Unknown topic or partition:
//! UNKNOWN_TOPIC_OR_PARTITION. A target that is empty, repeats a broker or
//! names an unregistered one: INVALID_REPLICA_ASSIGNMENT. A target of
//! another size when the request keeps the replication factor:
//! INVALID_REPLICATION_FACTOR. Cancelling where nothing runs:
//! NO_REASSIGNMENT_IN_PROGRESS.

use std::collections::HashSet;

use kraft_metadata::{MetadataImage, PartitionRegistration};
use kraft_proto::controller::{
    AlterReassignmentsRequest, AlterReassignmentsResponse, ListReassignmentsRequest,
    ListReassignmentsResponse, OngoingReassignment, ReassignmentResult, ReassignmentTarget,
    ReplicaAssignment,
};
use kraft_proto::metadata::MetadataRecord;
use uuid::Uuid;

use crate::controller_result::ControllerResult;
use crate::error::ControllerError;
use crate::error_codes::{
    INVALID_REPLICATION_FACTOR, INVALID_REPLICA_ASSIGNMENT, INVALID_REQUEST,
    NO_REASSIGNMENT_IN_PROGRESS, UNKNOWN_TOPIC_OR_PARTITION,
};
use crate::partition_change::PartitionChangeBuilder;
use crate::placement::{is_usable, validate_manual_assignment};

/// Starts, replaces or cancels reassignments; see the module docs.
pub fn alter_reassignments(
    image: &MetadataImage,
    request: &AlterReassignmentsRequest,
) -> ControllerResult<AlterReassignmentsResponse> {
    let mut seen = HashSet::new();
    let repeated: HashSet<(&str, i32)> = request
        .targets
        .iter()
        .map(|t| (t.topic.as_str(), t.partition))
        .filter(|key| !seen.insert(*key))
        .collect();
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(request.targets.len());
    for target in &request.targets {
        let outcome = if repeated.contains(&(target.topic.as_str(), target.partition)) {
            Err(ControllerError::new(
                INVALID_REQUEST,
                format!(
                    "Partition {}-{} appears more than once in the request.",
                    target.topic, target.partition
                ),
            ))
        } else {
            reassign(image, target, request.keep_replication_factor)
        };
        let (error_code, error_message) = match outcome {
            Ok(record) => {
                records.extend(record);
                (0, String::new())
            }
            Err(e) => (e.code, e.message),
        };
        results.push(ReassignmentResult {
            topic: target.topic.clone(),
            partition: target.partition,
            error_code,
            error_message,
        });
    }
    ControllerResult::new(records, AlterReassignmentsResponse { results })
}

fn reassign(
    image: &MetadataImage,
    target: &ReassignmentTarget,
    keep_replication_factor: bool,
) -> Result<Option<MetadataRecord>, ControllerError> {
    let name = target.topic.as_str();
    let found = image
        .topics()
        .topic_by_name(name)
        .and_then(|t| Some((t.id(), t.partition(target.partition)?)));
    let Some((topic_id, partition)) = found else {
        return Err(ControllerError::new(
            UNKNOWN_TOPIC_OR_PARTITION,
            format!("No such partition as {name}-{}.", target.partition),
        ));
    };
    if target.replicas.is_empty() {
        cancel(image, topic_id, target.partition, partition)
    } else {
        start(image, topic_id, target, partition, keep_replication_factor)
    }
}

/// The replicas before any reassignment in progress started, in order.
fn original_replicas(partition: &PartitionRegistration) -> Vec<i32> {
    without(&partition.replicas, &partition.adding_replicas)
}

/// `ids` minus `gone`, in `ids`' order.
fn without(ids: &[i32], gone: &[i32]) -> Vec<i32> {
    ids.iter().copied().filter(|b| !gone.contains(b)).collect()
}

fn start(
    image: &MetadataImage,
    topic_id: Uuid,
    target: &ReassignmentTarget,
    partition: &PartitionRegistration,
    keep_replication_factor: bool,
) -> Result<Option<MetadataRecord>, ControllerError> {
    let assignment = ReplicaAssignment {
        partition_index: target.partition,
        broker_ids: target.replicas.clone(),
    };
    validate_manual_assignment(image, &[assignment], target.partition, None)?;
    let original = original_replicas(partition);
    let wanted = &target.replicas;
    if keep_replication_factor && wanted.len() != original.len() {
        return Err(ControllerError::new(
            INVALID_REPLICATION_FACTOR,
            format!(
                "The replication factor is changed from {} to {}, and the request does not allow that.",
                original.len(),
                wanted.len()
            ),
        ));
    }
    let adding = without(wanted, &original);
    let removing = without(&original, wanted);
    let replicas: Vec<i32> = wanted.iter().chain(&removing).copied().collect();
    if !partition.isr.iter().any(|b| replicas.contains(b)) {
        return Err(ControllerError::new(
            INVALID_REPLICA_ASSIGNMENT,
            format!(
                "Reassigning {}-{} to {wanted:?} would leave it with no in-sync replica.",
                target.topic, target.partition
            ),
        ));
    }
    let usable = |b: i32| is_usable(image, b);
    Ok(
        PartitionChangeBuilder::new(topic_id, target.partition, partition, &usable)
            .set_target_replicas(replicas)
            .set_target_adding(adding)
            .set_target_removing(removing)
            .build(),
    )
}

fn cancel(
    image: &MetadataImage,
    topic_id: Uuid,
    partition_id: i32,
    partition: &PartitionRegistration,
) -> Result<Option<MetadataRecord>, ControllerError> {
    if partition.adding_replicas.is_empty() && partition.removing_replicas.is_empty() {
        return Err(ControllerError::new(
            NO_REASSIGNMENT_IN_PROGRESS,
            "No partition reassignment is in progress for this partition.",
        ));
    }
    let isr = without(&partition.isr, &partition.adding_replicas);
    if isr.is_empty() {
        return Err(ControllerError::new(
            INVALID_REPLICA_ASSIGNMENT,
            "Unable to revert the reassignment: every in-sync replica is one being added, so it would need an unclean leader election.",
        ));
    }
    let usable = |b: i32| is_usable(image, b);
    Ok(
        PartitionChangeBuilder::new(topic_id, partition_id, partition, &usable)
            .set_target_replicas(original_replicas(partition))
            .set_target_isr(isr)
            .set_target_adding(Vec::new())
            .set_target_removing(Vec::new())
            .build(),
    )
}

/// The reassignments in progress among the named partitions (every one
/// when none is named), by topic then partition. Names that do not exist,
/// or are not being reassigned, are left out, as in Kafka.
pub fn list_reassignments(
    image: &MetadataImage,
    request: &ListReassignmentsRequest,
) -> ListReassignmentsResponse {
    let ongoing = |topic: &str, partition_id: i32, p: &PartitionRegistration| {
        (!p.adding_replicas.is_empty() || !p.removing_replicas.is_empty()).then(|| {
            OngoingReassignment {
                topic: topic.to_string(),
                partition: partition_id,
                replicas: p.replicas.clone(),
                adding_replicas: p.adding_replicas.clone(),
                removing_replicas: p.removing_replicas.clone(),
            }
        })
    };
    let mut reassignments: Vec<OngoingReassignment> = if request.partitions.is_empty() {
        image
            .topics()
            .topics()
            .flat_map(|t| {
                t.partitions()
                    .iter()
                    .filter_map(move |(id, p)| ongoing(t.name(), *id, p))
            })
            .collect()
    } else {
        let mut wanted = HashSet::new();
        request
            .partitions
            .iter()
            .flat_map(|named| {
                named
                    .partitions
                    .iter()
                    .map(move |p| (named.topic.as_str(), *p))
            })
            .filter(|key| wanted.insert(*key))
            .filter_map(|(topic, id)| {
                let p = image.topics().topic_by_name(topic)?.partition(id)?;
                ongoing(topic, id, p)
            })
            .collect()
    };
    reassignments.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    ListReassignmentsResponse { reassignments }
}

#[cfg(test)]
mod tests {
    use kraft_proto::controller::TopicPartitions;

    use super::*;
    use crate::partition_change::test_image::{apply, broker, fence, image, partition, topic};

    const T: Uuid = Uuid::from_u128(1);

    /// Brokers 1-6; t-0 = [2,3] led by 2; t-1 = [1,2,3] isr [1,2] led by 1.
    fn cluster() -> MetadataImage {
        image(vec![
            broker(1, None),
            broker(2, None),
            broker(3, None),
            broker(4, None),
            broker(5, None),
            broker(6, None),
            topic("t", T),
            partition(T, 0, &[2, 3], &[2, 3], 2),
            partition(T, 1, &[1, 2, 3], &[1, 2], 1),
        ])
    }

    fn target(p: i32, replicas: &[i32]) -> ReassignmentTarget {
        ReassignmentTarget {
            topic: "t".into(),
            partition: p,
            replicas: replicas.to_vec(),
        }
    }

    fn alter(img: &MetadataImage, targets: Vec<ReassignmentTarget>) -> (Vec<i32>, MetadataImage) {
        let result = alter_reassignments(
            img,
            &AlterReassignmentsRequest {
                targets,
                keep_replication_factor: false,
            },
        );
        let codes = result
            .response
            .results
            .iter()
            .map(|r| r.error_code)
            .collect();
        (codes, apply(img, &result.records))
    }

    /// (replicas, isr, leader, adding, removing) of t-`p`.
    fn state(img: &MetadataImage, p: i32) -> (Vec<i32>, Vec<i32>, i32, Vec<i32>, Vec<i32>) {
        let p = img.topics().partition(T, p).unwrap();
        (
            p.replicas.clone(),
            p.isr.clone(),
            p.leader,
            p.adding_replicas.clone(),
            p.removing_replicas.clone(),
        )
    }

    /// The ISR change the leader would ask for, as AlterPartition would
    /// build it.
    fn grow_isr(img: &MetadataImage, p: i32, isr: &[i32]) -> MetadataImage {
        let part = img.topics().partition(T, p).unwrap();
        let usable = |b: i32| is_usable(img, b);
        let record = PartitionChangeBuilder::new(T, p, part, &usable)
            .set_target_isr(isr.to_vec())
            .build()
            .expect("a change");
        apply(img, &[record])
    }

    #[test]
    fn a_move_adds_first_then_finishes_when_the_new_replicas_are_in_sync() {
        let img = cluster();
        let (codes, moving) = alter(&img, vec![target(0, &[4, 5])]);
        assert_eq!(codes, vec![0]);
        assert_eq!(
            state(&moving, 0),
            (vec![4, 5, 2, 3], vec![2, 3], 2, vec![4, 5], vec![2, 3])
        );
        let listed = list_reassignments(&moving, &ListReassignmentsRequest::default());
        assert_eq!(listed.reassignments.len(), 1);
        assert_eq!(listed.reassignments[0].adding_replicas, vec![4, 5]);

        // One new replica in sync: still moving.
        let half = grow_isr(&moving, 0, &[2, 3, 4]);
        assert_eq!(state(&half, 0).3, vec![4, 5]);
        // Both: done, and 2 (removed) gives way to 4, with a new epoch.
        let done = grow_isr(&half, 0, &[2, 3, 4, 5]);
        assert_eq!(state(&done, 0), (vec![4, 5], vec![4, 5], 4, vec![], vec![]));
        let p = done.topics().partition(T, 0).unwrap();
        assert_eq!(p.leader_epoch, 1);
        assert!(
            list_reassignments(&done, &ListReassignmentsRequest::default())
                .reassignments
                .is_empty()
        );
    }

    #[test]
    fn shrinking_or_reordering_finishes_at_once() {
        let img = cluster();
        let (codes, after) = alter(&img, vec![target(1, &[2, 1]), target(0, &[3, 2])]);
        assert_eq!(codes, vec![0, 0]);
        assert_eq!(
            state(&after, 1),
            (vec![2, 1], vec![1, 2], 1, vec![], vec![])
        );
        assert_eq!(
            state(&after, 0),
            (vec![3, 2], vec![2, 3], 2, vec![], vec![])
        );
        // The same replicas again change nothing.
        let same = alter_reassignments(
            &after,
            &AlterReassignmentsRequest {
                targets: vec![target(0, &[3, 2])],
                keep_replication_factor: false,
            },
        );
        assert_eq!(same.response.results[0].error_code, 0);
        assert!(same.records.is_empty());
    }

    #[test]
    fn cancelling_goes_back_to_the_original_replicas() {
        let img = cluster();
        let (_, moving) = alter(&img, vec![target(1, &[1, 4, 5])]);
        assert_eq!(
            state(&moving, 1),
            (vec![1, 4, 5, 2, 3], vec![1, 2], 1, vec![4, 5], vec![2, 3])
        );
        let half = grow_isr(&moving, 1, &[1, 2, 4]);
        let (codes, back) = alter(&half, vec![target(1, &[])]);
        assert_eq!(codes, vec![0]);
        assert_eq!(
            state(&back, 1),
            (vec![1, 2, 3], vec![1, 2], 1, vec![], vec![])
        );
        let (codes, _) = alter(&back, vec![target(1, &[])]);
        assert_eq!(codes, vec![NO_REASSIGNMENT_IN_PROGRESS]);
    }

    #[test]
    fn a_new_target_starts_again_from_the_original_replicas() {
        let img = cluster();
        let (_, moving) = alter(&img, vec![target(0, &[4, 5])]);
        let with_4 = grow_isr(&moving, 0, &[2, 3, 4]);
        let (codes, changed) = alter(&with_4, vec![target(0, &[5, 6])]);
        assert_eq!(codes, vec![0]);
        // 4 is dropped (and leaves the ISR); 5 and 6 are added.
        assert_eq!(
            state(&changed, 0),
            (vec![5, 6, 2, 3], vec![2, 3], 2, vec![5, 6], vec![2, 3])
        );
    }

    #[test]
    fn every_error_code() {
        let img = apply(&cluster(), &[fence(6)]);
        let (codes, _) = alter(&img, vec![target(0, &[4, 5]), target(0, &[4, 6])]);
        assert_eq!(codes, vec![INVALID_REQUEST, INVALID_REQUEST]);
        for (t, code) in [
            (target(7, &[1]), UNKNOWN_TOPIC_OR_PARTITION),
            (
                ReassignmentTarget {
                    topic: "nope".into(),
                    ..target(0, &[1])
                },
                UNKNOWN_TOPIC_OR_PARTITION,
            ),
            (target(1, &[4, 4, 5]), INVALID_REPLICA_ASSIGNMENT),
            (target(1, &[4, 9, 5]), INVALID_REPLICA_ASSIGNMENT),
            (target(1, &[]), NO_REASSIGNMENT_IN_PROGRESS),
        ] {
            let result = alter_reassignments(
                &img,
                &AlterReassignmentsRequest {
                    targets: vec![t.clone()],
                    keep_replication_factor: false,
                },
            );
            assert_eq!(result.response.results[0].error_code, code, "{t:?}");
            assert!(result.records.is_empty());
        }

        // A fenced target broker is allowed (it joins the ISR once back).
        let (codes, _) = alter(&img, vec![target(0, &[2, 6])]);
        assert_eq!(codes, vec![0]);

        let keep = alter_reassignments(
            &img,
            &AlterReassignmentsRequest {
                targets: vec![target(0, &[4, 5, 6]), target(1, &[4, 5, 6])],
                keep_replication_factor: true,
            },
        );
        let codes: Vec<i32> = keep.response.results.iter().map(|r| r.error_code).collect();
        assert_eq!(codes, vec![INVALID_REPLICATION_FACTOR, 0]);
    }

    #[test]
    fn a_cancellation_that_needs_an_unclean_election_is_refused() {
        let img = cluster();
        let (_, moving) = alter(&img, vec![target(0, &[4])]);
        let with_4 = grow_isr(&moving, 0, &[2, 3, 4]);
        // Finished already (4 in sync): nothing to cancel.
        assert_eq!(state(&with_4, 0).0, vec![4]);
        // Make an ISR of adding replicas only: [4,5] -> isr [4] while 2,3
        // are being removed, as after the old replicas were fenced.
        let odd = image(vec![
            broker(2, None),
            broker(4, None),
            broker(5, None),
            topic("t", T),
            kraft_metadata::record(kraft_proto::metadata::metadata_record::Record::Partition(
                kraft_proto::metadata::PartitionRecord {
                    topic_id: bytes::Bytes::copy_from_slice(T.as_bytes()),
                    partition_id: 0,
                    replicas: vec![4, 5, 2],
                    isr: vec![4],
                    leader: 4,
                    adding_replicas: vec![4, 5],
                    removing_replicas: vec![2],
                    ..Default::default()
                },
            )),
        ]);
        let (codes, _) = alter(&odd, vec![target(0, &[])]);
        assert_eq!(codes, vec![INVALID_REPLICA_ASSIGNMENT]);
    }

    #[test]
    fn listing_named_partitions_skips_unknown_and_idle_ones() {
        let img = cluster();
        let (_, moving) = alter(&img, vec![target(0, &[4, 5]), target(1, &[1, 4])]);
        let request = ListReassignmentsRequest {
            partitions: vec![
                TopicPartitions {
                    topic: "t".into(),
                    partitions: vec![1, 1, 5],
                },
                TopicPartitions {
                    topic: "nope".into(),
                    partitions: vec![0],
                },
            ],
        };
        let listed = list_reassignments(&moving, &request);
        assert_eq!(listed.reassignments.len(), 1);
        let r = &listed.reassignments[0];
        assert_eq!(
            (
                r.partition,
                r.replicas.clone(),
                r.adding_replicas.clone(),
                r.removing_replicas.clone()
            ),
            (1, vec![1, 4, 2, 3], vec![4], vec![2, 3])
        );
        let all = list_reassignments(&moving, &ListReassignmentsRequest::default());
        assert_eq!(all.reassignments.len(), 2);
    }
}
