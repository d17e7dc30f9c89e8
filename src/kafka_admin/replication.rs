//! Replication admin over the Kafka protocol, for `kraftctl`: preferred
//! leader election (ElectLeaders), partition reassignment
//! (AlterPartitionReassignments, ListPartitionReassignments) and following a
//! reassignment until it is done. Like the rest of [`super`], it works
//! against Kraft or Kafka.
//!
//! In: a connected [`KafkaClient`] and the partitions to act on. Out: one
//! plain struct per partition (outcome or progress), for `kraftctl` to print
//! as a table or JSON; a request that fails as a whole is an error starting
//! with Kafka's error name.

use std::time::Duration;

use anyhow::{anyhow, Result};
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, ElectLeadersRequest,
    ListPartitionReassignmentsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use kraft_kafka_client::KafkaClient;
use serde_json::{json, Value};

use super::{check, describe_error, describe_topics, TIMEOUT_MS};

const ELECT_LEADERS_VERSION: i16 = 2;
const ALTER_REASSIGNMENTS_VERSION: i16 = 0;
const LIST_REASSIGNMENTS_VERSION: i16 = 0;

/// ElectLeaders' election types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElectionType {
    Preferred,
    Unclean,
}

/// One partition's answer to an admin request: `None` on success, else
/// Kafka's error name and message (`ELECTION_NOT_NEEDED: ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOutcome {
    pub topic: String,
    pub partition: i32,
    pub error: Option<String>,
    pub error_code: i16,
}

impl PartitionOutcome {
    fn new(topic: &str, partition: i32, code: i16, message: Option<&StrBytes>) -> Self {
        PartitionOutcome {
            topic: topic.to_string(),
            partition,
            error: (code != 0).then(|| describe_error(code, message.map(|m| m.as_str()))),
            error_code: code,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "topic": self.topic,
            "partition": self.partition,
            "error_code": self.error_code,
            "error": self.error,
        })
    }
}

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

/// Elects leaders of `partitions` (topic, partition ids), or of every
/// partition when `None`. One outcome per partition (when every partition
/// is asked for, those that needed no election are left out).
pub async fn elect_leaders(
    client: &mut KafkaClient,
    election: ElectionType,
    partitions: Option<&[(String, Vec<i32>)]>,
) -> Result<Vec<PartitionOutcome>> {
    let topics = partitions.map(|ps| {
        ps.iter()
            .map(|(t, ids)| {
                TopicPartitions::default()
                    .with_topic(name(t))
                    .with_partitions(ids.clone())
            })
            .collect()
    });
    let request = ElectLeadersRequest::default()
        .with_election_type(match election {
            ElectionType::Preferred => 0,
            ElectionType::Unclean => 1,
        })
        .with_topic_partitions(topics)
        .with_timeout_ms(TIMEOUT_MS);
    let response = client.send(ELECT_LEADERS_VERSION, &request).await?;
    check(response.error_code, None)?;
    let mut out: Vec<PartitionOutcome> = response
        .replica_election_results
        .iter()
        .flat_map(|t| {
            t.partition_result.iter().map(|p| {
                PartitionOutcome::new(
                    t.topic.0.as_str(),
                    p.partition_id,
                    p.error_code,
                    p.error_message.as_ref(),
                )
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(out)
}

/// Whether an outcome is a real failure (ELECTION_NOT_NEEDED is not).
pub fn election_failed(outcome: &PartitionOutcome) -> bool {
    outcome.error_code != 0 && outcome.error_code != ResponseError::ElectionNotNeeded.code()
}

/// One partition's new replicas; `None` cancels its reassignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignmentPlan {
    pub topic: String,
    pub partition: i32,
    pub replicas: Option<Vec<i32>>,
}

/// Reads a `kafka-reassign-partitions` plan:
/// `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[4,5]}]}`.
pub fn parse_reassignment_plan(text: &str) -> Result<Vec<ReassignmentPlan>> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| anyhow!("the plan is not JSON: {e}"))?;
    let partitions = value
        .get("partitions")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("the plan has no \"partitions\" array"))?;
    partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let bad = |what: &str| anyhow!("partitions[{i}]: {what}");
            let topic = p
                .get("topic")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("no \"topic\" string"))?;
            let partition = p
                .get("partition")
                .and_then(Value::as_i64)
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| bad("no \"partition\" number"))?;
            let replicas = p
                .get("replicas")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("no \"replicas\" array"))?
                .iter()
                .map(|r| r.as_i64().and_then(|n| i32::try_from(n).ok()))
                .collect::<Option<Vec<i32>>>()
                .ok_or_else(|| bad("\"replicas\" must be broker ids"))?;
            Ok(ReassignmentPlan {
                topic: topic.to_string(),
                partition,
                replicas: Some(replicas),
            })
        })
        .collect()
}

/// Starts (or cancels) reassignments; one outcome per partition.
pub async fn alter_reassignments(
    client: &mut KafkaClient,
    plan: &[ReassignmentPlan],
) -> Result<Vec<PartitionOutcome>> {
    let mut topics: Vec<ReassignableTopic> = Vec::new();
    for p in plan {
        let partition = ReassignablePartition::default()
            .with_partition_index(p.partition)
            .with_replicas(
                p.replicas
                    .as_ref()
                    .map(|r| r.iter().copied().map(BrokerId).collect()),
            );
        match topics.iter_mut().find(|t| t.name.0.as_str() == p.topic) {
            Some(t) => t.partitions.push(partition),
            None => topics.push(
                ReassignableTopic::default()
                    .with_name(name(&p.topic))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    let request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(TIMEOUT_MS)
        .with_topics(topics);
    let response = client.send(ALTER_REASSIGNMENTS_VERSION, &request).await?;
    check(response.error_code, response.error_message.as_ref())?;
    Ok(response
        .responses
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                PartitionOutcome::new(
                    t.name.0.as_str(),
                    p.partition_index,
                    p.error_code,
                    p.error_message.as_ref(),
                )
            })
        })
        .collect())
}

