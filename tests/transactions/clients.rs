//! librdkafka's transactional producer against the coordinator, as
//! read_committed and read_uncommitted consumers see it.

use super::*;

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
