//! Offsets inside a transaction (consume-transform-produce): librdkafka's
//! `send_offsets_to_transaction` stores the group's offsets with
//! TxnOffsetCommit; they stay pending in the group coordinator, invisible
//! to OffsetFetch (UNSTABLE_OFFSET_COMMIT when `require_stable`), until the
//! transaction's marker commits them or drops them. A restarted
//! coordinator, reading `__consumer_offsets` back, gets the same state.

use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse};
use rdkafka::consumer::ConsumerGroupMetadata;

use super::*;

const UNSTABLE_OFFSET_COMMIT: i16 = 88;

/// OffsetFetch (v7) of `group`'s offset for `topic`-0: (error code,
/// offset), at `require_stable`. A group-level error (a coordinator still
/// loading, say) is the code, with offset -1.
async fn fetch_offset(
    client: &mut KafkaClient,
    group: &str,
    topic: &str,
    require_stable: bool,
) -> (i16, i64) {
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(name(topic))
            .with_partition_indexes(vec![0])]))
        .with_require_stable(require_stable);
    let response: OffsetFetchResponse = client.send(7, &request).await.expect("OffsetFetch");
    if response.error_code != 0 {
        return (response.error_code, -1);
    }
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.committed_offset)
}

/// Waits until `group`'s offset for `topic`-0 reads `expected` with
/// `require_stable` (a marker is written after EndTxn is answered).
async fn wait_for_offset(client: &mut KafkaClient, group: &str, topic: &str, expected: (i16, i64)) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let got = fetch_offset(client, group, topic, true).await;
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{group} never read {expected:?} for {topic}: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `send_offsets_to_transaction` of `in`-0 at `offset` for `group`.
fn send_offsets(producer: &FutureProducer, group: &ConsumerGroupMetadata, offset: i64) {
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("in", 0, Offset::Offset(offset))
        .expect("offset");
    // The group metadata cannot move to another thread: block this worker.
    tokio::task::block_in_place(|| producer.send_offsets_to_transaction(&offsets, group, TXN_CALL))
        .expect("send_offsets_to_transaction");
}

/// A consumer of `group`, for its group metadata (generation -1: it
/// joins no group and is assigned nothing, so it fetches nothing and
/// closes at once).
fn group_consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    common::client_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_offsets_move_only_with_the_commit_and_survive_a_reload() {
    let mut cluster = single_node().await;
    let bootstrap = cluster.bootstrap_servers();
    create_topic(&bootstrap, "in", 1, 1, &[]).await;
    create_topic(&bootstrap, "out", 1, 1, &[]).await;
    let consumer = group_consumer(&bootstrap, "ctp");
    let metadata = consumer.group_metadata().expect("group metadata");
    let producer = transactional_producer(&bootstrap, "ctp-tx", &[]);
    init(&producer).await;
    let mut client = KafkaClient::connect(cluster.broker_addr(1))
        .await
        .expect("connect");

    // An open transaction's offsets are pending: not committed, and
    // unstable to a read_committed fetch.
    producer.begin_transaction().expect("begin");
    send(&producer, "out", &["t-0"]).await;
    send_offsets(&producer, &metadata, 2);
    assert_eq!(fetch_offset(&mut client, "ctp", "in", false).await, (0, -1));
    assert_eq!(
        fetch_offset(&mut client, "ctp", "in", true).await,
        (UNSTABLE_OFFSET_COMMIT, -1)
    );

    // An abort drops them.
    abort(&producer).await.expect("abort");
    wait_for_offset(&mut client, "ctp", "in", (0, -1)).await;

    // A commit makes them the group's offsets.
    producer.begin_transaction().expect("begin");
    send(&producer, "out", &["t-1"]).await;
    send_offsets(&producer, &metadata, 2);
    commit(&producer).await.expect("commit");
    wait_for_offset(&mut client, "ctp", "in", (0, 2)).await;
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition("in", 0);
    let committed = consumer
        .committed_offsets(wanted, Timeout::After(DEADLINE))
        .expect("committed offsets");
    assert_eq!(
        committed.find_partition("in", 0).map(|p| p.offset()),
        Some(Offset::Offset(2))
    );

    // Left open across a restart: the reloaded coordinator still holds the
    // new offset pending and the old one committed ...
    producer.begin_transaction().expect("begin");
    send(&producer, "out", &["t-2"]).await;
    send_offsets(&producer, &metadata, 3);
    drop((consumer, producer, client));
    cluster.restart(1).await.expect("restart");
    let mut client = KafkaClient::connect(cluster.broker_addr(1))
        .await
        .expect("connect");
    let deadline = Instant::now() + DEADLINE;
    let reloaded = loop {
        let got = fetch_offset(&mut client, "ctp", "in", false).await;
        if got.0 == 0 || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(reloaded, (0, 2), "the committed offset after the reload");
    // ... until a new instance of the producer aborts the transaction the
    // restart left open (the abort marker drops the pending offset), and
    // its own transaction commits a new one.
    let fresh = transactional_producer(&bootstrap, "ctp-tx", &[]);
    init(&fresh).await;
    wait_for_offset(&mut client, "ctp", "in", (0, 2)).await;
    let consumer = group_consumer(&bootstrap, "ctp");
    let metadata = consumer.group_metadata().expect("group metadata");
    fresh.begin_transaction().expect("begin");
    send(&fresh, "out", &["t-3"]).await;
    send_offsets(&fresh, &metadata, 4);
    commit(&fresh).await.expect("commit");
    wait_for_offset(&mut client, "ctp", "in", (0, 4)).await;

    // What read_committed consumers of `out` see: t-1 and t-3 only.
    let mut committed = spawn_consumer(&bootstrap, "out", "read_committed");
    assert_eq!(next(&mut committed, 2).await, strings(&["t-1", "t-3"]));
    drop((committed, consumer, fresh));
    cluster.shutdown().await;
}
