//! Consumer-group admin over the Kafka protocol, for `kraftctl groups`:
//! list every broker's groups, describe one (state, protocol, members with
//! their decoded assignments, committed offsets with the lag behind each
//! partition's log end), delete one or some of its committed offsets. Like the rest of [`super`], it works
//! against Kraft or Kafka.
//!
//! In: a connected [`KafkaClient`] on any broker and a group id; the
//! group's coordinator and the partition leaders are found and reached
//! through the metadata. Out: plain structs for `kraftctl` to print as a
//! table or JSON, or an error starting with Kafka's error name.

use std::collections::BTreeMap;

use anyhow::{anyhow, Context, Result};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::{
    BrokerId, DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId,
    ListGroupsRequest, ListOffsetsRequest, MetadataRequest, OffsetDeleteRequest,
    OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kraft_kafka_client::KafkaClient;
use serde_json::{json, Value};

use super::{check, connect, describe_topics};

const FIND_COORDINATOR_VERSION: i16 = 3;
const LIST_GROUPS_VERSION: i16 = 4;
const DESCRIBE_GROUPS_VERSION: i16 = 5;
const OFFSET_FETCH_VERSION: i16 = 7;
const DELETE_GROUPS_VERSION: i16 = 2;
const OFFSET_DELETE_VERSION: i16 = 0;
const LIST_OFFSETS_VERSION: i16 = 5;
const METADATA_VERSION: i16 = 12;
/// ListOffsets' "latest" timestamp.
const LATEST: i64 = -1;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A group as `groups list` shows it.
#[derive(Debug, Clone)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: String,
    pub coordinator: i32,
}

/// A member as `groups describe` shows it.
#[derive(Debug, Clone)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Decoded from the consumer protocol: topic -> partitions.
    pub assignment: BTreeMap<String, Vec<i32>>,
}

/// One partition's committed offset and lag.
#[derive(Debug, Clone)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub committed: Option<i64>,
    pub log_end: Option<i64>,
    pub lag: Option<i64>,
    /// The member the partition is assigned to.
    pub member_id: Option<String>,
}

/// A group as `groups describe` shows it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub group_id: String,
    pub coordinator: i32,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberDescription>,
    pub partitions: Vec<PartitionLag>,
}

/// Every broker's Kafka address, by id.
pub(super) async fn brokers(client: &mut KafkaClient) -> Result<BTreeMap<i32, String>> {
    let request = MetadataRequest::default().with_topics(Some(Vec::new()));
    let response = client.send(METADATA_VERSION, &request).await?;
    Ok(response
        .brokers
        .iter()
        .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
        .collect())
}

/// The coordinator of `group`: its id and a connection to it.
async fn coordinator(client: &mut KafkaClient, group: &str) -> Result<(i32, KafkaClient)> {
    let request = FindCoordinatorRequest::default()
        .with_key(s(group))
        .with_key_type(0);
    let response = client.send(FIND_COORDINATOR_VERSION, &request).await?;
    check(response.error_code, response.error_message.as_ref())
        .with_context(|| format!("finding the coordinator of group '{group}'"))?;
    let addr = format!("{}:{}", response.host.as_str(), response.port);
    Ok((response.node_id.0, connect(&addr).await?))
}

/// Every group of every broker, sorted by id.
pub async fn list_groups(client: &mut KafkaClient) -> Result<Vec<GroupListing>> {
    let mut out = Vec::new();
    for (id, addr) in brokers(client).await? {
        let mut broker = connect(&addr).await?;
        let response = broker
            .send(LIST_GROUPS_VERSION, &ListGroupsRequest::default())
            .await?;
        check(response.error_code, None).with_context(|| format!("broker {id}"))?;
        out.extend(response.groups.iter().map(|g| GroupListing {
            group_id: g.group_id.0.to_string(),
            protocol_type: g.protocol_type.to_string(),
            state: g.group_state.to_string(),
            coordinator: id,
        }));
    }
    out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    Ok(out)
}

/// Deletes an empty group and its committed offsets.
pub async fn delete_group(client: &mut KafkaClient, group: &str) -> Result<()> {
    let (_, mut coordinator) = coordinator(client, group).await?;
    let request = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(group))]);
    let response = coordinator.send(DELETE_GROUPS_VERSION, &request).await?;
    let result = response
        .results
        .first()
        .ok_or_else(|| anyhow!("the coordinator answered DeleteGroups with no group"))?;
    let why = match result.error_code {
        68 => "it has members; stop them first",
        69 => "no such group",
        _ => "",
    };
    check(result.error_code, Some(&s(why))).with_context(|| format!("group '{group}'"))
}

/// One partition's outcome of `delete_offsets`: `None` when deleted, else
/// the error (Kafka's name and description).
#[derive(Debug, Clone)]
pub struct OffsetDeletion {
    pub topic: String,
    pub partition: i32,
    pub error: Option<String>,
}

