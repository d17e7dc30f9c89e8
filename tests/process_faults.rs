//! Acknowledged writes survive real process faults: `kraftd` brokers as OS
//! processes, SIGKILLed (no shutdown code runs; what was not fsynced is
//! whatever the kernel kept) and SIGSTOPped (a leader frozen with its
//! sockets open, woken after the controller has moved on), while a
//! librdkafka producer writes with acks=all. The in-process nemesis
//! (`tests/nemesis`) covers many more schedules; this one shows the same
//! guarantee holds across real process boundaries and restarts.
//!
//! Cluster: controller 1, brokers 2, 3 and 4; `k`-0 at RF 3 with
//! `min.insync.replicas=2`. Each round faults the partition's leader,
//! waits until the producer's writes are acknowledged again by a new
//! leader, then heals it and waits for the ISR to be whole.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{client_config, create_topic, poll_messages};
use kraft_testkit::process::ProcessCluster;
use kraft_testkit::wait_for;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

const KRAFTD: &str = env!("CARGO_BIN_EXE_kraftd");
const TOPIC: &str = "k";

/// `k`-0's leader and ISR, as a broker's Metadata answers.
fn leader_and_isr(bootstrap: &str) -> Option<(i32, Vec<i32>)> {
    let consumer: BaseConsumer = client_config(bootstrap).create().ok()?;
    let metadata = consumer
        .fetch_metadata(Some(TOPIC), Duration::from_secs(2))
        .ok()?;
    let partition = metadata.topics().first()?.partitions().first()?;
    (partition.error().is_none() && partition.leader() >= 0)
        .then(|| (partition.leader(), partition.isr().to_vec()))
}

async fn wait_whole_isr(bootstrap: &str) -> i32 {
    wait_for("k-0 led with its whole ISR", || async {
        leader_and_isr(bootstrap).and_then(|(leader, isr)| (isr.len() == 3).then_some(leader))
    })
    .await
    .unwrap()
}

/// Acknowledged value -> offset, shared with the producing task.
type Acked = Arc<Mutex<BTreeMap<String, i64>>>;

async fn wait_more_acks(acked: &Acked, than: usize, what: &str) {
    wait_for(what, || async {
        (acked.lock().unwrap().len() > than + 20).then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_writes_survive_sigkill_and_sigstop_of_leaders() {
    let props = [
        ("broker.session.timeout.ms", "3000"),
        ("broker.heartbeat.interval.ms", "300"),
        ("replica.lag.time.max.ms", "3000"),
        ("auto.leader.rebalance.enable", "false"),
    ];
    let mut cluster = ProcessCluster::start_with_brokers(Path::new(KRAFTD), 1, 3, &props).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    wait_for("three brokers registered", || async {
        let consumer: BaseConsumer = client_config(&bootstrap).create().ok()?;
        let metadata = consumer.fetch_metadata(None, Duration::from_secs(2)).ok()?;
        (metadata.brokers().len() == 3).then_some(())
    })
    .await
    .unwrap();
    create_topic(&bootstrap, TOPIC, 1, 3, &[("min.insync.replicas", "2")]).await;
    wait_whole_isr(&bootstrap).await;

    let acked: Acked = Arc::default();
    let producer: FutureProducer = client_config(&bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "false")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "300000")
        .set("retry.backoff.ms", "100")
        // A frozen leader never answers: give up on it after 5 s, not 30.
        .set("request.timeout.ms", "5000")
        .set("socket.timeout.ms", "5000")
        .create()
        .expect("producer");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (acked, stop, producer) = (acked.clone(), stop.clone(), producer.clone());
        tokio::spawn(async move {
            let mut sent = 0u64;
            let mut in_flight = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for _ in 0..20 {
                    let value = format!("v{sent:08}");
                    sent += 1;
                    let record = FutureRecord::<(), _>::to(TOPIC)
                        .payload(&value)
                        .partition(0);
                    let delivery = producer.send_result(record).expect("enqueue");
                    in_flight.push((value, delivery));
                }
                for (value, delivery) in in_flight.drain(..) {
                    // A failed write (NOT_ENOUGH_REPLICAS after retries, say)
                    // was never acknowledged: it may or may not be in the log.
                    if let Ok(Ok(d)) = delivery.await {
                        acked.lock().unwrap().insert(value, d.offset);
                    }
                }
            }
        })
    };

    for round in 0..4 {
        let leader = wait_whole_isr(&bootstrap).await;
        let before = acked.lock().unwrap().len();
        wait_more_acks(&acked, before, "writes acknowledged before the fault").await;
        let before = acked.lock().unwrap().len();
        eprintln!("round {round}: faulting leader {leader} after {before} acknowledged writes");
        if round % 2 == 0 {
            cluster.kill9(leader).unwrap();
            wait_more_acks(&acked, before, "writes acknowledged by a new leader").await;
            cluster.spawn(leader).unwrap();
        } else {
            cluster.signal_stop(leader, true).unwrap();
            wait_more_acks(&acked, before, "writes acknowledged by a new leader").await;
            cluster.signal_stop(leader, false).unwrap();
        }
    }
    wait_whole_isr(&bootstrap).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();

    // Every acknowledged value is read back at its offset.
    let acked = acked.lock().unwrap().clone();
    let end = acked.values().copied().max().unwrap() + 1;
    let consumer: BaseConsumer = client_config(&bootstrap)
        .set("group.id", "process-faults")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(TOPIC, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let messages = tokio::task::spawn_blocking(move || {
        poll_messages(&consumer, usize::try_from(end).unwrap())
    })
    .await
    .unwrap();
    let read: BTreeMap<i64, String> = messages
        .iter()
        .map(|m| {
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            (m.offset(), value)
        })
        .collect();
    let lost: Vec<(&String, &i64)> = acked
        .iter()
        .filter(|(value, offset)| read.get(offset) != Some(*value))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes were lost or moved, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
}
