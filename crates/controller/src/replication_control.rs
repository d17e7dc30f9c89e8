//! ReplicationControl: topics, partitions and where their replicas and
//! leaders are.
//!
//! Every function here is pure. Data enters as the current
//! [`MetadataImage`] (the controller's `latest`, including its uncommitted
//! writes) plus a request or a broker id; what leaves is the records to
//! append (`TopicRecord`, `PartitionRecord`, `PartitionChangeRecord`,
//! `RemoveTopicRecord`, `ConfigRecord`, broker fencing records) and, for
//! requests, a response with a Kafka error code per topic. Nothing changes
//! until the caller replays the records.
//!
//! Broker lifecycle changes (fence, unfence, controlled shutdown) are here
//! because they are mostly partition changes: the broker leaves ISRs and
//! leadership moves, decided by [`PartitionChangeBuilder`]. The image still
//! shows the broker as it was, so these functions treat it as unusable (or
//! usable, when unfencing) explicitly.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use kraft_metadata::topic_name::{collides, has_collision_chars, validate_topic_name};
use kraft_metadata::{record, MetadataImage, TopicImage};
use kraft_proto::controller::{
    CreatableTopic, CreatePartitionsRequest, CreatePartitionsResponse, CreatePartitionsResult,
    CreatePartitionsTopic, CreateTopicResult, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicResult, DeleteTopicsRequest, DeleteTopicsResponse,
};
use kraft_proto::metadata::{
    metadata_record::Record, BrokerControlledShutdownRecord, ConfigRecord, ConfigResourceType,
    FenceBrokerRecord, MetadataRecord, PartitionRecord, RemoveTopicRecord, TopicRecord,
    UnfenceBrokerRecord,
};
use uuid::Uuid;

use crate::config_control::validate_topic_configs;
use crate::controller_result::ControllerResult;
use crate::error::ControllerError;
use crate::error_codes::{
    INVALID_PARTITIONS, INVALID_REPLICA_ASSIGNMENT, INVALID_REQUEST, INVALID_TOPIC_EXCEPTION,
    TOPIC_ALREADY_EXISTS, UNKNOWN_TOPIC_ID, UNKNOWN_TOPIC_OR_PARTITION,
};
use crate::partition_change::PartitionChangeBuilder;
use crate::placement::{
    is_usable, place_replicas, usable_brokers, validate_manual_assignment, UsableBroker,
};

/// What `-1` means in CreateTopics: the `num.partitions` and
/// `default.replication.factor` in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopicDefaults {
    pub num_partitions: i32,
    pub replication_factor: i32,
}

/// Creates topics. Each topic is checked in Kafka's order: duplicate in the
/// request (INVALID_REQUEST), name (INVALID_TOPIC_EXCEPTION), already exists
/// (TOPIC_ALREADY_EXISTS), collides with an existing or earlier name
/// (INVALID_TOPIC_EXCEPTION), configs (INVALID_CONFIG), then the manual
/// assignment (INVALID_REQUEST / INVALID_REPLICA_ASSIGNMENT) or counts
/// (INVALID_PARTITIONS / INVALID_REPLICATION_FACTOR) and placement. Results
/// are in request order; with `validate_only` no records are returned.
pub fn create_topics(
    image: &MetadataImage,
    request: &CreateTopicsRequest,
    defaults: &TopicDefaults,
) -> ControllerResult<CreateTopicsResponse> {
    let duplicates = duplicated(request.topics.iter().map(|t| t.name.as_str()));
    let usable = usable_brokers(image);
    let mut created: Vec<&str> = Vec::new();
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let outcome = if duplicates.contains(topic.name.as_str()) {
            Err(ControllerError::new(
                INVALID_REQUEST,
                "Duplicate topic name.",
            ))
        } else {
            create_topic(image, topic, defaults, &usable, &created)
        };
        match outcome {
            Ok((result, topic_records)) => {
                created.push(&topic.name);
                records.extend(topic_records);
                results.push(result);
            }
            Err(e) => results.push(CreateTopicResult {
                name: topic.name.clone(),
                topic_id: Bytes::new(),
                error_code: e.code,
                error_message: e.message,
                num_partitions: -1,
                replication_factor: -1,
            }),
        }
    }
    if request.validate_only {
        records.clear();
    }
    ControllerResult::new(records, CreateTopicsResponse { topics: results })
}

