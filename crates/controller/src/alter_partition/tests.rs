//! Tests of AlterPartition: records and responses from fixed images.

use bytes::Bytes;
use kraft_metadata::NO_LEADER;
use kraft_proto::metadata::{BrokerControlledShutdownRecord, PartitionChangeRecord};

use super::*;
use crate::partition_change::test_image::{apply, broker, epoch, fence, image, partition, topic};

const T: Uuid = Uuid::from_u128(1);

fn tid() -> Bytes {
    Bytes::copy_from_slice(T.as_bytes())
}

/// Brokers 1-4; partition 0 = [1,2,3] isr [1,2] led by 1; partition 1
/// = [2,1] isr [2,1] led by 2.
fn cluster() -> MetadataImage {
    image(vec![
        broker(1, None),
        broker(2, None),
        broker(3, None),
        broker(4, None),
        topic("t", T),
        partition(T, 0, &[1, 2, 3], &[1, 2], 1),
        partition(T, 1, &[2, 1], &[2, 1], 2),
    ])
}

fn item(p: i32, leader_epoch: i32, partition_epoch: i32, isr: &[i32]) -> AlterPartitionItem {
    AlterPartitionItem {
        topic_id: tid(),
        partition: p,
        leader_epoch,
        partition_epoch,
        new_isr: isr.to_vec(),
    }
}

fn request(broker_id: i32, items: Vec<AlterPartitionItem>) -> AlterPartitionRequest {
    AlterPartitionRequest {
        broker_id,
        broker_epoch: epoch(broker_id),
        partitions: items,
    }
}

fn codes(r: &ControllerResult<AlterPartitionResponse>) -> Vec<i32> {
    r.response.partitions.iter().map(|p| p.error_code).collect()
}

#[test]
fn isr_expansion_writes_one_change_and_answers_the_new_state() {
    let img = cluster();
    let result = alter_partition(&img, &request(1, vec![item(0, 0, 0, &[1, 2, 3])])).unwrap();
    assert_eq!(codes(&result), vec![0]);
    assert_eq!(result.records.len(), 1);
    let Some(Record::PartitionChange(c)) = &result.records[0].record else {
        panic!("a partition change");
    };
    assert_eq!(c.leader, None, "an ISR change is not an election");
    let r = &result.response.partitions[0];
    assert_eq!(
        (
            r.leader_id,
            r.leader_epoch,
            r.partition_epoch,
            r.isr.clone()
        ),
        (1, 0, 1, vec![1, 2, 3])
    );
    let after = apply(&img, &result.records);
    let p = after.topics().partition(T, 0).unwrap();
    assert_eq!(
        (p.isr.clone(), p.leader_epoch, p.partition_epoch),
        (vec![1, 2, 3], 0, 1)
    );

    // The same ISR again (with the new epoch) is answered without a write.
    let again = alter_partition(&after, &request(1, vec![item(0, 0, 1, &[1, 2, 3])])).unwrap();
    assert_eq!(codes(&again), vec![0]);
    assert!(again.records.is_empty());
    assert_eq!(again.response.partitions[0].partition_epoch, 1);
}

#[test]
fn isr_shrink_keeps_the_leader_and_its_epoch() {
    let img = cluster();
    let result = alter_partition(&img, &request(2, vec![item(1, 0, 0, &[2])])).unwrap();
    assert_eq!(codes(&result), vec![0]);
    let p = apply(&img, &result.records);
    let p = p.topics().partition(T, 1).unwrap();
    assert_eq!((p.isr.clone(), p.leader, p.leader_epoch), (vec![2], 2, 0));
}

#[test]
fn every_partition_error_code() {
    let img = apply(
        &cluster(),
        &[
            fence(4),
            kraft_metadata::record(Record::BrokerControlledShutdown(
                BrokerControlledShutdownRecord {
                    broker_id: 3,
                    broker_epoch: epoch(3),
                },
            )),
        ],
    );
    let unknown_topic = AlterPartitionItem {
        topic_id: Bytes::copy_from_slice(Uuid::from_u128(9).as_bytes()),
        ..item(0, 0, 0, &[1])
    };
    let garbage_id = AlterPartitionItem {
        topic_id: Bytes::from_static(b"short"),
        ..item(0, 0, 0, &[1])
    };
    let cases = vec![
        (unknown_topic, code(ResponseError::UnknownTopicOrPartition)),
        (garbage_id, code(ResponseError::UnknownTopicOrPartition)),
        (
            item(7, 0, 0, &[1]),
            code(ResponseError::UnknownTopicOrPartition),
        ),
        (
            item(1, 0, 0, &[1, 2]),
            code(ResponseError::NotLeaderOrFollower),
        ),
        (item(0, 1, 0, &[1]), code(ResponseError::FencedLeaderEpoch)),
        (
            item(0, 0, 3, &[1]),
            code(ResponseError::InvalidUpdateVersion),
        ),
        (item(0, 0, 0, &[]), code(ResponseError::InvalidRequest)),
        (item(0, 0, 0, &[1, 1]), code(ResponseError::InvalidRequest)),
        (item(0, 0, 0, &[1, 4]), code(ResponseError::InvalidRequest)),
        (item(0, 0, 0, &[2]), code(ResponseError::InvalidRequest)),
        (
            item(0, 0, 0, &[1, 2, 3]),
            code(ResponseError::IneligibleReplica),
        ),
    ];
    for (item, expected) in cases {
        let result = alter_partition(&img, &request(1, vec![item.clone()])).unwrap();
        assert_eq!(codes(&result), vec![expected], "{item:?}");
        assert!(result.records.is_empty());
    }
    // Errors still say how the partition stands.
    let fenced = alter_partition(&img, &request(1, vec![item(0, 1, 0, &[1])])).unwrap();
    let fenced = &fenced.response.partitions[0];
    assert_eq!((fenced.leader_id, fenced.isr.clone()), (1, vec![1, 2]));

    // A fenced or unregistered member newly added is ineligible too.
    let with_4 = image(vec![
        broker(1, None),
        broker(4, None),
        fence(4),
        topic("t", T),
        partition(T, 0, &[1, 4, 5], &[1], 1),
    ]);
    for isr in [&[1, 4][..], &[1, 5][..]] {
        let r = alter_partition(&with_4, &request(1, vec![item(0, 0, 0, isr)])).unwrap();
        assert_eq!(
            codes(&r),
            vec![code(ResponseError::IneligibleReplica)],
            "{isr:?}"
        );
    }
}

