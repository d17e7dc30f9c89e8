//! The transaction coordinator, end to end: `__transaction_state` created on
//! the first FindCoordinator for a transactional id (key type 1), with
//! Kafka's partition count, replication factor, min.insync.replicas and
//! compaction; the coordinator of an id is the leader of its partition
//! (`abs(hashCode(id)) % 50`, as Kafka); clients may not produce to the
//! topic; and no coordinator exists while too few brokers are alive for
//! `transaction.state.log.replication.factor`.

mod common;

use std::time::{Duration, Instant};

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    DescribeConfigsRequest, DescribeConfigsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, MetadataRequest, MetadataResponse,
};
use kafka_protocol::protocol::StrBytes;
use kraft_kafka_client::KafkaClient;
use kraft_testkit::TestCluster;

use common::raw::{batch, name, try_produce};
use common::DEADLINE;

const TRANSACTION_STATE: &str = "__transaction_state";
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const INVALID_REQUEST: i16 = 42;
const TRANSACTION_KEY: i8 = 1;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Kafka's `Utils.abs(transactionalId.hashCode()) % partitions`, computed
/// here independently of the broker.
fn kafka_partition(id: &str, partitions: i32) -> i32 {
    let hash = id.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions
}

/// One FindCoordinator (v4) answer for `keys` at `key_type`:
/// (key, error code, node id) per key.
async fn find(client: &mut KafkaClient, key_type: i8, keys: &[&str]) -> Vec<(String, i16, i32)> {
    let request = FindCoordinatorRequest::default()
        .with_key_type(key_type)
        .with_coordinator_keys(keys.iter().map(|k| s(k)).collect());
    let response: FindCoordinatorResponse = client.send(4, &request).await.expect("find");
    response
        .coordinators
        .iter()
        .map(|c| (c.key.to_string(), c.error_code, c.node_id.0))
        .collect()
}

/// The transaction coordinator of `id`, asking until one is named (the
/// first requests create `__transaction_state` and wait for its leaders).
async fn transaction_coordinator(client: &mut KafkaClient, id: &str) -> i32 {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let answer = find(client, TRANSACTION_KEY, &[id]).await;
        if let [(_, 0, node)] = answer.as_slice() {
            return *node;
        }
        assert!(
            Instant::now() < deadline,
            "no transaction coordinator for {id}: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `__transaction_state` as Metadata (v12) shows it: (internal, partition
/// -> (leader, replica count)).
async fn state_topic(client: &mut KafkaClient) -> (bool, Vec<(i32, i32, usize)>) {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name(TRANSACTION_STATE)))
        ]))
        .with_allow_auto_topic_creation(false);
    let response: MetadataResponse = client.send(12, &request).await.expect("metadata");
    let topic = &response.topics[0];
    assert_eq!(topic.error_code, 0, "{TRANSACTION_STATE} exists");
    let mut partitions: Vec<_> = topic
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.leader_id.0, p.replica_nodes.len()))
        .collect();
    partitions.sort();
    (topic.is_internal, partitions)
}