fn create_topic(
    image: &MetadataImage,
    topic: &CreatableTopic,
    defaults: &TopicDefaults,
    usable: &[UsableBroker],
    created: &[&str],
) -> Result<(CreateTopicResult, Vec<MetadataRecord>), ControllerError> {
    let name = topic.name.as_str();
    validate_topic_name(name)?;
    if image.topics().topic_by_name(name).is_some() {
        return Err(ControllerError::new(
            TOPIC_ALREADY_EXISTS,
            format!("Topic '{name}' already exists."),
        ));
    }
    if has_collision_chars(name) {
        let existing = image.topics().names().map(|(n, _)| n);
        if let Some(other) = existing
            .chain(created.iter().copied())
            .find(|n| collides(n, name))
        {
            return Err(ControllerError::new(
                INVALID_TOPIC_EXCEPTION,
                format!("Topic '{name}' collides with existing topic: {other}"),
            ));
        }
    }
    let mut configs: Vec<(&str, &str)> = topic
        .configs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    configs.sort_unstable();
    validate_topic_configs(configs.iter().copied())?;

    let assignment = if topic.assignments.is_empty() {
        let or_default = |v: i32, d: i32| if v == -1 { d } else { v };
        let partitions = or_default(topic.num_partitions, defaults.num_partitions);
        let rf = or_default(topic.replication_factor, defaults.replication_factor);
        place_replicas(usable, start_offset(name), 0, partitions, rf)?
    } else {
        for (field, value) in [
            ("numPartitions", topic.num_partitions),
            ("replicationFactor", topic.replication_factor),
        ] {
            if value != -1 {
                return Err(ControllerError::new(
                    INVALID_REQUEST,
                    format!("A manual partition assignment was specified, but {field} was not set to -1."),
                ));
            }
        }
        validate_manual_assignment(image, &topic.assignments, 0, None)?
    };

    let topic_id = new_topic_id(image);
    let mut records = vec![record(Record::Topic(TopicRecord {
        name: name.to_string(),
        topic_id: id_bytes(topic_id),
    }))];
    records.extend(new_partitions(image, topic_id, 0, &assignment)?);
    records.extend(configs.iter().map(|(key, value)| {
        record(Record::Config(ConfigRecord {
            resource_type: ConfigResourceType::ConfigResourceTopic as i32,
            resource_name: name.to_string(),
            name: key.to_string(),
            value: Some(value.to_string()),
        }))
    }));
    let result = CreateTopicResult {
        name: name.to_string(),
        topic_id: id_bytes(topic_id),
        error_code: 0,
        error_message: String::new(),
        num_partitions: i32::try_from(assignment.len()).unwrap_or(i32::MAX),
        replication_factor: assignment
            .first()
            .map_or(0, |r| i32::try_from(r.len()).unwrap_or(i32::MAX)),
    };
    Ok((result, records))
}

/// One `PartitionRecord` per replica list, numbered from `first`. The ISR
/// is the usable replicas (all of them for a placed partition) and the
/// first of them leads; a partition with no usable replica is refused.
fn new_partitions(
    image: &MetadataImage,
    topic_id: Uuid,
    first: i32,
    assignment: &[Vec<i32>],
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let mut records = Vec::with_capacity(assignment.len());
    for (partition_id, replicas) in (first..).zip(assignment) {
        let isr: Vec<i32> = replicas
            .iter()
            .copied()
            .filter(|b| is_usable(image, *b))
            .collect();
        let Some(&leader) = isr.first() else {
            return Err(ControllerError::new(
                INVALID_REPLICA_ASSIGNMENT,
                format!("All brokers specified in the manual partition assignment for partition {partition_id} are fenced or in controlled shutdown."),
            ));
        };
        records.push(record(Record::Partition(PartitionRecord {
            topic_id: id_bytes(topic_id),
            partition_id,
            replicas: replicas.clone(),
            isr,
            leader,
            ..Default::default()
        })));
    }
    Ok(records)
}

