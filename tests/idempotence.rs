//! Idempotent producers end to end: InitProducerId, the partition leader's
//! answers to a duplicate batch, a sequence gap and a stale epoch spoken
//! byte by byte (kraft's minimal client), producer ids unique across a
//! controller failover, and librdkafka's idempotent producer at
//! `max.in.flight.requests.per.connection=5` while the partition leader is
//! killed twice: every message exactly once, in order, with no gaps.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{
    FindCoordinatorRequest, FindCoordinatorResponse, InitProducerIdRequest, InitProducerIdResponse,
    ProducerId, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use kraft_kafka_client::KafkaClient;
use kraft_testkit::{wait_for, TestCluster};
use rdkafka::producer::FutureRecord;
use rdkafka::Message;

use common::raw::{producer_batch, try_produce};
use common::{consume, create_topic, producer};

const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const INVALID_PRODUCER_EPOCH: i16 = 47;

async fn connect(cluster: &TestCluster, broker: i32) -> KafkaClient {
    KafkaClient::connect(cluster.broker_addr(broker))
        .await
        .expect("connect")
}

/// InitProducerId v4 without a transactional id: (error, id, epoch).
async fn init_producer_id(
    client: &mut KafkaClient,
    transactional_id: Option<&str>,
) -> (i16, i64, i16) {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(
            transactional_id.map(|t| TransactionalId(StrBytes::from_string(t.into()))),
        )
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let response: InitProducerIdResponse = client.send(4, &request).await.expect("InitProducerId");
    (
        response.error_code,
        response.producer_id.0,
        response.producer_epoch,
    )
}

/// Produces one batch from producer `pid` to `idem`-0: (error, base offset).
async fn send(
    client: &mut KafkaClient,
    pid: i64,
    epoch: i16,
    seq: i32,
    values: &[&str],
) -> (i16, i64) {
    try_produce(client, "idem", 0, producer_batch(values, pid, epoch, seq))
        .await
        .expect("produce")
}

