//! DescribeProducers (v0): the producers a partition's log knows, as a
//! transactional producer leaves them before and after its commit, and
//! Kafka's error codes for partitions a broker cannot describe.

use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::describe_producers_response::ProducerState;
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse};
use rdkafka::admin::TopicReplication;

use super::*;

const NOT_LEADER_OR_FOLLOWER: i16 = 6;

/// DescribeProducers of `topic` at `partitions`: (partition, error code,
/// producers) per partition, in request order.
async fn describe_producers(
    client: &mut KafkaClient,
    topic: &str,
    partitions: &[i32],
) -> Vec<(i32, i16, Vec<ProducerState>)> {
    let request = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(name(topic))
        .with_partition_indexes(partitions.to_vec())]);
    let response: DescribeProducersResponse =
        client.send(0, &request).await.expect("DescribeProducers");
    assert_eq!(response.topics.len(), 1);
    assert_eq!(response.topics[0].name.as_str(), topic);
    response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code, p.active_producers.clone()))
        .collect()
}

/// The producer id and epoch DescribeTransactions reports for `id`.
async fn producer_of(client: &mut KafkaClient, id: &str) -> (i64, i16) {
    let request =
        DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(s(id))]);
    let response: DescribeTransactionsResponse = client
        .send(0, &request)
        .await
        .expect("DescribeTransactions");
    let state = &response.transaction_states[0];
    assert_eq!(state.error_code, 0);
    (state.producer_id.0, state.producer_epoch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_producer_shows_up_with_its_epoch_sequence_and_open_transaction() {
    let cluster = single_node().await;
    let bootstrap = cluster.bootstrap_servers();
    create_topic(&bootstrap, "described", 1, 1, &[]).await;
    let plain = common::producer(&bootstrap, &[]);
    send(&plain, "described", &["before-0", "before-1"]).await;
    let mut client = KafkaClient::connect(cluster.broker_addr(1))
        .await
        .expect("connect");
    // A plain producer (librdkafka is not idempotent by default) leaves no
    // state.
    assert_eq!(
        describe_producers(&mut client, "described", &[0]).await,
        vec![(0, 0, vec![])]
    );

    let producer = transactional_producer(&bootstrap, "described-tx", &[]);
    init(&producer).await;
    producer.begin_transaction().expect("begin");
    send(&producer, "described", &["t-0", "t-1", "t-2"]).await;
    let (producer_id, epoch) = producer_of(&mut client, "described-tx").await;

    let answer = describe_producers(&mut client, "described", &[0]).await;
    let [(0, 0, producers)] = answer.as_slice() else {
        panic!("one partition without error: {answer:?}");
    };
    let [open] = producers.as_slice() else {
        panic!("one producer: {producers:?}");
    };
    assert_eq!(open.producer_id.0, producer_id);
    assert_eq!(open.producer_epoch, i32::from(epoch));
    // Three records, sequences 0..=2; the transaction starts after the two
    // plain records; no marker was written yet.
    assert_eq!(open.last_sequence, 2);
    assert_eq!(open.current_txn_start_offset, 2);
    assert_eq!(open.coordinator_epoch, -1);
    assert!(open.last_timestamp > 0, "{open:?}");

    commit(&producer).await.expect("commit");
    // The commit marker closes the transaction and records the
    // coordinator's epoch; sequence and epoch stay.
    let deadline = Instant::now() + DEADLINE;
    let committed = loop {
        let answer = describe_producers(&mut client, "described", &[0]).await;
        let state = answer[0].2[0].clone();
        if state.current_txn_start_offset == -1 {
            break state;
        }
        assert!(
            Instant::now() < deadline,
            "the marker never arrived: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(committed.producer_id.0, producer_id);
    assert_eq!(committed.producer_epoch, i32::from(epoch));
    assert_eq!(committed.last_sequence, 2);
    assert!(committed.coordinator_epoch >= 0, "{committed:?}");
    drop((producer, plain));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_a_broker_cannot_describe_get_kafkas_error_codes() {
    let cluster = TestCluster::builder(1)
        .brokers(2)
        .start()
        .await
        .expect("cluster");
    let bootstrap = cluster.bootstrap_servers();
    let ids = cluster.broker_ids();
    let (asked, holder) = (ids[0], ids[1]);
    // One partition, on `holder` only.
    let holder_only = [holder];
    let assignment: [&[i32]; 1] = [&holder_only];
    let topic =
        rdkafka::admin::NewTopic::new("elsewhere", 1, TopicReplication::Variable(&assignment));
    common::create_new_topic(&bootstrap, &topic).await;
    let mut client = KafkaClient::connect(cluster.broker_addr(asked))
        .await
        .expect("connect");

    // Unknown topic, and a partition the topic does not have.
    assert_eq!(
        describe_producers(&mut client, "nowhere", &[0]).await,
        vec![(0, UNKNOWN_TOPIC_OR_PARTITION, vec![])]
    );
    // Once `asked` has the topic in its metadata, the partition it holds no
    // replica of is NOT_LEADER_OR_FOLLOWER; index 1 does not exist.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let answer = describe_producers(&mut client, "elsewhere", &[0, 1]).await;
        if answer[0].1 != UNKNOWN_TOPIC_OR_PARTITION {
            assert_eq!(
                answer,
                vec![
                    (0, NOT_LEADER_OR_FOLLOWER, vec![]),
                    (1, UNKNOWN_TOPIC_OR_PARTITION, vec![])
                ]
            );
            break;
        }
        assert!(Instant::now() < deadline, "the topic never reached {asked}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The replica's broker answers (once it hosts the partition): no
    // producer wrote to it.
    let mut at_holder = KafkaClient::connect(cluster.broker_addr(holder))
        .await
        .expect("connect");
    let deadline = Instant::now() + DEADLINE;
    loop {
        let answer = describe_producers(&mut at_holder, "elsewhere", &[0]).await;
        if answer[0].1 != NOT_LEADER_OR_FOLLOWER && answer[0].1 != UNKNOWN_TOPIC_OR_PARTITION {
            assert_eq!(answer, vec![(0, 0, vec![])]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{holder} never hosted the partition"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.shutdown().await;
}
