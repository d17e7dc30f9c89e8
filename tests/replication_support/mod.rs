//! Helpers shared by the leader election and reassignment tests: topics
//! with chosen replicas (through librdkafka), the controller's view of a
//! partition, Kafka-protocol admin clients and `kraftctl` runs.
//!
//! In: a running [`TestCluster`]. Out: partition states read from the
//! active controller's committed image, and waits on them.

// Each test binary uses its own subset.
#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

use kraft::kafka_admin;
use kraft_kafka_client::KafkaClient;
use kraft_metadata::PartitionRegistration;
use kraft_testkit::{wait_for, TestCluster};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use serde_json::Value;

pub const KRAFTCTL: &str = env!("CARGO_BIN_EXE_kraftctl");

pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4");
    config
}

/// Creates `topic` with one partition per replica list, first replica
/// preferred.
pub async fn create_assigned(cluster: &TestCluster, topic: &str, assignment: &[&[i32]]) {
    let admin: AdminClient<DefaultClientContext> = client_config(&cluster.bootstrap_servers())
        .create()
        .expect("admin client");
    let new = NewTopic::new(
        topic,
        i32::try_from(assignment.len()).unwrap(),
        TopicReplication::Variable(assignment),
    );
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin
        .create_topics([&new], &options)
        .await
        .expect("CreateTopics")
    {
        result.expect("topic created");
    }
}

/// Partition `partition` of `topic` in the committed image of the
/// controller `controller`.
pub fn partition_state(
    cluster: &TestCluster,
    controller: i32,
    topic: &str,
    partition: i32,
) -> Option<PartitionRegistration> {
    let image = cluster.image(controller)?;
    image
        .topics()
        .topic_by_name(topic)?
        .partition(partition)
        .cloned()
}

/// Waits until the partition, as controller 1 has committed it, satisfies
/// `ok`; returns it.
pub async fn wait_partition(
    cluster: &TestCluster,
    topic: &str,
    partition: i32,
    what: &str,
    ok: impl Fn(&PartitionRegistration) -> bool,
) -> PartitionRegistration {
    let desc = format!("{topic}-{partition}: {what}");
    wait_for(&desc, || async {
        partition_state(cluster, 1, topic, partition).filter(|p| ok(p))
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}; last state: {:?}",
            partition_state(cluster, 1, topic, partition)
        )
    })
}

/// A Kafka-protocol client of broker `broker`.
pub async fn kafka(cluster: &TestCluster, broker: i32) -> KafkaClient {
    kafka_admin::connect(cluster.broker_addr(broker))
        .await
        .expect("connect to the broker")
}

/// Runs `kraftctl --bootstrap-server <broker> --output json <args>` and
/// returns (success, parsed stdout or the raw text as a JSON string).
pub async fn kraftctl_json(cluster: &TestCluster, broker: i32, args: &[&str]) -> (bool, Value) {
    let mut command = Command::new(KRAFTCTL);
    command
        .args(["--bootstrap-server", cluster.broker_addr(broker)])
        .args(["--output", "json"])
        .args(args);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("kraftctl thread")
        .expect("kraftctl runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let value = serde_json::from_str(&stdout).unwrap_or(Value::String(stdout));
    if !output.status.success() {
        eprintln!("kraftctl: {}", String::from_utf8_lossy(&output.stderr));
    }
    (output.status.success(), value)
}