/// Deletes the committed offsets of `topic` in `group`: of `partition`, or
/// of every partition the topic has.
pub async fn delete_offsets(
    client: &mut KafkaClient,
    group: &str,
    topic: &str,
    partition: Option<i32>,
) -> Result<Vec<OffsetDeletion>> {
    let partitions = match partition {
        Some(p) => vec![p],
        None => {
            let described = describe_topics(client, Some(topic))
                .await
                .with_context(|| format!("topic '{topic}'"))?;
            described
                .iter()
                .filter(|t| t.name == topic)
                .flat_map(|t| t.partitions.iter().map(|p| p.partition))
                .collect()
        }
    };
    let (_, mut coordinator) = coordinator(client, group).await?;
    let request = OffsetDeleteRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(vec![OffsetDeleteRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(
                partitions
                    .iter()
                    .map(|p| OffsetDeleteRequestPartition::default().with_partition_index(*p))
                    .collect(),
            )]);
    let response = coordinator.send(OFFSET_DELETE_VERSION, &request).await?;
    let why = match response.error_code {
        68 => "it has members and does not use the consumer protocol",
        69 => "no such group",
        _ => "",
    };
    check(response.error_code, Some(&s(why))).with_context(|| format!("group '{group}'"))?;
    let mut out = Vec::new();
    for t in &response.topics {
        for p in &t.partitions {
            out.push(OffsetDeletion {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                error: (p.error_code != 0).then(|| super::describe_error(p.error_code, None)),
            });
        }
    }
    out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(out)
}

/// State, members, committed offsets and lag of one group.
pub async fn describe_group(client: &mut KafkaClient, group: &str) -> Result<GroupDescription> {
    let (coordinator_id, mut coordinator) = coordinator(client, group).await?;
    let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]);
    let response = coordinator.send(DESCRIBE_GROUPS_VERSION, &request).await?;
    let described = response
        .groups
        .first()
        .ok_or_else(|| anyhow!("the coordinator answered DescribeGroups with no group"))?;
    check(described.error_code, described.error_message.as_ref())
        .with_context(|| format!("group '{group}'"))?;
    if described.group_state.as_str() == "Dead" && described.members.is_empty() {
        return Err(anyhow!(
            "GROUP_ID_NOT_FOUND: group '{group}' does not exist"
        ));
    }
    let consumer = described.protocol_type.as_str() == "consumer";
    let members: Vec<MemberDescription> = described
        .members
        .iter()
        .map(|m| MemberDescription {
            member_id: m.member_id.to_string(),
            group_instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
            client_id: m.client_id.to_string(),
            client_host: m.client_host.to_string(),
            assignment: if consumer {
                decode_assignment(&m.member_assignment).unwrap_or_default()
            } else {
                BTreeMap::new()
            },
        })
        .collect();

    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(None);
    let fetched = coordinator.send(OFFSET_FETCH_VERSION, &request).await?;
    check(fetched.error_code, None).with_context(|| format!("offsets of group '{group}'"))?;
    let mut partitions: BTreeMap<(String, i32), PartitionLag> = BTreeMap::new();
    for t in &fetched.topics {
        for p in &t.partitions {
            let committed = (p.committed_offset >= 0).then_some(p.committed_offset);
            partitions.insert(
                (t.name.0.to_string(), p.partition_index),
                PartitionLag {
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    committed,
                    log_end: None,
                    lag: None,
                    member_id: None,
                },
            );
        }
    }
    for m in &members {
        for (topic, ids) in &m.assignment {
            for p in ids {
                partitions
                    .entry((topic.clone(), *p))
                    .or_insert_with(|| PartitionLag {
                        topic: topic.clone(),
                        partition: *p,
                        committed: None,
                        log_end: None,
                        lag: None,
                        member_id: None,
                    })
                    .member_id = Some(m.member_id.clone());
            }
        }
    }
    let ends = log_ends(client, partitions.keys().cloned().collect()).await?;
    for (key, lag) in partitions.iter_mut() {
        lag.log_end = ends.get(key).copied();
        if let (Some(end), Some(committed)) = (lag.log_end, lag.committed) {
            lag.lag = Some((end - committed).max(0));
        }
    }
    Ok(GroupDescription {
        group_id: group.to_string(),
        coordinator: coordinator_id,
        state: described.group_state.to_string(),
        protocol_type: described.protocol_type.to_string(),
        protocol: described.protocol_data.to_string(),
        members,
        partitions: partitions.into_values().collect(),
    })
}