/// Deletes topics named in `names` or `topic_ids`: one `RemoveTopicRecord`
/// each (its configs go with it on replay). Names first, then ids.
pub fn delete_topics(
    image: &MetadataImage,
    request: &DeleteTopicsRequest,
) -> ControllerResult<DeleteTopicsResponse> {
    let dup_names = duplicated(request.names.iter().map(String::as_str));
    let dup_ids = duplicated(request.topic_ids.iter().map(|b| b.as_ref()));
    let mut removed = HashSet::new();
    let mut records = Vec::new();
    let mut results = Vec::new();
    let mut remove = |topic: &TopicImage| {
        if removed.insert(topic.id()) {
            records.push(record(Record::RemoveTopic(RemoveTopicRecord {
                topic_id: id_bytes(topic.id()),
            })));
        }
        DeleteTopicResult {
            name: topic.name().to_string(),
            topic_id: id_bytes(topic.id()),
            ..Default::default()
        }
    };
    let failed = |name: &str, topic_id: Bytes, code, message: String| DeleteTopicResult {
        name: name.to_string(),
        topic_id,
        error_code: code,
        error_message: message,
    };
    for name in &request.names {
        results.push(if dup_names.contains(name.as_str()) {
            failed(
                name,
                Bytes::new(),
                INVALID_REQUEST,
                "Duplicate topic name.".into(),
            )
        } else if let Some(topic) = image.topics().topic_by_name(name) {
            remove(topic)
        } else {
            let msg = format!("Topic '{name}' does not exist.");
            failed(name, Bytes::new(), UNKNOWN_TOPIC_OR_PARTITION, msg)
        });
    }
    for raw in &request.topic_ids {
        let id = Uuid::from_slice(raw).ok();
        results.push(if dup_ids.contains(raw.as_ref()) {
            failed(
                "",
                raw.clone(),
                INVALID_REQUEST,
                "Duplicate topic id.".into(),
            )
        } else if let Some(topic) = id.and_then(|id| image.topics().topic(id)) {
            remove(topic)
        } else if let Some(id) = id {
            let msg = format!("Topic id {id} does not exist.");
            failed("", raw.clone(), UNKNOWN_TOPIC_ID, msg)
        } else {
            let msg = format!("A topic id is 16 bytes, not {}.", raw.len());
            failed("", raw.clone(), INVALID_REQUEST, msg)
        });
    }
    ControllerResult::new(records, DeleteTopicsResponse { topics: results })
}

/// Raises topics' partition counts to `count`. New partitions get the
/// topic's replication factor (that of its partition 0), placed by
/// [`place_replicas`] or given by a manual assignment whose
/// `partition_index`es are the new partitions' ids (current count and up).
pub fn create_partitions(
    image: &MetadataImage,
    request: &CreatePartitionsRequest,
) -> ControllerResult<CreatePartitionsResponse> {
    let duplicates = duplicated(request.topics.iter().map(|t| t.name.as_str()));
    let usable = usable_brokers(image);
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let outcome = if duplicates.contains(topic.name.as_str()) {
            Err(ControllerError::new(
                INVALID_REQUEST,
                "Duplicate topic name.",
            ))
        } else {
            add_partitions(image, topic, &usable)
        };
        let (error_code, error_message) = match outcome {
            Ok(new) => {
                records.extend(new);
                (0, String::new())
            }
            Err(e) => (e.code, e.message),
        };
        results.push(CreatePartitionsResult {
            name: topic.name.clone(),
            error_code,
            error_message,
        });
    }
    if request.validate_only {
        records.clear();
    }
    ControllerResult::new(records, CreatePartitionsResponse { topics: results })
}

