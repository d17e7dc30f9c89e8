//! The transaction coordinator, end to end: `__transaction_state` created on
//! the first FindCoordinator for a transactional id (key type 1), with
//! Kafka's partition count, replication factor, min.insync.replicas and
//! compaction; the coordinator of an id is the leader of its partition
//! (`abs(hashCode(id)) % 50`, as Kafka); clients may not produce to the
//! topic; and no coordinator exists while too few brokers are alive for
//! `transaction.state.log.replication.factor`. Then librdkafka's
//! transactional producer against the coordinator: commit, abort and
//! commit again as read_committed and read_uncommitted consumers see them,
//! an open transaction holding read_committed consumers at the last stable
//! offset, a zombie producer fenced by a new instance of its
//! transactional id, Kafka's error codes for bad transactional requests,
//! a transaction aborted by the coordinator past its timeout, and a commit
//! completed by a new coordinator after the old one is killed (RF 3).
//! Offsets committed inside transactions ([`offsets`]), and partition
//! leaders verifying a transaction's writes with its coordinator
//! ([`verification`], KIP-890). DescribeProducers shows the producers a
//! partition's log knows, and `kraftctl transactions` / `kraftctl
//! producers` print them.

#[path = "../common/mod.rs"]
mod common;

mod clients;
mod coordinator;
mod kraftctl;
mod offsets;
mod producers;
mod verification;

use std::time::{Duration, Instant};

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, BrokerId, DescribeConfigsRequest,
    DescribeConfigsResponse, DescribeTransactionsRequest, DescribeTransactionsResponse,
    EndTxnRequest, EndTxnResponse, FindCoordinatorRequest, FindCoordinatorResponse,
    InitProducerIdRequest, InitProducerIdResponse, ListOffsetsRequest, ListOffsetsResponse,
    ListTransactionsRequest, ListTransactionsResponse, MetadataRequest, MetadataResponse,
    ProducerId, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use kraft_kafka_client::KafkaClient;
use kraft_testkit::TestCluster;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaResult;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{Message, Offset, TopicPartitionList};

use common::raw::{batch, name, produce_in_transaction, transactional_batch, try_produce};
use common::txn::{next, spawn_consumer, strings, transactional_producer};
use common::{create_topic, produce_all, Outgoing, DEADLINE};

const TRANSACTION_STATE: &str = "__transaction_state";
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const INVALID_REQUEST: i16 = 42;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
const CONCURRENT_TRANSACTIONS: i16 = 51;
const OPERATION_NOT_ATTEMPTED: i16 = 55;
const PRODUCER_FENCED: i16 = 90;
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
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

async fn single_node() -> TestCluster {
    TestCluster::builder(1)
        .combined()
        .prop("transaction.state.log.replication.factor", 1)
        .prop("transaction.state.log.min.isr", 1)
        .prop("transaction.state.log.num.partitions", 4)
        .prop("offsets.topic.replication.factor", 1)
        .prop("offsets.topic.num.partitions", 4)
        .start()
        .await
        .expect("cluster")
}

/// Runs one of librdkafka's blocking transaction calls off the runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking call")
}

/// Sends `values` to `topic`-0 and waits for each acknowledgement.
async fn send(producer: &FutureProducer, topic: &str, values: &[&str]) {
    let messages: Vec<Outgoing> = values
        .iter()
        .map(|v| Outgoing {
            payload: v.as_bytes().to_vec(),
            partition: Some(0),
            ..Default::default()
        })
        .collect();
    produce_all(producer, topic, &messages).await;
}

async fn init(producer: &FutureProducer) {
    let p = producer.clone();
    blocking(move || p.init_transactions(TXN_CALL))
        .await
        .expect("init_transactions");
}

async fn commit(producer: &FutureProducer) -> KafkaResult<()> {
    let p = producer.clone();
    blocking(move || p.commit_transaction(TXN_CALL)).await
}

async fn abort(producer: &FutureProducer) -> KafkaResult<()> {
    let p = producer.clone();
    blocking(move || p.abort_transaction(TXN_CALL)).await
}

/// How long one of librdkafka's transaction calls may take.
const TXN_CALL: Duration = Duration::from_secs(60);