/// The log end of partition 0 of `topic` on broker `id`.
fn log_end(cluster: &TestCluster, id: i32, topic: &str) -> Option<i64> {
    let topic_id = cluster
        .voter_ids()
        .into_iter()
        .find_map(|v| cluster.image(v)?.topics().topic_id(topic))?;
    match cluster.broker(id)?.replicas().lookup(topic_id, 0) {
        kraft_broker::replica::PartitionLookup::Hosted(p) => Some(p.log().log_end_offset()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_gaps_and_stale_epochs_get_kafkas_answers_and_leave_the_log_alone() {
    let cluster = common::combined_node().await;
    create_topic(&cluster.bootstrap_servers(), "idem", 1, 1, &[]).await;
    let mut client = connect(&cluster, 1).await;
    let (code, pid, epoch) = init_producer_id(&mut client, None).await;
    assert_eq!((code, epoch), (0, 0));
    assert!(pid >= 0);
    let (_, other, _) = init_producer_id(&mut client, None).await;
    assert_ne!(other, pid, "a second producer gets another id");

    let c = &mut client;
    assert_eq!(send(c, pid, 0, 0, &["a", "b", "c"]).await, (0, 0));
    assert_eq!(send(c, pid, 0, 3, &["d", "e"]).await, (0, 3));
    // The retry of either batch: its original offset, nothing written.
    assert_eq!(send(c, pid, 0, 0, &["a", "b", "c"]).await, (0, 0));
    assert_eq!(send(c, pid, 0, 3, &["d", "e"]).await, (0, 3));
    assert_eq!(log_end(&cluster, 1, "idem"), Some(5));
    // A gap in the sequence.
    assert_eq!(
        send(c, pid, 0, 6, &["g"]).await.0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    // A new epoch (the producer bumped it, KIP-360) must start at 0 ...
    assert_eq!(
        send(c, pid, 1, 5, &["x"]).await.0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(send(c, pid, 1, 0, &["f"]).await, (0, 5));
    // ... and the old epoch is stale from then on.
    assert_eq!(send(c, pid, 0, 5, &["y"]).await.0, INVALID_PRODUCER_EPOCH);
    assert_eq!(log_end(&cluster, 1, "idem"), Some(6));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_ids_find_no_coordinator_without_brokers_for_its_topic() {
    // One broker, `transaction.state.log.replication.factor` 3: no
    // `__transaction_state`, so no broker coordinates a transactional id.
    let cluster = common::combined_node().await;
    let mut client = connect(&cluster, 1).await;
    assert_eq!(
        init_producer_id(&mut client, Some("tx")).await.0,
        NOT_COORDINATOR
    );
    let request = FindCoordinatorRequest::default()
        .with_key_type(1)
        .with_coordinator_keys(vec![StrBytes::from_static_str("tx")]);
    let response: FindCoordinatorResponse =
        client.send(4, &request).await.expect("FindCoordinator");
    assert_eq!(
        response.coordinators[0].error_code,
        COORDINATOR_NOT_AVAILABLE
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_producer_id_is_given_twice_across_a_controller_failover() {
    let mut cluster = TestCluster::builder(3)
        .brokers(2)
        .start()
        .await
        .expect("cluster");
    let mut ids = BTreeSet::new();
    for broker in [4, 5] {
        let mut client = connect(&cluster, broker).await;
        for _ in 0..3 {
            let (code, id, _) = init_producer_id(&mut client, None).await;
            assert_eq!(code, 0);
            assert!(ids.insert(id), "id {id} given twice");
        }
    }
    let (leader, _) = cluster.wait_for_leader().await.expect("active controller");
    cluster.kill(leader).await;
    // Broker 4 restarts: it forgets its block and asks the new active controller.
    cluster.restart(4).await.expect("broker 4 restarts");
    cluster.wait_for_brokers().await.expect("brokers back");
    let id = wait_for("an id from the new controller", || async {
        let mut client = connect(&cluster, 4).await;
        let (code, id, _) = init_producer_id(&mut client, None).await;
        (code == 0).then_some(id)
    })
    .await
    .expect("InitProducerId after the failover");
    assert!(ids.insert(id), "id {id} given twice");
    assert!(id >= 2000, "a third block: {id}");
    cluster.shutdown().await;
}

/// The leader of `topic`-0 and its ISR size, as controller 1 has them.
fn leader_of(cluster: &TestCluster, topic: &str) -> Option<(i32, usize)> {
    let image = cluster.image(1)?;
    let p = image.topics().topic_by_name(topic)?.partition(0)?.clone();
    (p.leader >= 0).then_some((p.leader, p.isr.len()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_producer_writes_exactly_once_while_its_leader_is_killed_twice() {
    const COUNT: usize = 20_000;
    let mut cluster = TestCluster::builder(1)
        .brokers(3)
        .prop("replica.lag.time.max.ms", 2000)
        .prop("broker.session.timeout.ms", 3000)
        .prop("broker.heartbeat.interval.ms", 300)
        .start()
        .await
        .expect("cluster");
    let bootstrap = cluster.bootstrap_servers();
    create_topic(
        &bootstrap,
        "exactly-once",
        1,
        3,
        &[("min.insync.replicas", "2")],
    )
    .await;
    wait_for("a full ISR", || async {
        leader_of(&cluster, "exactly-once").filter(|(_, isr)| *isr == 3)
    })
    .await
    .expect("full ISR");

    let producer = producer(
        &bootstrap,
        &[
            ("enable.idempotence", "true"),
            ("max.in.flight.requests.per.connection", "5"),
            ("acks", "all"),
            ("message.timeout.ms", "300000"),
            ("retry.backoff.ms", "50"),
        ],
    );
    // The producer sends at a steady pace in the background, so the kills
    // land while batches are in flight.
    let done = Arc::new(AtomicBool::new(false));
    let sender = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut deliveries = Vec::with_capacity(COUNT);
            for i in 0..COUNT {
                let value = format!("m{i}");
                let record = FutureRecord::to("exactly-once").key("k").payload(&value);
                match producer.send_result(record) {
                    Ok(d) => deliveries.push(d),
                    Err((e, _)) => panic!("enqueue failed: {e}"),
                }
                if i % 20 == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            let mut failures = Vec::new();
            for (i, d) in deliveries.into_iter().enumerate() {
                match d.await.expect("delivery report") {
                    Ok(_) => {}
                    Err((e, _)) => failures.push(format!("m{i}: {e}")),
                }
            }
            done.store(true, Ordering::Release);
            failures
        })
    };

    for round in 0..2 {
        let (leader, _) = wait_for("a full ISR", || async {
            leader_of(&cluster, "exactly-once").filter(|(_, isr)| *isr == 3)
        })
        .await
        .expect("full ISR before a kill");
        let progress = log_end(&cluster, leader, "exactly-once").unwrap_or(0);
        wait_for("the producer to make progress", || async {
            log_end(&cluster, leader, "exactly-once").filter(|end| *end > progress + 2000)
        })
        .await
        .expect("progress");
        cluster.kill(leader).await;
        wait_for("a new leader", || async {
            leader_of(&cluster, "exactly-once").filter(|(l, _)| *l != leader)
        })
        .await
        .expect("leadership moves");
        cluster
            .restart(leader)
            .await
            .expect("the killed leader restarts");
        eprintln!("round {round}: killed and restarted broker {leader}");
    }
    let failures = sender.await.expect("producer task");
    assert!(done.load(Ordering::Acquire));
    assert!(failures.is_empty(), "failed deliveries: {failures:?}");

    let consumed = consume(&bootstrap, "exactly-once", 1, COUNT).await;
    let values: Vec<String> = consumed
        .iter()
        .map(|m| String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned())
        .collect();
    let expected: Vec<String> = (0..COUNT).map(|i| format!("m{i}")).collect();
    assert_eq!(values.len(), COUNT);
    if values != expected {
        let first = values.iter().zip(&expected).position(|(a, b)| a != b);
        let around = first.map(|f| &values[f.saturating_sub(2)..(f + 3).min(values.len())]);
        panic!("not exactly once in order: first difference at {first:?}: {around:?}");
    }
    // Nothing beyond the COUNT messages either.
    let end = wait_for("the log end on the leader", || async {
        let (leader, _) = leader_of(&cluster, "exactly-once")?;
        log_end(&cluster, leader, "exactly-once")
    })
    .await
    .expect("leader log");
    assert_eq!(end, COUNT as i64, "no duplicate was written");
    cluster.shutdown().await;
}
