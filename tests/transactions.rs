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

mod common;

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

use common::raw::{batch, name, try_produce};
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

/// A one-node cluster whose internal topics fit on it.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_and_aborted_transactions_reach_consumers_as_in_kafka() {
    let cluster = single_node().await;
    let bootstrap = cluster.bootstrap_servers();
    create_topic(&bootstrap, "orders", 1, 1, &[]).await;
    let producer = transactional_producer(&bootstrap, "orders-tx", &[]);
    init(&producer).await;

    producer.begin_transaction().expect("begin");
    send(&producer, "orders", &["c1-0", "c1-1"]).await;
    commit(&producer).await.expect("first commit");
    producer.begin_transaction().expect("begin");
    send(&producer, "orders", &["a-0", "a-1"]).await;
    abort(&producer).await.expect("abort");
    producer.begin_transaction().expect("begin");
    send(&producer, "orders", &["c2-0"]).await;
    commit(&producer).await.expect("second commit");
    // A plain record after the transactions: read_committed reaches it only
    // past everything before it.
    let plain = common::producer(&bootstrap, &[]);
    send(&plain, "orders", &["end"]).await;

    let mut committed = spawn_consumer(&bootstrap, "orders", "read_committed");
    assert_eq!(
        next(&mut committed, 4).await,
        strings(&["c1-0", "c1-1", "c2-0", "end"])
    );
    let mut uncommitted = spawn_consumer(&bootstrap, "orders", "read_uncommitted");
    assert_eq!(
        next(&mut uncommitted, 6).await,
        strings(&["c1-0", "c1-1", "a-0", "a-1", "c2-0", "end"])
    );
    drop((committed, uncommitted, producer));
    cluster.shutdown().await;
}

