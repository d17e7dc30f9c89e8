//! Topic administration through the Kafka listener, against a real
//! controller: these need broker registration (with heartbeats and
//! unfencing) and topic creation / deletion / partition growth in the
//! controller.

mod common;

use std::time::Duration;

use common::{Harness, BROKER_ID};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kraft_broker::BrokerConfig;
use kraft_kafka_client::KafkaClient;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn name(v: &str) -> TopicName {
    TopicName(s(v))
}

fn creatable(topic: &str, partitions: i32) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(1)
}

async fn metadata(client: &mut KafkaClient, version: i16, topics: &[&str]) -> MetadataResponse {
    let request = MetadataRequest::default()
        .with_topics(Some(
            topics
                .iter()
                .map(|t| MetadataRequestTopic::default().with_name(Some(name(t))))
                .collect(),
        ))
        // The field exists from v4; before, auto-creation is implied.
        .with_allow_auto_topic_creation(version < 4);
    client.send(version, &request).await.expect("Metadata")
}

#[tokio::test]
async fn metadata_and_describe_cluster_list_the_registered_broker() {
    let mut h = Harness::start().await;
    h.register_broker().await;
    let mut client = h.client().await;
    let response = client
        .send(12, &MetadataRequest::default().with_topics(None))
        .await
        .expect("Metadata");
    assert_eq!(response.controller_id, BrokerId(BROKER_ID));
    assert_eq!(response.brokers.len(), 1);
    let broker = &response.brokers[0];
    assert_eq!(broker.node_id, BrokerId(BROKER_ID));
    assert_eq!(broker.port, i32::from(h.kafka_addr.port()));
    assert_eq!(broker.rack.as_deref(), Some("rack-a"));
    let cluster = client
        .send(1, &DescribeClusterRequest::default())
        .await
        .expect("DescribeCluster");
    assert_eq!(cluster.controller_id, BrokerId(BROKER_ID));
    assert_eq!(cluster.brokers.len(), 1);
    assert_eq!(cluster.brokers[0].rack.as_deref(), Some("rack-a"));
    h.stop().await;
}