/// A reassignment in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingReassignment {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

impl OngoingReassignment {
    pub fn to_json(&self) -> Value {
        json!({
            "topic": self.topic,
            "partition": self.partition,
            "replicas": self.replicas,
            "adding_replicas": self.adding,
            "removing_replicas": self.removing,
        })
    }
}

/// The reassignments in progress among `partitions` (every one if `None`).
pub async fn list_reassignments(
    client: &mut KafkaClient,
    partitions: Option<&[(String, Vec<i32>)]>,
) -> Result<Vec<OngoingReassignment>> {
    let topics = partitions.map(|ps| {
        ps.iter()
            .map(|(t, ids)| {
                ListPartitionReassignmentsTopics::default()
                    .with_name(name(t))
                    .with_partition_indexes(ids.clone())
            })
            .collect()
    });
    let request = ListPartitionReassignmentsRequest::default()
        .with_timeout_ms(TIMEOUT_MS)
        .with_topics(topics);
    let response = client.send(LIST_REASSIGNMENTS_VERSION, &request).await?;
    check(response.error_code, response.error_message.as_ref())?;
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<i32>>();
    let mut out: Vec<OngoingReassignment> = response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| OngoingReassignment {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                replicas: ids(&p.replicas),
                adding: ids(&p.adding_replicas),
                removing: ids(&p.removing_replicas),
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(out)
}

/// How one partition of a reassignment stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignmentProgress {
    pub topic: String,
    pub partition: i32,
    /// Still moving (listed by ListPartitionReassignments).
    pub in_progress: bool,
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
}

impl ReassignmentProgress {
    pub fn to_json(&self) -> Value {
        json!({
            "topic": self.topic,
            "partition": self.partition,
            "in_progress": self.in_progress,
            "replicas": self.replicas,
            "adding_replicas": self.adding,
            "removing_replicas": self.removing,
            "isr": self.isr,
            "leader": self.leader,
        })
    }
}

/// `(topic, partitions)` groups of a plan, for list requests.
pub fn plan_partitions(plan: &[ReassignmentPlan]) -> Vec<(String, Vec<i32>)> {
    let mut grouped: Vec<(String, Vec<i32>)> = Vec::new();
    for p in plan {
        match grouped.iter_mut().find(|(t, _)| *t == p.topic) {
            Some((_, ids)) => ids.push(p.partition),
            None => grouped.push((p.topic.clone(), vec![p.partition])),
        }
    }
    grouped
}

/// Each partition of `partitions` as the reassignment list and Metadata
/// show it now.
pub async fn reassignment_progress(
    client: &mut KafkaClient,
    partitions: &[(String, Vec<i32>)],
) -> Result<Vec<ReassignmentProgress>> {
    let ongoing = list_reassignments(client, Some(partitions)).await?;
    let mut out = Vec::new();
    for (topic, ids) in partitions {
        let described = describe_topics(client, Some(topic)).await?;
        let Some(t) = described.iter().find(|t| t.name == *topic) else {
            continue;
        };
        for id in ids {
            let Some(p) = t.partitions.iter().find(|p| p.partition == *id) else {
                continue;
            };
            let moving = ongoing
                .iter()
                .find(|o| o.topic == *topic && o.partition == *id);
            out.push(ReassignmentProgress {
                topic: topic.clone(),
                partition: *id,
                in_progress: moving.is_some(),
                replicas: moving.map_or_else(|| p.replicas.clone(), |m| m.replicas.clone()),
                adding: moving.map(|m| m.adding.clone()).unwrap_or_default(),
                removing: moving.map(|m| m.removing.clone()).unwrap_or_default(),
                isr: p.isr.clone(),
                leader: p.leader,
            });
        }
    }
    Ok(out)
}

/// Polls [`reassignment_progress`] every `poll` until no partition of
/// `partitions` is being reassigned any more, calling `on_change` with each
/// new state (the first one included). Returns the final state.
pub async fn wait_for_reassignments(
    client: &mut KafkaClient,
    partitions: &[(String, Vec<i32>)],
    poll: Duration,
    mut on_change: impl FnMut(&[ReassignmentProgress]),
) -> Result<Vec<ReassignmentProgress>> {
    let mut last: Option<Vec<ReassignmentProgress>> = None;
    loop {
        let now = reassignment_progress(client, partitions).await?;
        if last.as_ref() != Some(&now) {
            on_change(&now);
        }
        if now.iter().all(|p| !p.in_progress) {
            return Ok(now);
        }
        last = Some(now);
        tokio::time::sleep(poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kafka_reassignment_plans() {
        let plan = parse_reassignment_plan(
            r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[4,5]},
                {"topic":"t","partition":2,"replicas":[5,6],"log_dirs":["any","any"]},
                {"topic":"u","partition":1,"replicas":[1]}]}"#,
        )
        .unwrap();
        assert_eq!(plan.len(), 3);
        assert_eq!(plan[1].replicas, Some(vec![5, 6]));
        assert_eq!(
            plan_partitions(&plan),
            vec![("t".to_string(), vec![0, 2]), ("u".to_string(), vec![1])]
        );
        for bad in [
            "[]",
            r#"{"partitions":[{"partition":0,"replicas":[1]}]}"#,
            r#"{"partitions":[{"topic":"t","partition":0,"replicas":["x"]}]}"#,
        ] {
            assert!(parse_reassignment_plan(bad).is_err(), "{bad}");
        }
    }
}
