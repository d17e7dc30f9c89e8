//! KIP-890 on the partition leader: a transaction's first write to a
//! partition is appended only if the transaction's coordinator says the
//! partition was added to the producer's ongoing transaction, asked
//! directly when the leader is the coordinator and with AddPartitionsToTxn
//! v4 (`verify_only`) when it is another broker. A write to a partition
//! never added, or arriving after its transaction ended, gets
//! INVALID_TXN_STATE and leaves the log as it was; so do offsets of a
//! group whose partition AddOffsetsToTxn never added (TxnOffsetCommit).

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTransaction;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, GroupId, TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
};

use super::*;

/// ListOffsets v5 latest of `topic`-`partition` at read_uncommitted: the
/// high watermark.
async fn high_watermark(client: &mut KafkaClient, topic: &str, partition: i32) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(0)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(-1)])]);
    let response: ListOffsetsResponse = client.send(5, &request).await.expect("ListOffsets");
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

/// AddPartitionsToTxn v4 with `verify_only` for `id`: the code of each of
/// `partitions` of `topic`.
async fn verify_only(
    client: &mut KafkaClient,
    id: &str,
    producer: (i64, i16),
    topic: &str,
    partitions: Vec<i32>,
) -> Vec<i16> {
    let request = AddPartitionsToTxnRequest::default().with_transactions(vec![
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(s(id)))
            .with_producer_id(ProducerId(producer.0))
            .with_producer_epoch(producer.1)
            .with_verify_only(true)
            .with_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(name(topic))
                .with_partitions(partitions)]),
    ]);
    let response: AddPartitionsToTxnResponse =
        client.send(4, &request).await.expect("AddPartitionsToTxn");
    assert_eq!(response.error_code, 0);
    response.results_by_transaction[0].topic_results[0]
        .results_by_partition
        .iter()
        .map(|p| p.partition_error_code)
        .collect()
}

