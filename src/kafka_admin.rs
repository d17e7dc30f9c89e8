//! Admin operations over the Kafka protocol, for `kraftctl`: create, list,
//! describe and delete topics, and describe the cluster ([`replication`]:
//! leader elections and partition reassignments; [`groups`]: consumer
//! groups; [`transactions`]: transactional ids and partitions' producers).
//! They speak to any
//! Kafka-compatible broker (Kraft or Kafka) through one connection.
//!
//! In: a bootstrap address and the operation's arguments. Out: plain structs
//! for `kraftctl` to print as tables or JSON, or an error that starts with
//! Kafka's error name (`TOPIC_ALREADY_EXISTS: ...`).

use anyhow::{anyhow, Context, Result};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    CreateTopicsRequest, DeleteTopicsRequest, DescribeClusterRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use kraft_kafka_client::KafkaClient;
use serde_json::{json, Value};

pub mod groups;
pub mod replication;
pub mod transactions;

const METADATA_VERSION: i16 = 12;
const CREATE_TOPICS_VERSION: i16 = 7;
const DELETE_TOPICS_VERSION: i16 = 6;
const DESCRIBE_CLUSTER_VERSION: i16 = 2;
const TIMEOUT_MS: i32 = 30_000;

/// Kafka's name for an error code (`TOPIC_ALREADY_EXISTS`), and its
/// description when the broker sent no message of its own.
pub fn describe_error(code: i16, message: Option<&str>) -> String {
    let Some(error) = ResponseError::try_from_code(code) else {
        return "NONE".to_string();
    };
    let name = kraft_rpc::error_name(i32::from(code));
    match message.filter(|m| !m.is_empty()) {
        Some(message) => format!("{name}: {message}"),
        None => format!("{name}: {error}"),
    }
}

fn check(code: i16, message: Option<&StrBytes>) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(anyhow!(describe_error(code, message.map(|m| m.as_str()))))
    }
}

pub async fn connect(bootstrap: &str) -> Result<KafkaClient> {
    KafkaClient::connect(bootstrap)
        .await
        .with_context(|| format!("cannot reach the broker at {bootstrap}"))
        .map(|c| c.with_client_id("kraftctl"))
}

/// Creates a topic; returns its id.
pub async fn create_topic(
    client: &mut KafkaClient,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(String, String)],
) -> Result<String> {
    let topic = CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(name.to_string())))
        .with_num_partitions(partitions)
        .with_replication_factor(replication_factor)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(k.clone()))
                        .with_value(Some(StrBytes::from_string(v.clone())))
                })
                .collect(),
        );
    let request = CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(TIMEOUT_MS);
    let response = client.send(CREATE_TOPICS_VERSION, &request).await?;
    let result = response
        .topics
        .first()
        .ok_or_else(|| anyhow!("the broker answered CreateTopics with no topic"))?;
    check(result.error_code, result.error_message.as_ref())?;
    Ok(result.topic_id.to_string())
}

pub async fn delete_topic(client: &mut KafkaClient, name: &str) -> Result<()> {
    let request = DeleteTopicsRequest::default()
        .with_topics(vec![DeleteTopicState::default()
            .with_name(Some(TopicName(StrBytes::from_string(name.to_string()))))])
        .with_timeout_ms(TIMEOUT_MS);
    let response = client.send(DELETE_TOPICS_VERSION, &request).await?;
    let result = response
        .responses
        .first()
        .ok_or_else(|| anyhow!("the broker answered DeleteTopics with no topic"))?;
    check(result.error_code, result.error_message.as_ref())
}

/// One partition as `topics describe` shows it.
#[derive(Debug, Clone)]
pub struct PartitionDescription {
    pub partition: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

#[derive(Debug, Clone)]
pub struct TopicDescription {
    pub name: String,
    pub topic_id: String,
    pub internal: bool,
    pub partitions: Vec<PartitionDescription>,
}

/// Every topic (`None`) or one.
pub async fn describe_topics(
    client: &mut KafkaClient,
    name: Option<&str>,
) -> Result<Vec<TopicDescription>> {
    let topics = name.map(|n| {
        vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(n.to_string()))))]
    });
    let request = MetadataRequest::default()
        .with_topics(topics)
        .with_allow_auto_topic_creation(false);
    let response = client.send(METADATA_VERSION, &request).await?;
    let mut out = Vec::new();
    for topic in response.topics {
        let topic_name = topic
            .name
            .as_ref()
            .map(|n| n.0.to_string())
            .unwrap_or_default();
        check(topic.error_code, None).with_context(|| format!("topic '{topic_name}'"))?;
        let mut partitions: Vec<PartitionDescription> = topic
            .partitions
            .iter()
            .map(|p| PartitionDescription {
                partition: p.partition_index,
                leader: p.leader_id.0,
                leader_epoch: p.leader_epoch,
                replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                isr: p.isr_nodes.iter().map(|b| b.0).collect(),
            })
            .collect();
        partitions.sort_by_key(|p| p.partition);
        out.push(TopicDescription {
            name: topic_name,
            topic_id: topic.topic_id.to_string(),
            internal: topic.is_internal,
            partitions,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[derive(Debug, Clone)]
pub struct BrokerDescription {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    pub fenced: bool,
}

#[derive(Debug, Clone)]
pub struct ClusterDescription {
    pub cluster_id: String,
    pub controller_id: i32,
    pub brokers: Vec<BrokerDescription>,
}

/// Cluster id, controller, and every registered broker, fenced ones too.
pub async fn describe_cluster(client: &mut KafkaClient) -> Result<ClusterDescription> {
    let request = DescribeClusterRequest::default().with_include_fenced_brokers(true);
    let response = client.send(DESCRIBE_CLUSTER_VERSION, &request).await?;
    check(response.error_code, response.error_message.as_ref())?;
    let mut brokers: Vec<BrokerDescription> = response
        .brokers
        .iter()
        .map(|b| BrokerDescription {
            id: b.broker_id.0,
            host: b.host.to_string(),
            port: b.port,
            rack: b.rack.as_ref().map(|r| r.to_string()),
            fenced: b.is_fenced,
        })
        .collect();
    brokers.sort_by_key(|b| b.id);
    Ok(ClusterDescription {
        cluster_id: response.cluster_id.to_string(),
        controller_id: response.controller_id.0,
        brokers,
    })
}

pub fn topic_json(t: &TopicDescription) -> Value {
    json!({
        "name": t.name,
        "topic_id": t.topic_id,
        "internal": t.internal,
        "partitions": t.partitions.iter().map(|p| json!({
            "partition": p.partition,
            "leader": p.leader,
            "leader_epoch": p.leader_epoch,
            "replicas": p.replicas,
            "isr": p.isr,
        })).collect::<Vec<_>>(),
    })
}

pub fn cluster_json(c: &ClusterDescription) -> Value {
    json!({
        "cluster_id": c.cluster_id,
        "controller_id": c.controller_id,
        "brokers": c.brokers.iter().map(|b| json!({
            "id": b.id,
            "host": b.host,
            "port": b.port,
            "rack": b.rack,
            "fenced": b.fenced,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(
            describe_error(36, Some("Topic 'a' already exists.")),
            "TOPIC_ALREADY_EXISTS: Topic 'a' already exists."
        );
        assert!(describe_error(3, None).starts_with("UNKNOWN_TOPIC_OR_PARTITION: "));
    }
}
