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
//! Broker lifecycle changes (fence, unfence, controlled shutdown) are not
//! here: they are driven by broker sessions, not by topic requests, so they
//! live in [`broker_fencing`](crate::broker_fencing), next to the
//! [`ClusterControl`](crate::cluster_control::ClusterControl) that calls
//! them.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kraft_metadata::topic_name::{collides, has_collision_chars, validate_topic_name};
use kraft_metadata::{record, MetadataImage, TopicImage};
use kraft_proto::controller::{
    CreatableTopic, CreatePartitionsRequest, CreatePartitionsResponse, CreatePartitionsResult,
    CreatePartitionsTopic, CreateTopicResult, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicResult, DeleteTopicsRequest, DeleteTopicsResponse,
};
use kraft_proto::metadata::{
    metadata_record::Record, ConfigRecord, ConfigResourceType, MetadataRecord, PartitionRecord,
    RemoveTopicRecord, TopicRecord,
};
use uuid::Uuid;

use crate::config_control::validate_topic_configs;
use crate::controller_result::ControllerResult;
use crate::error::{code, invalid_topic_name, ControllerError};
use crate::placement::{
    is_usable, place_replicas, usable_brokers, validate_manual_assignment, UsableBroker,
    MAX_NEW_PARTITIONS,
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
    if requested_partitions(request, defaults) > i64::from(MAX_NEW_PARTITIONS) {
        // Kafka's bound: one CreateTopics is one atomic metadata write, so
        // it may not add more than this many partitions in all.
        let results = request
            .topics
            .iter()
            .map(|t| CreateTopicResult {
                name: t.name.clone(),
                topic_id: Bytes::new(),
                error_code: code(ResponseError::PolicyViolation),
                error_message: format!(
                    "Excessively large number of partitions per request: the limit is {MAX_NEW_PARTITIONS}."
                ),
                num_partitions: -1,
                replication_factor: -1,
            })
            .collect();
        return ControllerResult::response_only(CreateTopicsResponse { topics: results });
    }
    let duplicates = duplicated(request.topics.iter().map(|t| t.name.as_str()));
    let usable = usable_brokers(image);
    let mut created: Vec<&str> = Vec::new();
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let outcome = if duplicates.contains(topic.name.as_str()) {
            Err(ControllerError::new(
                code(ResponseError::InvalidRequest),
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
    validate_topic_name(name).map_err(invalid_topic_name)?;
    if image.topics().topic_by_name(name).is_some() {
        return Err(ControllerError::new(
            code(ResponseError::TopicAlreadyExists),
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
                code(ResponseError::InvalidTopicException),
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
                    code(ResponseError::InvalidRequest),
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
                code(ResponseError::InvalidReplicaAssignment),
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
                code(ResponseError::InvalidRequest),
                "Duplicate topic name.".into(),
            )
        } else if let Some(topic) = image.topics().topic_by_name(name) {
            remove(topic)
        } else {
            let msg = format!("Topic '{name}' does not exist.");
            failed(
                name,
                Bytes::new(),
                code(ResponseError::UnknownTopicOrPartition),
                msg,
            )
        });
    }
    for raw in &request.topic_ids {
        let id = Uuid::from_slice(raw).ok();
        results.push(if dup_ids.contains(raw.as_ref()) {
            failed(
                "",
                raw.clone(),
                code(ResponseError::InvalidRequest),
                "Duplicate topic id.".into(),
            )
        } else if let Some(topic) = id.and_then(|id| image.topics().topic(id)) {
            remove(topic)
        } else if let Some(id) = id {
            let msg = format!("Topic id {id} does not exist.");
            failed("", raw.clone(), code(ResponseError::UnknownTopicId), msg)
        } else {
            let msg = format!("A topic id is 16 bytes, not {}.", raw.len());
            failed("", raw.clone(), code(ResponseError::InvalidRequest), msg)
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
                code(ResponseError::InvalidRequest),
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
    if records.len() > usize::try_from(MAX_NEW_PARTITIONS).unwrap_or(usize::MAX) {
        // As for CreateTopics: one atomic write, bounded in all.
        for result in &mut results {
            result.error_code = code(ResponseError::PolicyViolation);
            result.error_message = format!(
                "Excessively large number of partitions per request: the limit is {MAX_NEW_PARTITIONS}."
            );
        }
        records.clear();
    }
    if request.validate_only {
        records.clear();
    }
    ControllerResult::new(records, CreatePartitionsResponse { topics: results })
}

/// The partitions a CreateTopics asks for in all, as Kafka counts them:
/// an assignment's length, else the count (the default for -1).
fn requested_partitions(request: &CreateTopicsRequest, defaults: &TopicDefaults) -> i64 {
    request
        .topics
        .iter()
        .map(|t| {
            if !t.assignments.is_empty() {
                i64::try_from(t.assignments.len()).unwrap_or(i64::MAX)
            } else if t.num_partitions == -1 {
                i64::from(defaults.num_partitions)
            } else {
                i64::from(t.num_partitions.max(0))
            }
        })
        .fold(0i64, i64::saturating_add)
}

fn add_partitions(
    image: &MetadataImage,
    request: &CreatePartitionsTopic,
    usable: &[UsableBroker],
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let name = request.name.as_str();
    let topic = image.topics().topic_by_name(name).ok_or_else(|| {
        ControllerError::new(
            code(ResponseError::UnknownTopicOrPartition),
            format!("Topic '{name}' does not exist."),
        )
    })?;
    let current = i32::try_from(topic.partitions().len()).unwrap_or(i32::MAX);
    let count = request.count;
    if count < current {
        let msg = format!(
            "Topic currently has {current} partitions, which is higher than the requested {count}."
        );
        return Err(ControllerError::new(
            code(ResponseError::InvalidPartitions),
            msg,
        ));
    }
    if count == current {
        let msg = format!("Topic already has {current} partition(s).");
        return Err(ControllerError::new(
            code(ResponseError::InvalidPartitions),
            msg,
        ));
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
                code(ResponseError::InvalidReplicaAssignment),
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
mod tests;