async fn last_stable_offset(client: &mut KafkaClient, topic: &str) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(1)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)])]);
    let response: ListOffsetsResponse = client.send(5, &request).await.expect("ListOffsets");
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

/// ListTransactions (v1) at `states`: (code, unknown states, (id, state)
/// sorted).
async fn list(
    client: &mut KafkaClient,
    states: &[&str],
) -> (i16, Vec<String>, Vec<(String, String)>) {
    let request = ListTransactionsRequest::default()
        .with_state_filters(states.iter().map(|v| s(v)).collect());
    let response: ListTransactionsResponse =
        client.send(1, &request).await.expect("ListTransactions");
    let mut listed: Vec<(String, String)> = response
        .transaction_states
        .iter()
        .map(|t| {
            (
                t.transactional_id.to_string(),
                t.transaction_state.to_string(),
            )
        })
        .collect();
    listed.sort();
    let unknown = response
        .unknown_state_filters
        .iter()
        .map(|v| v.to_string())
        .collect();
    (response.error_code, unknown, listed)
}

/// DescribeTransactions (v0) of one id: (code, state, partitions by topic).
async fn describe(client: &mut KafkaClient, id: &str) -> (i16, String, Vec<(String, Vec<i32>)>) {
    let request =
        DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(s(id))]);
    let response: DescribeTransactionsResponse = client
        .send(0, &request)
        .await
        .expect("DescribeTransactions");
    let state = &response.transaction_states[0];
    assert_eq!(state.transactional_id.as_str(), id);
    let mut topics: Vec<(String, Vec<i32>)> = state
        .topics
        .iter()
        .map(|t| (t.topic.to_string(), t.partitions.clone()))
        .collect();
    topics.sort();
    (
        state.error_code,
        state.transaction_state.to_string(),
        topics,
    )
}

async fn init_raw(
    client: &mut KafkaClient,
    version: i16,
    id: &str,
    timeout_ms: i32,
    current: (i64, i16),
) -> (i16, i64, i16) {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(s(id))))
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id(ProducerId(current.0))
        .with_producer_epoch(current.1);
    let response: InitProducerIdResponse = client
        .send(version, &request)
        .await
        .expect("InitProducerId");
    (
        response.error_code,
        response.producer_id.0,
        response.producer_epoch,
    )
}

async fn end_raw(
    client: &mut KafkaClient,
    version: i16,
    id: &str,
    producer: (i64, i16),
    commit: bool,
) -> i16 {
    let request = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(s(id)))
        .with_producer_id(ProducerId(producer.0))
        .with_producer_epoch(producer.1)
        .with_committed(commit);
    let response: EndTxnResponse = client.send(version, &request).await.expect("EndTxn");
    response.error_code
}

async fn add_raw(
    client: &mut KafkaClient,
    version: i16,
    id: &str,
    producer: (i64, i16),
    topic: &str,
    partitions: Vec<i32>,
) -> Vec<i16> {
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(s(id)))
        .with_v3_and_below_producer_id(ProducerId(producer.0))
        .with_v3_and_below_producer_epoch(producer.1)
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(name(topic))
            .with_partitions(partitions)]);
    let response: AddPartitionsToTxnResponse = client
        .send(version, &request)
        .await
        .expect("AddPartitionsToTxn");
    response.results_by_topic_v3_and_below[0]
        .results_by_partition
        .iter()
        .map(|p| p.partition_error_code)
        .collect()
}

async fn read_committed(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    count: usize,
) -> Vec<(i32, String)> {
    let bootstrap = bootstrap.to_string();
    let topic = topic.to_string();
    let messages = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = common::client_config(&bootstrap)
            .set("group.id", "assigned-only")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "100")
            .set("isolation.level", "read_committed")
            .create()
            .expect("consumer");
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions {
            assignment
                .add_partition_offset(&topic, p, Offset::Beginning)
                .expect("assignment");
        }
        consumer.assign(&assignment).expect("assign");
        common::poll_messages(&consumer, count)
    })
    .await
    .expect("consumer thread");
    let mut values: Vec<(i32, String)> = messages
        .iter()
        .map(|m| {
            (
                m.partition(),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            )
        })
        .collect();
    values.sort();
    values
}
