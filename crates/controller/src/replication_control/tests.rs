//! Unit tests of topic creation, deletion and partition addition.

use kraft_proto::controller::ReplicaAssignment;

use super::*;
use crate::partition_change::test_image::{apply, broker, fence, image, topic, topic_image};

const DEFAULTS: TopicDefaults = TopicDefaults {
    num_partitions: 3,
    replication_factor: 2,
};

fn brokers(ids: &[i32]) -> Vec<MetadataRecord> {
    ids.iter().map(|id| broker(*id, None)).collect()
}

fn creatable(name: &str, partitions: i32, rf: i32) -> CreatableTopic {
    CreatableTopic {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: rf,
        ..Default::default()
    }
}

fn create(
    img: &MetadataImage,
    topics: Vec<CreatableTopic>,
) -> ControllerResult<CreateTopicsResponse> {
    let request = CreateTopicsRequest {
        topics,
        validate_only: false,
    };
    create_topics(img, &request, &DEFAULTS)
}

fn assignment(p: i32, ids: &[i32]) -> ReplicaAssignment {
    ReplicaAssignment {
        partition_index: p,
        broker_ids: ids.to_vec(),
    }
}

#[test]
fn creates_a_topic_with_placed_partitions_and_configs() {
    let img = image(brokers(&[1, 2, 3]));
    let mut t = creatable("orders", 6, 2);
    t.configs.insert("retention.ms".into(), "1000".into());
    let result = create(&img, vec![t]);
    let r = &result.response.topics[0];
    assert_eq!(
        (r.error_code, r.num_partitions, r.replication_factor),
        (0, 6, 2)
    );
    let id = Uuid::from_slice(&r.topic_id).unwrap();
    assert!(!id.is_nil());
    assert_eq!(result.records.len(), 1 + 6 + 1);

    let after = apply(&img, &result.records);
    let created = after.topics().topic_by_name("orders").unwrap();
    assert_eq!(created.id(), id);
    let mut leaders = HashMap::<i32, usize>::new();
    for p in created.partitions().values() {
        assert_eq!(p.replicas.len(), 2);
        assert_eq!(p.isr, p.replicas);
        assert_eq!(p.leader, p.replicas[0]);
        assert_eq!((p.leader_epoch, p.partition_epoch), (0, 0));
        *leaders.entry(p.leader).or_default() += 1;
    }
    assert!(leaders.values().all(|c| *c == 2), "{leaders:?}");
    let res = kraft_metadata::ConfigResource::topic("orders");
    assert_eq!(after.configs().get(&res, "retention.ms"), Some("1000"));
}

#[test]
fn defaults_and_validate_only() {
    let img = image(brokers(&[1, 2]));
    let request = CreateTopicsRequest {
        topics: vec![creatable("a", -1, -1)],
        validate_only: true,
    };
    let result = create_topics(&img, &request, &DEFAULTS);
    assert!(result.records.is_empty());
    let r = &result.response.topics[0];
    assert_eq!(
        (r.error_code, r.num_partitions, r.replication_factor),
        (0, 3, 2)
    );
    assert_eq!(r.topic_id.len(), 16);
}