fn add_partitions(
    image: &MetadataImage,
    request: &CreatePartitionsTopic,
    usable: &[UsableBroker],
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let name = request.name.as_str();
    let topic = image.topics().topic_by_name(name).ok_or_else(|| {
        ControllerError::new(
            UNKNOWN_TOPIC_OR_PARTITION,
            format!("Topic '{name}' does not exist."),
        )
    })?;
    let current = i32::try_from(topic.partitions().len()).unwrap_or(i32::MAX);
    let count = request.count;
    if count < current {
        let msg = format!(
            "Topic currently has {current} partitions, which is higher than the requested {count}."
        );
        return Err(ControllerError::new(INVALID_PARTITIONS, msg));
    }
    if count == current {
        let msg = format!("Topic already has {current} partition(s).");
        return Err(ControllerError::new(INVALID_PARTITIONS, msg));
    }
    let first = topic.partitions().keys().next_back().map_or(0, |p| p + 1);
    let rf = topic.partition(0).map_or(0, |p| p.replicas.len());
    let added = count - current;
    let assignment = if request.assignments.is_empty() {
        let rf = i32::try_from(rf).unwrap_or(i32::MAX);
        place_replicas(usable, start_offset(name), first, added, rf)?
    } else {
        if i64::try_from(request.assignments.len()) != Ok(i64::from(added)) {
            return Err(ControllerError::new(
                INVALID_REPLICA_ASSIGNMENT,
                format!(
                    "Attempted to add {added} additional partition(s), but only {} assignment(s) were specified.",
                    request.assignments.len()
                ),
            ));
        }
        validate_manual_assignment(image, &request.assignments, first, Some(rf))?
    };
    new_partitions(image, topic.id(), first, &assignment)
}

/// Fences a broker: `FenceBrokerRecord`, then every partition takes it out
/// of its ISR (unless it is the last member) and moves leadership off it.
/// Empty if the broker is unknown or already fenced.
pub fn fence_broker(image: &MetadataImage, broker_id: i32) -> Vec<MetadataRecord> {
    let Some(broker) = image.cluster().broker(broker_id).filter(|b| !b.fenced) else {
        return Vec::new();
    };
    // Leadership moves first and the fence last: a fence too large for one
    // Raft entry is committed in several, and if leadership is lost half
    // way the broker is still unfenced, so the next session expiry redoes
    // what is left.
    let mut records = leave_partitions(image, broker_id);
    records.push(record(Record::FenceBroker(FenceBrokerRecord {
        broker_id,
        broker_epoch: broker.epoch,
    })));
    records
}

/// Starts (or continues) a controlled shutdown: `BrokerControlledShutdownRecord`
/// the first time, then the same partition changes as fencing, wherever
/// they are still needed. Where no other ISR member can lead, the
/// partition goes leaderless, as in Kafka, so the shutdown can finish.
/// Empty if the broker is unknown or fenced.
pub fn controlled_shutdown(image: &MetadataImage, broker_id: i32) -> Vec<MetadataRecord> {
    let Some(broker) = image.cluster().broker(broker_id).filter(|b| !b.fenced) else {
        return Vec::new();
    };
    let mut records = Vec::new();
    if !broker.in_controlled_shutdown {
        records.push(record(Record::BrokerControlledShutdown(
            BrokerControlledShutdownRecord {
                broker_id,
                broker_epoch: broker.epoch,
            },
        )));
    }
    records.extend(leave_partitions(image, broker_id));
    records
}

/// The partition changes for `broker_id` leaving: out of ISRs (but never
/// emptying one) and not leading, with the broker counted as unusable.
fn leave_partitions(image: &MetadataImage, broker_id: i32) -> Vec<MetadataRecord> {
    let usable = |b: i32| b != broker_id && is_usable(image, b);
    let mut records = Vec::new();
    for topic in image.topics().topics() {
        for (&partition_id, partition) in topic.partitions() {
            if partition.isr.contains(&broker_id) || partition.leader == broker_id {
                records.extend(
                    PartitionChangeBuilder::new(topic.id(), partition_id, partition, &usable)
                        .remove_from_isr(broker_id)
                        .build(),
                );
            }
        }
    }
    records
}

