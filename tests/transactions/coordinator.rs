//! Where a transactional id's coordinator is, and Kafka's error codes for
//! transactional requests that are wrong, sent raw.

use super::*;

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
    let cluster = common::combined_node().await;
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

/// `transactional.id.expiration.ms`: an id idle that long with no
/// transaction open is removed (DescribeTransactions no longer finds it,
/// and the next InitProducerId starts it afresh); an id whose transaction
/// is open stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_transactional_ids_expire_and_open_ones_stay() {
    let cluster = TestCluster::builder(1)
        .combined()
        .prop("transaction.state.log.replication.factor", 1)
        .prop("transaction.state.log.min.isr", 1)
        .prop("transaction.state.log.num.partitions", 1)
        .prop("transactional.id.expiration.ms", 1_000)
        .prop(
            "transaction.remove.expired.transaction.cleanup.interval.ms",
            100,
        )
        .start()
        .await
        .expect("cluster");
    create_topic(&cluster.bootstrap_servers(), "expiry", 1, 1, &[]).await;
    let mut client = KafkaClient::connect(cluster.broker_addr(1))
        .await
        .expect("connect");
    assert_eq!(transaction_coordinator(&mut client, "idle-tx").await, 1);
    let deadline = Instant::now() + DEADLINE;
    let idle = loop {
        match init_raw(&mut client, 4, "idle-tx", 600_000, (-1, -1)).await {
            (0, pid, epoch) => break (pid, epoch),
            (code, _, _) => {
                assert!(Instant::now() < deadline, "no producer id: {code}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let (code, open_pid, open_epoch) = init_raw(&mut client, 4, "open-tx", 600_000, (-1, -1)).await;
    assert_eq!(code, 0);
    assert_eq!(
        add_raw(
            &mut client,
            3,
            "open-tx",
            (open_pid, open_epoch),
            "expiry",
            vec![0]
        )
        .await,
        vec![0]
    );

    let deadline = Instant::now() + DEADLINE;
    while describe(&mut client, "idle-tx").await.0 != TRANSACTIONAL_ID_NOT_FOUND {
        assert!(Instant::now() < deadline, "the idle id never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The open transaction is well past the expiration and still there.
    assert_eq!(
        describe(&mut client, "open-tx").await,
        (
            0,
            "Ongoing".to_string(),
            vec![("expiry".to_string(), vec![0])]
        )
    );
    // The expired id starts afresh: a new producer id at epoch 0.
    let (code, pid, epoch) = init_raw(&mut client, 4, "idle-tx", 600_000, (-1, -1)).await;
    assert_eq!(code, 0);
    assert_ne!(pid, idle.0);
    assert_eq!(epoch, 0);
    cluster.shutdown().await;
}