#[test]
fn every_create_error_code() {
    let img = image(
        [
            brokers(&[1, 2, 3]),
            vec![
                fence(3),
                topic("taken", Uuid::from_u128(9)),
                topic("a.b", Uuid::from_u128(8)),
            ],
        ]
        .concat(),
    );
    let with_config = |k: &str, v: &str| {
        let mut t = creatable("cfg", 1, 1);
        t.configs.insert(k.into(), v.into());
        t
    };
    let manual = |name: &str, parts: i32, a: Vec<ReplicaAssignment>| CreatableTopic {
        name: name.into(),
        num_partitions: parts,
        replication_factor: -1,
        assignments: a,
        ..Default::default()
    };
    let cases = vec![
        (creatable("dup", 1, 1), code(ResponseError::InvalidRequest)),
        (creatable("dup", 1, 1), code(ResponseError::InvalidRequest)),
        (
            creatable("bad name", 1, 1),
            code(ResponseError::InvalidTopicException),
        ),
        (
            creatable("taken", 1, 1),
            code(ResponseError::TopicAlreadyExists),
        ),
        (
            creatable("a_b", 1, 1),
            code(ResponseError::InvalidTopicException),
        ),
        (
            creatable("zero", 0, 1),
            code(ResponseError::InvalidPartitions),
        ),
        (
            creatable("rf0", 1, 0),
            code(ResponseError::InvalidReplicationFactor),
        ),
        (
            creatable("rf3", 1, 3),
            code(ResponseError::InvalidReplicationFactor),
        ),
        (
            with_config("retention.ms", "x"),
            code(ResponseError::InvalidConfig),
        ),
        (
            manual("m1", 2, vec![assignment(0, &[1])]),
            code(ResponseError::InvalidRequest),
        ),
        (
            manual("m2", -1, vec![assignment(0, &[7])]),
            code(ResponseError::InvalidReplicaAssignment),
        ),
        (
            manual("m3", -1, vec![assignment(0, &[1, 1])]),
            code(ResponseError::InvalidReplicaAssignment),
        ),
        (
            manual("m4", -1, vec![assignment(1, &[1])]),
            code(ResponseError::InvalidReplicaAssignment),
        ),
        (
            manual("m5", -1, vec![assignment(0, &[1]), assignment(1, &[1, 2])]),
            code(ResponseError::InvalidReplicaAssignment),
        ),
        (
            manual("m6", -1, vec![assignment(0, &[3])]),
            code(ResponseError::InvalidReplicaAssignment),
        ),
        (creatable("fine", 1, 2), 0),
        (creatable("fine.x", 1, 1), 0),
        (
            creatable("fine_x", 1, 1),
            code(ResponseError::InvalidTopicException),
        ),
    ];
    let (topics, expected): (Vec<_>, Vec<_>) = cases.into_iter().unzip();
    let result = create(&img, topics);
    let got: Vec<i32> = result
        .response
        .topics
        .iter()
        .map(|r| r.error_code)
        .collect();
    assert_eq!(got, expected);
    let collision = &result.response.topics[4];
    assert_eq!(
        collision.error_message,
        "Topic 'a_b' collides with existing topic: a.b"
    );
    assert!(result.response.topics[7]
        .error_message
        .contains("only 2 broker(s)"));
    assert!(result
        .response
        .topics
        .iter()
        .all(|r| r.error_code == 0 || r.topic_id.is_empty()));
    // Only the two good topics wrote records, and they replay.
    let after = apply(&img, &result.records);
    assert_eq!(after.topics().len(), 4);
}

#[test]
fn manual_assignment_leaves_fenced_replicas_out_of_the_isr() {
    let img = image([brokers(&[1, 2, 3]), vec![fence(1)]].concat());
    let t = CreatableTopic {
        name: "m".into(),
        num_partitions: -1,
        replication_factor: -1,
        assignments: vec![assignment(0, &[1, 2]), assignment(1, &[3, 1])],
        ..Default::default()
    };
    let after = apply(&img, &create(&img, vec![t]).records);
    let m = after.topics().topic_by_name("m").unwrap();
    let p0 = m.partition(0).unwrap();
    assert_eq!(
        (p0.replicas.clone(), p0.isr.clone(), p0.leader),
        (vec![1, 2], vec![2], 2)
    );
    assert_eq!(m.partition(1).unwrap().leader, 3);
}

#[test]
fn delete_topics_by_name_and_id() {
    let img = topic_image();
    let id = Bytes::copy_from_slice(Uuid::from_u128(1).as_bytes());
    let request = DeleteTopicsRequest {
        names: vec!["t".into(), "nope".into(), "x".into(), "x".into()],
        topic_ids: vec![
            id.clone(),
            Bytes::copy_from_slice(Uuid::from_u128(5).as_bytes()),
            Bytes::from_static(b"short"),
        ],
    };
    let result = delete_topics(&img, &request);
    let codes: Vec<i32> = result
        .response
        .topics
        .iter()
        .map(|r| r.error_code)
        .collect();
    assert_eq!(
        codes,
        vec![
            0,
            code(ResponseError::UnknownTopicOrPartition),
            code(ResponseError::InvalidRequest),
            code(ResponseError::InvalidRequest),
            0,
            code(ResponseError::UnknownTopicId),
            code(ResponseError::InvalidRequest)
        ]
    );
    assert_eq!(result.response.topics[0].topic_id, id);
    assert_eq!(result.response.topics[4].name, "t");
    assert_eq!(result.records.len(), 1, "named twice, removed once");
    assert!(apply(&img, &result.records).topics().is_empty());
}