/// Unfences a broker: `UnfenceBrokerRecord`, then leaders for leaderless
/// partitions whose ISR holds it. Empty if unknown or not fenced.
pub fn unfence_broker(image: &MetadataImage, broker_id: i32) -> Vec<MetadataRecord> {
    let Some(broker) = image.cluster().broker(broker_id).filter(|b| b.fenced) else {
        return Vec::new();
    };
    let mut records = vec![record(Record::UnfenceBroker(UnfenceBrokerRecord {
        broker_id,
        broker_epoch: broker.epoch,
    }))];
    let shutting_down = broker.in_controlled_shutdown;
    let usable = |b: i32| {
        if b == broker_id {
            !shutting_down
        } else {
            is_usable(image, b)
        }
    };
    for topic in image.topics().topics() {
        for (&partition_id, partition) in topic.partitions() {
            if !partition.has_leader() && partition.isr.contains(&broker_id) {
                records.extend(
                    PartitionChangeBuilder::new(topic.id(), partition_id, partition, &usable)
                        .build(),
                );
            }
        }
    }
    records
}

/// How many partitions `broker_id` leads.
pub fn leader_count(image: &MetadataImage, broker_id: i32) -> usize {
    image
        .topics()
        .topics()
        .flat_map(|t| t.partitions().values())
        .filter(|p| p.leader == broker_id)
        .count()
}

/// The values that occur more than once.
pub(crate) fn duplicated<'a, T: Eq + std::hash::Hash + ?Sized + 'a>(
    items: impl Iterator<Item = &'a T>,
) -> HashSet<&'a T> {
    let mut counts: HashMap<&T, usize> = HashMap::new();
    for item in items {
        *counts.entry(item).or_default() += 1;
    }
    counts
        .into_iter()
        .filter(|(_, c)| *c > 1)
        .map(|(t, _)| t)
        .collect()
}

/// Where placement starts for a topic: FNV-1a of its name, so topics
/// spread their leaders differently and adding partitions continues the
/// same rotation.
fn start_offset(name: &str) -> usize {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    usize::try_from(hash % u64::from(u32::MAX)).unwrap_or(0)
}

/// A fresh random topic id: never nil, never one the image has.
fn new_topic_id(image: &MetadataImage) -> Uuid {
    loop {
        let id = Uuid::new_v4();
        if !id.is_nil() && image.topics().topic(id).is_none() {
            return id;
        }
    }
}

pub(crate) fn id_bytes(id: Uuid) -> Bytes {
    Bytes::copy_from_slice(id.as_bytes())
}

#[cfg(test)]
mod tests {
    use kraft_metadata::NO_LEADER;
    use kraft_proto::controller::ReplicaAssignment;

    use super::*;
    use crate::error_codes::{INVALID_CONFIG, INVALID_REPLICATION_FACTOR};
    use crate::partition_change::test_image::{apply, broker, fence, image, partition, topic};

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
            (creatable("dup", 1, 1), INVALID_REQUEST),
            (creatable("dup", 1, 1), INVALID_REQUEST),
            (creatable("bad name", 1, 1), INVALID_TOPIC_EXCEPTION),
            (creatable("taken", 1, 1), TOPIC_ALREADY_EXISTS),
            (creatable("a_b", 1, 1), INVALID_TOPIC_EXCEPTION),
            (creatable("zero", 0, 1), INVALID_PARTITIONS),
            (creatable("rf0", 1, 0), INVALID_REPLICATION_FACTOR),
            (creatable("rf3", 1, 3), INVALID_REPLICATION_FACTOR),
            (with_config("retention.ms", "x"), INVALID_CONFIG),
            (manual("m1", 2, vec![assignment(0, &[1])]), INVALID_REQUEST),
            (
                manual("m2", -1, vec![assignment(0, &[7])]),
                INVALID_REPLICA_ASSIGNMENT,
            ),
            (
                manual("m3", -1, vec![assignment(0, &[1, 1])]),
                INVALID_REPLICA_ASSIGNMENT,
            ),
            (
                manual("m4", -1, vec![assignment(1, &[1])]),
                INVALID_REPLICA_ASSIGNMENT,
            ),
            (
                manual("m5", -1, vec![assignment(0, &[1]), assignment(1, &[1, 2])]),
                INVALID_REPLICA_ASSIGNMENT,
            ),
            (
                manual("m6", -1, vec![assignment(0, &[3])]),
                INVALID_REPLICA_ASSIGNMENT,
            ),
            (creatable("fine", 1, 2), 0),
            (creatable("fine.x", 1, 1), 0),
            (creatable("fine_x", 1, 1), INVALID_TOPIC_EXCEPTION),
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