/// ListOffsets(latest) at read_committed: the last stable offset.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_holds_read_committed_consumers_until_it_commits() {
    let cluster = single_node().await;
    let bootstrap = cluster.bootstrap_servers();
    create_topic(&bootstrap, "held", 1, 1, &[]).await;
    let plain = common::producer(&bootstrap, &[]);
    send(&plain, "held", &["before"]).await;
    let producer = transactional_producer(&bootstrap, "held-tx", &[]);
    init(&producer).await;
    producer.begin_transaction().expect("begin");
    send(&producer, "held", &["open-0"]).await;
    send(&plain, "held", &["plain-after"]).await;

    // Everything is written (read_uncommitted sees it) ...
    let mut uncommitted = spawn_consumer(&bootstrap, "held", "read_uncommitted");
    assert_eq!(
        next(&mut uncommitted, 3).await,
        strings(&["before", "open-0", "plain-after"])
    );
    // ... but the last stable offset stays at the open transaction's first
    // record, and read_committed consumers stop there.
    let mut client = KafkaClient::connect(cluster.broker_addr(1))
        .await
        .expect("connect");
    assert_eq!(last_stable_offset(&mut client, "held").await, 1);
    let mut committed = spawn_consumer(&bootstrap, "held", "read_committed");
    assert_eq!(next(&mut committed, 1).await, strings(&["before"]));
    assert_eq!(last_stable_offset(&mut client, "held").await, 1);

    // DescribeTransactions shows the open transaction and its partition.
    assert_eq!(
        describe(&mut client, "held-tx").await,
        (
            0,
            "Ongoing".to_string(),
            vec![("held".to_string(), vec![0])]
        )
    );
    assert_eq!(
        describe(&mut client, "nobody").await.0,
        TRANSACTIONAL_ID_NOT_FOUND
    );
    // ListTransactions, filtered by state: the open one; unknown states are
    // named back.
    let (code, unknown, listed) = list(&mut client, &["Ongoing", "Bogus"]).await;
    assert_eq!(code, 0);
    assert_eq!(unknown, vec!["Bogus".to_string()]);
    assert_eq!(listed, vec![("held-tx".to_string(), "Ongoing".to_string())]);
    assert!(list(&mut client, &["CompleteAbort"]).await.2.is_empty());

    commit(&producer).await.expect("commit");
    assert_eq!(
        next(&mut committed, 2).await,
        strings(&["open-0", "plain-after"])
    );
    let deadline = Instant::now() + DEADLINE;
    while describe(&mut client, "held-tx").await != (0, "CompleteCommit".to_string(), vec![]) {
        assert!(Instant::now() < deadline, "the commit never completed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The marker follows the three records.
    assert_eq!(last_stable_offset(&mut client, "held").await, 4);
    drop((committed, uncommitted, producer));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_instance_fences_the_zombie_and_aborts_its_transaction() {
    let cluster = single_node().await;
    let bootstrap = cluster.bootstrap_servers();
    create_topic(&bootstrap, "fenced", 1, 1, &[]).await;
    let zombie = transactional_producer(&bootstrap, "fence-tx", &[]);
    init(&zombie).await;
    zombie.begin_transaction().expect("begin");
    send(&zombie, "fenced", &["zombie-0"]).await;

    // A new instance with the same transactional.id: its init aborts the
    // zombie's open transaction and bumps the epoch.
    let fresh = transactional_producer(&bootstrap, "fence-tx", &[]);
    init(&fresh).await;
    let err = commit(&zombie).await.expect_err("the zombie cannot commit");
    assert!(
        format!("{err:?}").to_lowercase().contains("fenced"),
        "the zombie learns it is fenced: {err:?}"
    );

    fresh.begin_transaction().expect("begin");
    send(&fresh, "fenced", &["fresh-0"]).await;
    commit(&fresh).await.expect("commit");
    let plain = common::producer(&bootstrap, &[]);
    send(&plain, "fenced", &["end"]).await;
    let mut committed = spawn_consumer(&bootstrap, "fenced", "read_committed");
    assert_eq!(next(&mut committed, 2).await, strings(&["fresh-0", "end"]));
    drop((committed, zombie, fresh));
    cluster.shutdown().await;
}

/// InitProducerId with a transactional id at `version`: (code, id, epoch).
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_transactional_requests_get_kafkas_codes() {
    let cluster = single_node().await;
    let bootstrap = cluster.bootstrap_servers();
    create_topic(&bootstrap, "codes", 2, 1, &[]).await;
    let mut client = KafkaClient::connect(cluster.broker_addr(1))
        .await
        .expect("connect");
    assert_eq!(transaction_coordinator(&mut client, "raw-tx").await, 1);
    // The coordinator loads its partition first; then the id gets epoch 0.
    let deadline = Instant::now() + DEADLINE;
    let (pid, epoch) = loop {
        match init_raw(&mut client, 4, "raw-tx", 60_000, (-1, -1)).await {
            (0, pid, epoch) => break (pid, epoch),
            (code, _, _) => {
                assert!(
                    [COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR].contains(&code),
                    "{code}"
                );
                assert!(Instant::now() < deadline, "no producer id for raw-tx");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(epoch, 0);

    // Timeouts above transaction.max.timeout.ms (or below 1).
    for timeout in [900_001, 0] {
        assert_eq!(
            init_raw(&mut client, 4, "raw-tx", timeout, (-1, -1))
                .await
                .0,
            INVALID_TRANSACTION_TIMEOUT
        );
    }
    // An empty transactional id.
    assert_eq!(
        init_raw(&mut client, 4, "", 60_000, (-1, -1)).await.0,
        INVALID_REQUEST
    );
    // Nothing to end: no transaction is open.
    assert_eq!(
        end_raw(&mut client, 3, "raw-tx", (pid, epoch), true).await,
        INVALID_TXN_STATE
    );
    // Another producer id, or an unknown transactional id.
    assert_eq!(
        add_raw(&mut client, 3, "raw-tx", (pid + 1, epoch), "codes", vec![0]).await,
        vec![INVALID_PRODUCER_ID_MAPPING]
    );
    assert_eq!(
        end_raw(&mut client, 3, "never-initialised", (pid, epoch), true).await,
        INVALID_PRODUCER_ID_MAPPING
    );
    // A partition that does not exist: nothing is added.
    assert_eq!(
        add_raw(&mut client, 3, "raw-tx", (pid, epoch), "codes", vec![0, 9]).await,
        vec![OPERATION_NOT_ATTEMPTED, UNKNOWN_TOPIC_OR_PARTITION]
    );
    assert_eq!(
        end_raw(&mut client, 3, "raw-tx", (pid, epoch), false).await,
        INVALID_TXN_STATE
    );

    // Open a transaction, then initialise the id again as a new instance
    // does: the transaction is aborted and the epoch bumped past it.
    assert_eq!(
        add_raw(&mut client, 3, "raw-tx", (pid, epoch), "codes", vec![0, 1]).await,
        vec![0, 0]
    );
    let (code, same_pid, bumped) = init_raw(&mut client, 4, "raw-tx", 60_000, (-1, -1)).await;
    assert_eq!((code, same_pid), (0, pid));
    assert!(bumped > epoch, "epoch {bumped} after {epoch}");
    // The old epoch is fenced: PRODUCER_FENCED, or INVALID_PRODUCER_EPOCH
    // for clients older than KIP-588.
    assert_eq!(
        add_raw(&mut client, 3, "raw-tx", (pid, epoch), "codes", vec![0]).await,
        vec![PRODUCER_FENCED]
    );
    assert_eq!(
        add_raw(&mut client, 1, "raw-tx", (pid, epoch), "codes", vec![0]).await,
        vec![INVALID_PRODUCER_EPOCH]
    );
    assert_eq!(
        end_raw(&mut client, 3, "raw-tx", (pid, epoch), true).await,
        PRODUCER_FENCED
    );
    assert_eq!(
        end_raw(&mut client, 1, "raw-tx", (pid, epoch), true).await,
        INVALID_PRODUCER_EPOCH
    );
    assert_eq!(
        init_raw(&mut client, 4, "raw-tx", 60_000, (pid, epoch))
            .await
            .0,
        PRODUCER_FENCED
    );
    assert_eq!(
        init_raw(&mut client, 3, "raw-tx", 60_000, (pid, epoch))
            .await
            .0,
        INVALID_PRODUCER_EPOCH
    );
    // The current epoch commits an empty-handed transaction; a retried
    // EndTxn of it succeeds again, an abort of it is INVALID_TXN_STATE.
    assert_eq!(
        add_raw(&mut client, 3, "raw-tx", (pid, bumped), "codes", vec![1]).await,
        vec![0]
    );
    assert_eq!(
        end_raw(&mut client, 3, "raw-tx", (pid, bumped), true).await,
        0
    );
    let deadline = Instant::now() + DEADLINE;
    loop {
        // CONCURRENT_TRANSACTIONS until the markers are written.
        match end_raw(&mut client, 3, "raw-tx", (pid, bumped), true).await {
            0 => break,
            code => assert_eq!(code, CONCURRENT_TRANSACTIONS),
        }
        assert!(Instant::now() < deadline, "the commit never completed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        end_raw(&mut client, 3, "raw-tx", (pid, bumped), false).await,
        INVALID_TXN_STATE
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_aborts_a_transaction_past_its_timeout() {
    let cluster = TestCluster::builder(1)
        .combined()
        .prop("transaction.state.log.replication.factor", 1)
        .prop("transaction.state.log.min.isr", 1)
        .prop("transaction.state.log.num.partitions", 4)
        .prop(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            100,
        )
        .start()
        .await
        .expect("cluster");
    let bootstrap = cluster.bootstrap_servers();
    create_topic(&bootstrap, "expiring", 1, 1, &[]).await;
    // A 1 s timeout: on a loaded machine the coordinator may abort before
    // the record is written (the write is then refused, the epoch being
    // bumped); start again with another id until the record is in.
    let mut attempt = 0;
    let producer = loop {
        attempt += 1;
        let producer = transactional_producer(
            &bootstrap,
            &format!("expiring-tx-{attempt}"),
            &[
                ("transaction.timeout.ms", "1000"),
                ("message.timeout.ms", "1000"),
            ],
        );
        init(&producer).await;
        producer.begin_transaction().expect("begin");
        let record = FutureRecord::<(), str>::to("expiring")
            .payload("expired-0")
            .partition(0);
        match producer.send(record, Timeout::After(TXN_CALL)).await {
            Ok(_) => break producer,
            Err((e, _)) => {
                assert!(attempt < 5, "the record never got in: {e}");
                eprintln!("attempt {attempt}: {e}");
            }
        }
    };
    let plain = common::producer(&bootstrap, &[]);
    send(&plain, "expiring", &["end"]).await;

    // read_committed consumers get past the open transaction only once the
    // coordinator has aborted it: its record never reaches them.
    let mut committed = spawn_consumer(&bootstrap, "expiring", "read_committed");
    assert_eq!(next(&mut committed, 1).await, strings(&["end"]));
    let mut uncommitted = spawn_consumer(&bootstrap, "expiring", "read_uncommitted");
    assert_eq!(
        next(&mut uncommitted, 2).await,
        strings(&["expired-0", "end"])
    );
    // The coordinator bumped the epoch: the producer cannot commit.
    assert!(commit(&producer).await.is_err());
    drop((committed, uncommitted, producer));
    cluster.shutdown().await;
}

/// Values at read_committed from partitions `0..partitions` of `topic`, until
/// `count` have arrived: (partition, value), sorted.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_completes_after_its_coordinator_is_killed() {
    let mut cluster = TestCluster::builder(1)
        .brokers(3)
        .prop("replica.lag.time.max.ms", 2000)
        .prop("broker.session.timeout.ms", 3000)
        .prop("transaction.state.log.num.partitions", 4)
        .start()
        .await
        .expect("cluster");
    let bootstrap = cluster.bootstrap_servers();
    // RF 3: every broker holds every partition, so any may take over.
    create_topic(&bootstrap, "failover", 3, 3, &[]).await;
    let first = cluster.broker_ids()[0];
    let mut client = KafkaClient::connect(cluster.broker_addr(first))
        .await
        .expect("connect");
    let coordinator = transaction_coordinator(&mut client, "failover-tx").await;

    let producer = transactional_producer(&bootstrap, "failover-tx", &[]);
    init(&producer).await;
    producer.begin_transaction().expect("begin");
    for p in 0..3 {
        let record = FutureRecord::<(), str>::to("failover")
            .payload("committed")
            .partition(p);
        producer
            .send(record, Timeout::After(TXN_CALL))
            .await
            .expect("delivered");
    }
    // EndTxn is answered once PrepareCommit is stored on the ISR; the
    // markers follow. The coordinator dies now, at some point of those.
    commit(&producer).await.expect("commit");
    cluster.kill(coordinator).await;
    drop(producer);

    // The new coordinator loads the id's partition and finishes the
    // commit: every record becomes visible at read_committed.
    let bootstrap = cluster.bootstrap_servers();
    assert_eq!(
        read_committed(&bootstrap, "failover", 3, 3).await,
        (0..3)
            .map(|p| (p, "committed".to_string()))
            .collect::<Vec<_>>()
    );
    // The id's state survived: a new instance is fenced in, and commits.
    let producer = transactional_producer(&bootstrap, "failover-tx", &[]);
    init(&producer).await;
    producer.begin_transaction().expect("begin");
    send(&producer, "failover", &["after"]).await;
    commit(&producer).await.expect("commit after failover");
    let mut values = read_committed(&bootstrap, "failover", 3, 4).await;
    values.retain(|(p, _)| *p == 0);
    assert_eq!(
        values,
        vec![(0, "after".to_string()), (0, "committed".to_string())]
    );
    drop(producer);
    cluster.shutdown().await;
}