#[test]
fn create_partitions_adds_with_the_topic_replication_factor() {
    let img = topic_image();
    let request = |count: i32, assignments: Vec<ReplicaAssignment>| CreatePartitionsRequest {
        topics: vec![CreatePartitionsTopic {
            name: "t".into(),
            count,
            assignments,
        }],
        validate_only: false,
    };
    let result = create_partitions(&img, &request(5, vec![]));
    assert_eq!(result.response.topics[0].error_code, 0);
    let after = apply(&img, &result.records);
    let t = after.topics().topic_by_name("t").unwrap();
    assert_eq!(t.partitions().len(), 5);
    assert!(t
        .partitions()
        .values()
        .skip(3)
        .all(|p| p.replicas.len() == 3 && p.isr == p.replicas));

    let manual = create_partitions(&img, &request(4, vec![assignment(3, &[3, 2, 1])]));
    let after = apply(&img, &manual.records);
    assert_eq!(
        after
            .topics()
            .partition(Uuid::from_u128(1), 3)
            .unwrap()
            .leader,
        3
    );

    for (count, a, code) in [
        (2, vec![], code(ResponseError::InvalidPartitions)),
        (3, vec![], code(ResponseError::InvalidPartitions)),
        (
            5,
            vec![assignment(3, &[1, 2, 3])],
            code(ResponseError::InvalidReplicaAssignment),
        ),
        (
            4,
            vec![assignment(3, &[1, 2])],
            code(ResponseError::InvalidReplicaAssignment),
        ),
    ] {
        let r = create_partitions(&img, &request(count, a));
        assert_eq!(r.response.topics[0].error_code, code, "{:?}", r.response);
        assert!(r.records.is_empty());
    }
    let lower = create_partitions(&img, &request(2, vec![]));
    assert_eq!(
        lower.response.topics[0].error_message,
        "Topic currently has 3 partitions, which is higher than the requested 2."
    );
    let unknown = CreatePartitionsRequest {
        topics: vec![CreatePartitionsTopic {
            name: "u".into(),
            count: 2,
            assignments: vec![],
        }],
        validate_only: false,
    };
    assert_eq!(
        create_partitions(&img, &unknown).response.topics[0].error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );
}

/// Kafka's bound on one CreateTopics: 10,000 partitions in all, so the
/// whole request is one atomic metadata write. Over it, every topic of the
/// request gets POLICY_VIOLATION and nothing is written.
#[test]
fn a_create_topics_over_ten_thousand_partitions_in_all_is_refused_whole() {
    let img = image(brokers(&[1, 2, 3]));
    let result = create(
        &img,
        vec![creatable("a", 6_000, 1), creatable("b", 4_001, 1)],
    );
    assert!(result.records.is_empty(), "records were written");
    for topic in &result.response.topics {
        assert_eq!(
            topic.error_code,
            code(ResponseError::PolicyViolation),
            "{}: {}",
            topic.name,
            topic.error_message
        );
        assert!(topic
            .error_message
            .contains("Excessively large number of partitions"));
    }
    // At the bound it is one write.
    let result = create(
        &img,
        vec![creatable("a", 6_000, 1), creatable("b", 4_000, 1)],
    );
    assert!(result.response.topics.iter().all(|t| t.error_code == 0));
}

#[test]
fn a_create_partitions_over_ten_thousand_new_partitions_in_all_is_refused_whole() {
    let img = image(brokers(&[1, 2, 3]));
    let made = create(&img, vec![creatable("a", 1, 1), creatable("b", 1, 1)]);
    let img = apply(&img, &made.records);
    let grow = |a: i32, b: i32| CreatePartitionsRequest {
        topics: ["a", "b"]
            .iter()
            .zip([a, b])
            .map(|(name, count)| CreatePartitionsTopic {
                name: (*name).into(),
                count,
                assignments: vec![],
            })
            .collect(),
        validate_only: false,
    };
    let refused = create_partitions(&img, &grow(6_001, 4_002));
    assert!(refused.records.is_empty());
    assert!(refused
        .response
        .topics
        .iter()
        .all(|t| t.error_code == code(ResponseError::PolicyViolation)));
    let allowed = create_partitions(&img, &grow(6_001, 4_001));
    assert_eq!(allowed.records.len(), 10_000);
}