/// The latest offset of each partition, asked of its leader.
async fn log_ends(
    client: &mut KafkaClient,
    wanted: Vec<(String, i32)>,
) -> Result<BTreeMap<(String, i32), i64>> {
    let mut topics: Vec<String> = wanted.iter().map(|(t, _)| t.clone()).collect();
    topics.dedup();
    let addrs = brokers(client).await?;
    // leader -> topic -> partitions
    let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
    for topic in &topics {
        let Ok(described) = describe_topics(client, Some(topic)).await else {
            continue; // a deleted topic has no log end
        };
        for t in described {
            for p in t.partitions {
                if wanted.contains(&(t.name.clone(), p.partition)) && p.leader >= 0 {
                    by_leader
                        .entry(p.leader)
                        .or_default()
                        .entry(t.name.clone())
                        .or_default()
                        .push(p.partition);
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    for (leader, topics) in by_leader {
        let Some(addr) = addrs.get(&leader) else {
            continue;
        };
        let mut broker = connect(addr).await?;
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        ListOffsetsTopic::default()
                            .with_name(TopicName(s(&t)))
                            .with_partitions(
                                ps.into_iter()
                                    .map(|p| {
                                        ListOffsetsPartition::default()
                                            .with_partition_index(p)
                                            .with_timestamp(LATEST)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let response = broker.send(LIST_OFFSETS_VERSION, &request).await?;
        for t in &response.topics {
            for p in t.partitions.iter().filter(|p| p.error_code == 0) {
                out.insert((t.name.0.to_string(), p.partition_index), p.offset);
            }
        }
    }
    Ok(out)
}

/// A consumer-protocol assignment (any version 0–3: a version, then topics
/// with partitions, then user data): topic -> partitions. `None` if the
/// bytes are not one. Lengths are checked against the bytes present.
pub fn decode_assignment(bytes: &[u8]) -> Option<BTreeMap<String, Vec<i32>>> {
    let mut r = bytes;
    let mut take = |n: usize| -> Option<&[u8]> {
        if r.len() < n {
            return None;
        }
        let (head, tail) = r.split_at(n);
        r = tail;
        Some(head)
    };
    let version = i16::from_be_bytes(take(2)?.try_into().ok()?);
    if !(0..=3).contains(&version) {
        return None;
    }
    let mut out = BTreeMap::new();
    let topics = i32::from_be_bytes(take(4)?.try_into().ok()?);
    for _ in 0..topics.max(0) {
        let len = i16::from_be_bytes(take(2)?.try_into().ok()?);
        let topic = std::str::from_utf8(take(usize::try_from(len).ok()?)?).ok()?;
        let count = i32::from_be_bytes(take(4)?.try_into().ok()?);
        let mut partitions = Vec::new();
        for _ in 0..count.max(0) {
            partitions.push(i32::from_be_bytes(take(4)?.try_into().ok()?));
        }
        out.insert(topic.to_string(), partitions);
    }
    Some(out)
}

pub fn listing_json(g: &GroupListing) -> Value {
    json!({
        "group_id": g.group_id,
        "protocol_type": g.protocol_type,
        "state": g.state,
        "coordinator": g.coordinator,
    })
}

pub fn description_json(d: &GroupDescription) -> Value {
    json!({
        "group_id": d.group_id,
        "coordinator": d.coordinator,
        "state": d.state,
        "protocol_type": d.protocol_type,
        "protocol": d.protocol,
        "members": d.members.iter().map(|m| json!({
            "member_id": m.member_id,
            "group_instance_id": m.group_instance_id,
            "client_id": m.client_id,
            "client_host": m.client_host,
            "assignment": m.assignment,
        })).collect::<Vec<_>>(),
        "partitions": d.partitions.iter().map(|p| json!({
            "topic": p.topic,
            "partition": p.partition,
            "committed_offset": p.committed,
            "log_end_offset": p.log_end,
            "lag": p.lag,
            "member_id": p.member_id,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::messages::ConsumerProtocolAssignment;
    use kafka_protocol::protocol::Encodable;

    use bytes::Bytes;

    #[test]
    fn assignments_decode_at_every_version() {
        for version in 0..=3i16 {
            let assignment = ConsumerProtocolAssignment::default()
                .with_assigned_partitions(vec![
                    TopicPartition::default()
                        .with_topic(TopicName(s("a")))
                        .with_partitions(vec![0, 2]),
                    TopicPartition::default()
                        .with_topic(TopicName(s("b")))
                        .with_partitions(vec![1]),
                ])
                .with_user_data(Some(Bytes::from_static(b"u")));
            let mut buf = bytes::BytesMut::new();
            buf.extend_from_slice(&version.to_be_bytes());
            assignment.encode(&mut buf, version).expect("encodes");
            let decoded = decode_assignment(&buf.freeze()).expect("decodes");
            assert_eq!(decoded["a"], vec![0, 2], "v{version}");
            assert_eq!(decoded["b"], vec![1], "v{version}");
        }
        assert_eq!(decode_assignment(&[]), None);
        let huge = [0, 0, 0x7f, 0xff, 0xff, 0xff];
        assert_eq!(decode_assignment(&huge), None, "a count beyond the bytes");
    }
}
