//! Tests of the reassignment state machine: start, progress through ISR
//! growth, finish, replace, cancel, errors and listing, on fixed images.

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
    assert_eq!(codes, vec![code(ResponseError::NoReassignmentInProgress)]);
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
    assert_eq!(
        codes,
        vec![
            code(ResponseError::InvalidRequest),
            code(ResponseError::InvalidRequest)
        ]
    );
    for (t, code) in [
        (
            target(7, &[1]),
            code(ResponseError::UnknownTopicOrPartition),
        ),
        (
            ReassignmentTarget {
                topic: "nope".into(),
                ..target(0, &[1])
            },
            code(ResponseError::UnknownTopicOrPartition),
        ),
        (
            target(1, &[4, 4, 5]),
            code(ResponseError::InvalidReplicaAssignment),
        ),
        (
            target(1, &[4, 9, 5]),
            code(ResponseError::InvalidReplicaAssignment),
        ),
        (
            target(1, &[]),
            code(ResponseError::NoReassignmentInProgress),
        ),
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
    assert_eq!(
        codes,
        vec![code(ResponseError::InvalidReplicationFactor), 0]
    );
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
    assert_eq!(codes, vec![code(ResponseError::InvalidReplicaAssignment)]);
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