/// The value of topic config `key` of `__transaction_state`.
async fn state_topic_config(client: &mut KafkaClient, key: &str) -> Option<String> {
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s(TRANSACTION_STATE))
            .with_configuration_keys(Some(vec![s(key)]))]);
    let response: DescribeConfigsResponse =
        client.send(4, &request).await.expect("describe configs");
    let result = &response.results[0];
    assert_eq!(result.error_code, 0, "{:?}", result.error_message);
    result
        .configs
        .iter()
        .find(|c| c.name.as_str() == key)
        .and_then(|c| c.value.as_ref().map(|v| v.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transactional_id_is_coordinated_by_its_state_partitions_leader() {
    let cluster = TestCluster::builder(1)
        .brokers(3)
        .start()
        .await
        .expect("cluster");
    let first = cluster.broker_ids()[0];
    let mut client = KafkaClient::connect(cluster.broker_addr(first))
        .await
        .expect("connect");

    let ids = ["txn-a", "orders-producer-7", "polygenelubricants"];
    let mut coordinators = Vec::new();
    for id in ids {
        coordinators.push(transaction_coordinator(&mut client, id).await);
    }

    // Kafka's defaults: 50 partitions, RF 3, min.insync.replicas 2,
    // compacted, and an internal topic.
    let (internal, partitions) = state_topic(&mut client).await;
    assert!(internal, "{TRANSACTION_STATE} is internal");
    assert_eq!(partitions.len(), 50);
    assert!(partitions.iter().all(|(_, _, replicas)| *replicas == 3));
    assert_eq!(
        state_topic_config(&mut client, "min.insync.replicas").await,
        Some("2".to_string())
    );
    assert_eq!(
        state_topic_config(&mut client, "cleanup.policy").await,
        Some("compact".to_string())
    );

    // Each id's coordinator leads the id's partition.
    for (id, coordinator) in ids.iter().zip(&coordinators) {
        let partition = kafka_partition(id, 50);
        let deadline = Instant::now() + DEADLINE;
        loop {
            let (_, partitions) = state_topic(&mut client).await;
            let leader = partitions[partition as usize].1;
            // A leadership may move between the two answers; ask again.
            let now = transaction_coordinator(&mut client, id).await;
            if leader == now {
                assert!(cluster.broker_ids().contains(coordinator));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{id}: coordinator {now} but {TRANSACTION_STATE}-{partition} led by {leader}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // Clients may not write transaction state themselves.
    let leader = state_topic(&mut client).await.1[0].1;
    let mut to_leader = KafkaClient::connect(cluster.broker_addr(leader))
        .await
        .expect("connect");
    let (code, _) = try_produce(&mut to_leader, TRANSACTION_STATE, 0, batch(&["forged"]))
        .await
        .expect("produce answered");
    assert_eq!(code, INVALID_TOPIC_EXCEPTION);

    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_transaction_coordinator_until_enough_brokers_for_the_state_topic() {
    // One broker, `transaction.state.log.replication.factor` 3 (Kafka's
    // default): no coordinator, and the topic is not created.
    let cluster = TestCluster::builder(1)
        .combined()
        .start()
        .await
        .expect("cluster");
    let mut client = KafkaClient::connect(cluster.broker_addr(1))
        .await
        .expect("connect");
    let answer = find(&mut client, TRANSACTION_KEY, &["txn-a"]).await;
    assert_eq!(
        answer,
        vec![("txn-a".to_string(), COORDINATOR_NOT_AVAILABLE, -1)]
    );
    assert!(cluster
        .image(1)
        .expect("image")
        .topics()
        .topic_by_name(TRANSACTION_STATE)
        .is_none());
    // An unknown key type is a bad request.
    let answer = find(&mut client, 2, &["txn-a"]).await;
    assert_eq!(answer, vec![("txn-a".to_string(), INVALID_REQUEST, -1)]);
    cluster.shutdown().await;

    // With the factor lowered to the brokers there are, the one broker
    // coordinates every id.
    let cluster = TestCluster::builder(1)
        .combined()
        .prop("transaction.state.log.replication.factor", 1)
        .prop("transaction.state.log.min.isr", 1)
        .prop("transaction.state.log.num.partitions", 4)
        .start()
        .await
        .expect("cluster");
    let mut client = KafkaClient::connect(cluster.broker_addr(1))
        .await
        .expect("connect");
    assert_eq!(transaction_coordinator(&mut client, "txn-a").await, 1);
    let (internal, partitions) = state_topic(&mut client).await;
    assert!(internal);
    assert_eq!(partitions.len(), 4);
    assert_eq!(
        state_topic_config(&mut client, "min.insync.replicas").await,
        Some("1".to_string())
    );
    cluster.shutdown().await;
}
