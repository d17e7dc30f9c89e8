//! Tests of preferred-leader election on request and of the periodic
//! imbalance check, on fixed images.

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
            (s("a"), 1, code(ResponseError::ElectionNotNeeded)),
            (s("a"), 2, code(ResponseError::PreferredLeaderNotAvailable)),
            (s("a"), 3, code(ResponseError::PreferredLeaderNotAvailable)),
            (s("a"), 9, code(ResponseError::UnknownTopicOrPartition)),
            (s("zz"), 0, code(ResponseError::UnknownTopicOrPartition)),
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
            (s("a"), 2, code(ResponseError::PreferredLeaderNotAvailable)),
            (s("a"), 3, code(ResponseError::PreferredLeaderNotAvailable)),
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
    assert_eq!(
        result.response.results[0].error_code,
        code(ResponseError::InvalidRequest)
    );
    assert!(result.records.is_empty());
    let all = ElectLeadersRequest {
        all_partitions: true,
        ..req
    };
    assert_eq!(
        elect_leaders(&img, &all).unwrap_err().code,
        code(ResponseError::InvalidRequest)
    );
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