/// TxnOffsetCommit v3 of `group`'s offset 5 for `verified`-0, without a
/// member (what a producer given only a group id sends): its code. Asks
/// until the group has a coordinator.
async fn txn_offset_commit(
    cluster: &TestCluster,
    id: &str,
    producer: (i64, i16),
    group: &str,
) -> i16 {
    let deadline = Instant::now() + DEADLINE;
    let mut any = KafkaClient::connect(cluster.broker_addr(2))
        .await
        .expect("connect");
    loop {
        if let [(_, 0, node)] = find(&mut any, 0, &[group]).await.as_slice() {
            let mut coordinator = KafkaClient::connect(cluster.broker_addr(*node))
                .await
                .expect("connect");
            let request = TxnOffsetCommitRequest::default()
                .with_transactional_id(TransactionalId(s(id)))
                .with_group_id(GroupId(s(group)))
                .with_producer_id(ProducerId(producer.0))
                .with_producer_epoch(producer.1)
                .with_generation_id(-1)
                .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                    .with_name(name("verified"))
                    .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(5)])]);
            let response: TxnOffsetCommitResponse = coordinator
                .send(3, &request)
                .await
                .expect("TxnOffsetCommit");
            let code = response.topics[0].partitions[0].error_code;
            if ![COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR].contains(&code) {
                return code;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no group coordinator for {group}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The leader of `topic`-`partition` as controller 1 has it.
fn leader(cluster: &TestCluster, topic: &str, partition: i32) -> i32 {
    let image = cluster.image(1).expect("image");
    let topic = image.topics().topic_by_name(topic).expect("topic");
    topic.partition(partition).expect("partition").leader
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_write_the_coordinator_never_saw_is_refused() {
    // Two brokers (2 and 3) and one partition on each, so one leader is
    // the coordinator and the other asks it over the network.
    let cluster = TestCluster::builder(1)
        .brokers(2)
        .prop("transaction.state.log.replication.factor", 1)
        .prop("transaction.state.log.min.isr", 1)
        .prop("transaction.state.log.num.partitions", 1)
        .prop("offsets.topic.replication.factor", 1)
        .prop("offsets.topic.num.partitions", 2)
        .start()
        .await
        .expect("cluster");
    let bootstrap = cluster.bootstrap_servers();
    create_topic(&bootstrap, "verified", 2, 1, &[]).await;
    let mut any = KafkaClient::connect(cluster.broker_addr(2))
        .await
        .expect("connect");
    let coordinator = transaction_coordinator(&mut any, "v-tx").await;
    let mut coord = KafkaClient::connect(cluster.broker_addr(coordinator))
        .await
        .expect("connect");
    let deadline = Instant::now() + DEADLINE;
    let producer = loop {
        match init_raw(&mut coord, 4, "v-tx", 600_000, (-1, -1)).await {
            (0, pid, epoch) => break (pid, epoch),
            (code, _, _) => {
                assert!(Instant::now() < deadline, "no producer id: {code}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let (pid, epoch) = producer;
    let mut leaders = Vec::new();
    for p in 0..2 {
        let id = leader(&cluster, "verified", p);
        let client = KafkaClient::connect(cluster.broker_addr(id))
            .await
            .expect("connect");
        leaders.push((id, client));
    }
    assert_ne!(leaders[0].0, leaders[1].0, "one partition on each broker");

    // Nothing added yet: every leader refuses, and writes nothing.
    for (p, (_, client)) in leaders.iter_mut().enumerate() {
        let batch = transactional_batch(&["never-added"], pid, epoch, 0);
        let written = produce_in_transaction(client, "v-tx", "verified", p as i32, batch).await;
        assert_eq!(written.0, INVALID_TXN_STATE, "partition {p}");
        assert_eq!(high_watermark(client, "verified", p as i32).await, 0);
    }

    // Partition 0 added: it takes the write; partition 1 still refuses.
    assert_eq!(
        add_raw(&mut coord, 3, "v-tx", producer, "verified", vec![0]).await,
        vec![0]
    );
    assert_eq!(
        verify_only(&mut coord, "v-tx", producer, "verified", vec![0, 1]).await,
        vec![0, INVALID_TXN_STATE]
    );
    assert_eq!(
        verify_only(&mut coord, "v-tx", (pid, epoch + 1), "verified", vec![0]).await,
        vec![PRODUCER_FENCED]
    );
    let first = transactional_batch(&["added"], pid, epoch, 0);
    let (_, client0) = &mut leaders[0];
    assert_eq!(
        produce_in_transaction(client0, "v-tx", "verified", 0, first).await,
        (0, 0)
    );
    let (_, client1) = &mut leaders[1];
    let stray = transactional_batch(&["not-added"], pid, epoch, 0);
    assert_eq!(
        produce_in_transaction(client1, "v-tx", "verified", 1, stray)
            .await
            .0,
        INVALID_TXN_STATE
    );
    assert_eq!(high_watermark(client1, "verified", 1).await, 0);

    // Offsets need AddOffsetsToTxn first, as partitions need
    // AddPartitionsToTxn.
    assert_eq!(
        txn_offset_commit(&cluster, "v-tx", producer, "v-group").await,
        INVALID_TXN_STATE
    );
    let request = AddOffsetsToTxnRequest::default()
        .with_transactional_id(TransactionalId(s("v-tx")))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_group_id(GroupId(s("v-group")));
    let response: AddOffsetsToTxnResponse = coord.send(3, &request).await.expect("AddOffsetsToTxn");
    assert_eq!(response.error_code, 0);
    assert_eq!(
        txn_offset_commit(&cluster, "v-tx", producer, "v-group").await,
        0
    );

    // The transaction ends; a write of it that arrives late is refused,
    // not left open past the abort marker for ever.
    assert_eq!(end_raw(&mut coord, 3, "v-tx", producer, false).await, 0);
    let deadline = Instant::now() + DEADLINE;
    while describe(&mut coord, "v-tx").await.1 != "CompleteAbort" {
        assert!(Instant::now() < deadline, "the abort never completed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, client0) = &mut leaders[0];
    assert_eq!(high_watermark(client0, "verified", 0).await, 2);
    let late = transactional_batch(&["late"], pid, epoch, 1);
    assert_eq!(
        produce_in_transaction(client0, "v-tx", "verified", 0, late)
            .await
            .0,
        INVALID_TXN_STATE
    );
    assert_eq!(high_watermark(client0, "verified", 0).await, 2);
    assert_eq!(last_stable_offset(client0, "verified").await, 2);
    drop((any, coord, leaders));
    cluster.shutdown().await;
}