#[test]
fn a_partition_named_twice_is_refused_both_times() {
    let img = cluster();
    let items = vec![
        item(0, 0, 0, &[1, 2, 3]),
        item(0, 0, 0, &[1]),
        item(1, 0, 0, &[2]),
    ];
    let result = alter_partition(&img, &request(2, items)).unwrap();
    assert_eq!(
        codes(&result),
        vec![
            code(ResponseError::InvalidRequest),
            code(ResponseError::InvalidRequest),
            0
        ]
    );
    assert_eq!(result.records.len(), 1);
}

#[test]
fn a_stale_or_unknown_broker_epoch_fails_the_request() {
    let img = cluster();
    let mut stale = request(1, vec![item(0, 0, 0, &[1])]);
    stale.broker_epoch += 1;
    assert_eq!(
        alter_partition(&img, &stale).unwrap_err().code,
        code(ResponseError::StaleBrokerEpoch)
    );
    let unknown = AlterPartitionRequest {
        broker_id: 9,
        ..stale
    };
    assert_eq!(
        alter_partition(&img, &unknown).unwrap_err().code,
        code(ResponseError::StaleBrokerEpoch)
    );
}

#[test]
fn the_isr_growth_that_completes_a_reassignment_finishes_it() {
    // [1,2] -> [3,1]: replicas [3,1,2], adding [3], removing [2].
    let moving = |leader: i32| {
        image(vec![
            broker(1, None),
            broker(2, None),
            broker(3, None),
            topic("t", T),
            kraft_metadata::record(Record::Partition(kraft_proto::metadata::PartitionRecord {
                topic_id: tid(),
                partition_id: 0,
                replicas: vec![3, 1, 2],
                isr: vec![1, 2],
                leader,
                adding_replicas: vec![3],
                removing_replicas: vec![2],
                ..Default::default()
            })),
        ])
    };
    let img = moving(1);
    let result = alter_partition(&img, &request(1, vec![item(0, 0, 0, &[1, 2, 3])])).unwrap();
    assert_eq!(codes(&result), vec![0]);
    let after = apply(&img, &result.records);
    let p = after.topics().partition(T, 0).unwrap();
    assert_eq!(
        (p.replicas.clone(), p.isr.clone(), p.leader, p.leader_epoch),
        (vec![3, 1], vec![1, 3], 1, 0)
    );
    assert!(p.adding_replicas.is_empty() && p.removing_replicas.is_empty());

    // Led by a replica the reassignment removes: a new leader, and the
    // sender learns it with NEW_LEADER_ELECTED.
    let img = moving(2);
    let result = alter_partition(&img, &request(2, vec![item(0, 0, 0, &[1, 2, 3])])).unwrap();
    assert_eq!(codes(&result), vec![code(ResponseError::NewLeaderElected)]);
    let r = &result.response.partitions[0];
    assert_eq!(
        (r.leader_id, r.leader_epoch, r.isr.clone()),
        (3, 1, vec![1, 3])
    );
    let after = apply(&img, &result.records);
    assert_eq!(after.topics().partition(T, 0).unwrap().replicas, vec![3, 1]);
}

#[test]
fn records_replay_exactly_as_answered() {
    // What the response says is what replaying the record gives.
    let img = cluster();
    let result = alter_partition(&img, &request(1, vec![item(0, 0, 0, &[1])])).unwrap();
    let Some(Record::PartitionChange(PartitionChangeRecord { isr, .. })) =
        &result.records[0].record
    else {
        panic!("a partition change");
    };
    assert_eq!(isr.as_ref().map(|i| i.ids.clone()), Some(vec![1]));
    let after = apply(&img, &result.records);
    let p = after.topics().partition(T, 0).unwrap();
    let r = &result.response.partitions[0];
    assert_eq!(
        (
            r.leader_id,
            r.leader_epoch,
            r.partition_epoch,
            r.isr.clone()
        ),
        (p.leader, p.leader_epoch, p.partition_epoch, p.isr.clone())
    );
    assert_ne!(p.leader, NO_LEADER);
}