    fn topic_image() -> MetadataImage {
        let id = Uuid::from_u128(1);
        image(
            [
                brokers(&[1, 2, 3]),
                vec![
                    topic("t", id),
                    partition(id, 0, &[1, 2, 3], &[1, 2, 3], 1),
                    partition(id, 1, &[2, 1], &[1], 1),
                    partition(id, 2, &[3, 2], &[3, 2], 3),
                ],
            ]
            .concat(),
        )
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
                UNKNOWN_TOPIC_OR_PARTITION,
                INVALID_REQUEST,
                INVALID_REQUEST,
                0,
                UNKNOWN_TOPIC_ID,
                INVALID_REQUEST
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
            (2, vec![], INVALID_PARTITIONS),
            (3, vec![], INVALID_PARTITIONS),
            (
                5,
                vec![assignment(3, &[1, 2, 3])],
                INVALID_REPLICA_ASSIGNMENT,
            ),
            (4, vec![assignment(3, &[1, 2])], INVALID_REPLICA_ASSIGNMENT),
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
            UNKNOWN_TOPIC_OR_PARTITION
        );
    }

    #[test]
    fn fencing_moves_leaders_and_keeps_the_last_isr_member() {
        let img = topic_image();
        let records = fence_broker(&img, 1);
        assert_eq!(records.len(), 3, "fence + partitions 0 and 1");
        let after = apply(&img, &records);
        let id = Uuid::from_u128(1);
        let p0 = after.topics().partition(id, 0).unwrap();
        assert_eq!(
            (p0.isr.clone(), p0.leader, p0.leader_epoch),
            (vec![2, 3], 2, 1)
        );
        let p1 = after.topics().partition(id, 1).unwrap();
        assert_eq!((p1.isr.clone(), p1.leader), (vec![1], NO_LEADER));
        assert_eq!(after.topics().partition(id, 2).unwrap().partition_epoch, 0);
        assert!(after.cluster().broker(1).unwrap().fenced);
        assert!(fence_broker(&after, 1).is_empty(), "already fenced");
        assert!(fence_broker(&after, 9).is_empty(), "unknown");

        // Unfencing brings the last ISR member back as leader.
        let records = unfence_broker(&after, 1);
        assert_eq!(records.len(), 2);
        let back = apply(&after, &records);
        assert_eq!(back.topics().partition(id, 1).unwrap().leader, 1);
        assert_eq!(
            back.topics().partition(id, 0).unwrap().leader,
            2,
            "no change where a leader exists"
        );
        assert!(unfence_broker(&back, 1).is_empty());
    }

    #[test]
    fn controlled_shutdown_moves_leadership_once() {
        let img = topic_image();
        assert_eq!(leader_count(&img, 1), 2);
        let records = controlled_shutdown(&img, 1);
        assert!(matches!(
            records[0].record,
            Some(Record::BrokerControlledShutdown(_))
        ));
        let after = apply(&img, &records);
        assert!(after.cluster().broker(1).unwrap().in_controlled_shutdown);
        assert_eq!(leader_count(&after, 1), 0);
        let id = Uuid::from_u128(1);
        assert_eq!(after.topics().partition(id, 0).unwrap().leader, 2);
        assert_eq!(after.topics().partition(id, 1).unwrap().isr, vec![1]);
        assert!(
            controlled_shutdown(&after, 1).is_empty(),
            "nothing left to do"
        );
        // A shutting-down broker takes no new replicas.
        assert_eq!(usable_brokers(&after).len(), 2);
    }
}