#[tokio::test]
async fn create_describe_and_delete_topics() {
    let mut h = Harness::start().await;
    h.register_broker().await;
    let mut client = h.client().await;

    let request = CreateTopicsRequest::default()
        .with_topics(vec![
            creatable("orders", 3).with_configs(vec![CreatableTopicConfig::default()
                .with_name(s("retention.ms"))
                .with_value(Some(s("1000")))]),
            creatable("too-big", 1).with_replication_factor(3),
            creatable("bad name", 1),
        ])
        .with_timeout_ms(10_000);
    let response = client.send(7, &request).await.expect("CreateTopics");
    let orders = &response.topics[0];
    assert_eq!((orders.name.0.as_str(), orders.error_code), ("orders", 0));
    assert_eq!(orders.num_partitions, 3);
    assert_eq!(orders.replication_factor, 1);
    assert!(!orders.topic_id.is_nil());
    let retention = orders
        .configs
        .iter()
        .flatten()
        .find(|c| c.name.as_str() == "retention.ms")
        .expect("retention.ms in the result");
    assert_eq!(retention.value.as_deref(), Some("1000"));
    assert_eq!(
        response.topics[1].error_code,
        ResponseError::InvalidReplicationFactor.code()
    );
    assert_eq!(
        response.topics[2].error_code,
        ResponseError::InvalidTopicException.code()
    );

    // Visible at once on this broker.
    let md = metadata(&mut client, 12, &["orders"]).await;
    let topic = &md.topics[0];
    assert_eq!(topic.error_code, 0);
    assert_eq!(topic.topic_id, orders.topic_id);
    assert!(!topic.is_internal);
    assert_eq!(topic.partitions.len(), 3);
    for p in &topic.partitions {
        assert_eq!(p.error_code, 0);
        assert_eq!(p.leader_id, BrokerId(BROKER_ID));
        assert_eq!(p.replica_nodes, vec![BrokerId(BROKER_ID)]);
        assert_eq!(p.isr_nodes, vec![BrokerId(BROKER_ID)]);
        assert!(p.offline_replicas.is_empty());
    }
    // Old clients see it too.
    let md = metadata(&mut client, 1, &["orders"]).await;
    assert_eq!(md.topics[0].partitions.len(), 3);

    // Again: TOPIC_ALREADY_EXISTS; validate_only creates nothing.
    let again = CreateTopicsRequest::default()
        .with_topics(vec![creatable("orders", 3), creatable("dry-run", 2)])
        .with_validate_only(true)
        .with_timeout_ms(10_000);
    let response = client.send(5, &again).await.expect("CreateTopics");
    assert_eq!(
        response.topics[0].error_code,
        ResponseError::TopicAlreadyExists.code()
    );
    assert_eq!(response.topics[1].error_code, 0);
    let md = metadata(&mut client, 12, &["dry-run"]).await;
    assert_eq!(
        md.topics[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );

    // Configs: dynamic over defaults.
    let describe =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("orders"))
            .with_configuration_keys(None)]);
    let response = client.send(4, &describe).await.expect("DescribeConfigs");
    let configs = &response.results[0].configs;
    let get = |key: &str| configs.iter().find(|c| c.name.as_str() == key).expect(key);
    assert_eq!(get("retention.ms").value.as_deref(), Some("1000"));
    assert_eq!(get("retention.ms").config_source, 1);
    assert_eq!(get("cleanup.policy").value.as_deref(), Some("delete"));
    assert_eq!(get("cleanup.policy").config_source, 5);

    // APPEND to a list config, computed from its default.
    let alter = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("orders"))
            .with_configs(vec![
                AlterableConfig::default()
                    .with_name(s("cleanup.policy"))
                    .with_config_operation(2)
                    .with_value(Some(s("compact"))),
                AlterableConfig::default()
                    .with_name(s("retention.ms"))
                    .with_config_operation(1)
                    .with_value(None),
            ]),
    ]);
    let response = client
        .send(1, &alter)
        .await
        .expect("IncrementalAlterConfigs");
    assert_eq!(
        response.responses[0].error_code, 0,
        "{:?}",
        response.responses[0].error_message
    );
    let response = client.send(4, &describe).await.expect("DescribeConfigs");
    let configs = &response.results[0].configs;
    let get = |key: &str| configs.iter().find(|c| c.name.as_str() == key).expect(key);
    assert_eq!(
        get("cleanup.policy").value.as_deref(),
        Some("delete,compact")
    );
    assert_eq!(get("retention.ms").config_source, 5);

    // Grow the topic.
    let grow = CreatePartitionsRequest::default()
        .with_topics(vec![
            CreatePartitionsTopic::default()
                .with_name(name("orders"))
                .with_count(5)
                .with_assignments(None),
            CreatePartitionsTopic::default()
                .with_name(name("nope"))
                .with_count(2)
                .with_assignments(None),
        ])
        .with_timeout_ms(10_000);
    let response = client.send(3, &grow).await.expect("CreatePartitions");
    assert_eq!(
        response.results[0].error_code, 0,
        "{:?}",
        response.results[0].error_message
    );
    assert_eq!(
        response.results[1].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let md = metadata(&mut client, 12, &["orders"]).await;
    assert_eq!(md.topics[0].partitions.len(), 5);

    // Delete by name (v5) and by id (v6).
    let created = CreateTopicsRequest::default()
        .with_topics(vec![creatable("by-id", 1)])
        .with_timeout_ms(10_000);
    let by_id = client.send(7, &created).await.expect("CreateTopics").topics[0].topic_id;
    let delete = DeleteTopicsRequest::default()
        .with_topic_names(vec![name("orders"), name("ghost")])
        .with_timeout_ms(10_000);
    let response = client.send(5, &delete).await.expect("DeleteTopics");
    let codes: Vec<i16> = response.responses.iter().map(|r| r.error_code).collect();
    assert_eq!(
        codes,
        vec![0, ResponseError::UnknownTopicOrPartition.code()]
    );
    let delete = DeleteTopicsRequest::default()
        .with_topics(vec![DeleteTopicState::default()
            .with_name(None)
            .with_topic_id(by_id)])
        .with_timeout_ms(10_000);
    let response = client.send(6, &delete).await.expect("DeleteTopics");
    assert_eq!(response.responses[0].error_code, 0);
    assert_eq!(
        response.responses[0].name.as_ref().map(|n| n.0.as_str()),
        Some("by-id")
    );
    let md = metadata(&mut client, 12, &["orders", "by-id"]).await;
    for t in &md.topics {
        assert_eq!(t.error_code, ResponseError::UnknownTopicOrPartition.code());
    }
    h.stop().await;
}

#[tokio::test]
async fn metadata_auto_creates_when_both_sides_allow_it() {
    let mut h = Harness::start_with(BrokerConfig {
        auto_create_topics_enable: true,
        num_partitions: 2,
        default_replication_factor: 1,
        write_timeout: Duration::from_secs(10),
        ..BrokerConfig::default()
    })
    .await;
    h.register_broker().await;
    let mut client = h.client().await;
    // The client forbids it: nothing is created.
    let md = metadata(&mut client, 12, &["auto"]).await;
    assert_eq!(
        md.topics[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    // The client allows it: created with num.partitions, answered at once.
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name("auto"))),
            MetadataRequestTopic::default().with_name(Some(name("bad name"))),
        ]))
        .with_allow_auto_topic_creation(true);
    let md = client.send(9, &request).await.expect("Metadata");
    assert_eq!(md.topics[0].error_code, 0);
    assert_eq!(md.topics[0].partitions.len(), 2);
    assert_eq!(
        md.topics[1].error_code,
        ResponseError::InvalidTopicException.code()
    );
    h.stop().await;
}
