//! Helpers for the leader election and reassignment tests: topics with
//! chosen replicas (through librdkafka), the controller's view of a
//! partition and Kafka-protocol admin clients.
//!
//! In: a running [`TestCluster`]. Out: partition states read from the
//! active controller's committed image, and waits on them.

use kraft::kafka_admin;
use kraft_kafka_client::KafkaClient;
use kraft_metadata::PartitionRegistration;
use kraft_testkit::{wait_for, TestCluster};
use rdkafka::admin::{NewTopic, TopicReplication};

/// Creates `topic` with one partition per replica list, first replica
/// preferred.
pub async fn create_assigned(cluster: &TestCluster, topic: &str, assignment: &[&[i32]]) {
    let new = NewTopic::new(
        topic,
        i32::try_from(assignment.len()).unwrap(),
        TopicReplication::Variable(assignment),
    );
    super::create_new_topic(&cluster.bootstrap_servers(), &new).await;
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
