//! Replication on 3 brokers with replication factor 3, through librdkafka
//! (`rdkafka`) and the replicas' own logs: every replica holds the same
//! batches, the ISR shrinks and grows with followers, min.insync.replicas
//! holds writes back, and a leader's death loses no acknowledged write.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{consume, create_topic, produce_all, producer, raw, Outgoing};
use kraft_kafka_client::KafkaClient;
use kraft_log::ReadBound;
use kraft_testkit::{wait_for, TestCluster};
use rdkafka::producer::FutureRecord;
use rdkafka::Message;
use uuid::Uuid;

const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const REQUEST_TIMED_OUT: i16 = 7;

/// 1 controller (id 1) and brokers 2, 3, 4, with fast ISR decisions.
async fn cluster() -> TestCluster {
    TestCluster::builder(1)
        .brokers(3)
        .prop("replica.lag.time.max.ms", 2000)
        .prop("broker.session.timeout.ms", 3000)
        .prop("broker.heartbeat.interval.ms", 300)
        .start()
        .await
        .expect("cluster starts")
}

fn topic_id(cluster: &TestCluster, topic: &str) -> Uuid {
    cluster
        .image(1)
        .and_then(|i| i.topics().topic_id(topic))
        .expect("topic exists")
}

/// (leader, isr) of one partition, as the controller sees it.
fn leadership(cluster: &TestCluster, topic: &str, index: i32) -> Option<(i32, Vec<i32>)> {
    let image = cluster.image(1)?;
    let p = image
        .topics()
        .topic_by_name(topic)?
        .partition(index)?
        .clone();
    let mut isr = p.isr.clone();
    isr.sort_unstable();
    Some((p.leader, isr))
}

/// Broker `id`'s log of one partition: (log end, high watermark, bytes).
fn replica_log(
    cluster: &TestCluster,
    id: i32,
    topic: Uuid,
    index: i32,
) -> Option<(i64, i64, Vec<u8>)> {
    let broker = cluster.broker(id)?;
    let kraft_broker::replica::PartitionLookup::Hosted(p) = broker.replicas().lookup(topic, index)
    else {
        return None;
    };
    let log = p.log();
    let mut bytes = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let read = log.read(offset, 1 << 20, ReadBound::LogEnd, true).ok()?;
        if read.records.is_empty() {
            break;
        }
        bytes.extend_from_slice(&read.records);
        let mut next = offset;
        for batch in kraft_log::batch::batches(&read.records).flatten() {
            next = batch.0.last_offset() + 1;
        }
        if next <= offset {
            break;
        }
        offset = next;
    }
    Some((log.log_end_offset(), log.high_watermark(), bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_holds_what_the_high_watermark_passed() {
    let cluster = cluster().await;
    let bootstrap = cluster.bootstrap_servers();
    create_topic(&bootstrap, "copies", 2, 3, &[]).await;
    let producer = producer(&bootstrap, &[]);
    let messages: Vec<Outgoing> = (0..5000u32)
        .map(|i| Outgoing::keyed(format!("k{i}"), format!("v{i}")))
        .collect();
    let acked = produce_all(&producer, "copies", &messages).await;
    let id = topic_id(&cluster, "copies");
    for index in 0..2 {
        let end = acked
            .iter()
            .filter(|a| a.0 == index)
            .map(|a| a.1 + 1)
            .max()
            .unwrap_or(0);
        let logs = wait_for(
            "all three replicas to hold the acknowledged messages",
            || async {
                let logs: Vec<_> = [2, 3, 4]
                    .iter()
                    .filter_map(|b| replica_log(&cluster, *b, id, index))
                    .collect();
                (logs.len() == 3 && logs.iter().all(|l| l.0 >= end && l.1 >= end)).then_some(logs)
            },
        )
        .await
        .expect("replicated");
        assert!(
            logs.iter().all(|l| l.2 == logs[0].2),
            "partition {index}: replicas differ"
        );
    }
    let consumed = consume(&bootstrap, "copies", 2, messages.len()).await;
    assert_eq!(consumed.len(), messages.len());
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_follower_leaves_the_isr_and_rejoins_after_healing() {
    let cluster = cluster().await;
    let bootstrap = cluster.bootstrap_servers();
    create_topic(&bootstrap, "isr", 1, 3, &[]).await;
    let (leader, isr) = wait_for("a full ISR", || async {
        leadership(&cluster, "isr", 0).filter(|(_, isr)| isr.len() == 3)
    })
    .await
    .expect("leader");
    assert_eq!(isr, vec![2, 3, 4]);
    let follower = *isr.iter().find(|b| **b != leader).expect("a follower");
    cluster.faults().cut(follower, leader);

    let producer = producer(&bootstrap, &[]);
    let first: Vec<Outgoing> = (0..100)
        .map(|i| Outgoing::keyed("k", format!("a{i}")))
        .collect();
    produce_all(&producer, "isr", &first).await;
    wait_for("the cut-off follower to leave the ISR", || async {
        leadership(&cluster, "isr", 0).filter(|(_, isr)| !isr.contains(&follower))
    })
    .await
    .expect("ISR shrank");

    cluster.heal();
    let second: Vec<Outgoing> = (0..100)
        .map(|i| Outgoing::keyed("k", format!("b{i}")))
        .collect();
    produce_all(&producer, "isr", &second).await;
    wait_for("the follower to rejoin the ISR", || async {
        leadership(&cluster, "isr", 0).filter(|(_, isr)| isr.contains(&follower))
    })
    .await
    .expect("ISR grew");
    let id = topic_id(&cluster, "isr");
    wait_for("the follower's log to equal the leader's", || async {
        let l = replica_log(&cluster, leader, id, 0)?;
        let f = replica_log(&cluster, follower, id, 0)?;
        (l.2 == f.2 && l.0 == 200).then_some(())
    })
    .await
    .expect("logs equal");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_brokers_down_acks_all_needs_min_insync_replicas() {
    let mut cluster = cluster().await;
    let bootstrap = cluster.bootstrap_servers();
    create_topic(&bootstrap, "guarded", 1, 3, &[("min.insync.replicas", "2")]).await;
    let (leader, _) = wait_for("a full ISR", || async {
        leadership(&cluster, "guarded", 0).filter(|(_, isr)| isr.len() == 3)
    })
    .await
    .expect("leader");
    let others: Vec<i32> = [2, 3, 4].into_iter().filter(|b| *b != leader).collect();
    for b in &others {
        cluster.kill(*b).await;
    }
    wait_for("the ISR to shrink to the leader", || async {
        leadership(&cluster, "guarded", 0).filter(|(_, isr)| isr == &vec![leader])
    })
    .await
    .expect("ISR shrank");

    let impatient = producer(
        &bootstrap,
        &[("message.timeout.ms", "3000"), ("retries", "0")],
    );
    let refused = impatient
        .send(
            FutureRecord::to("guarded").key("k").payload("refused"),
            Duration::from_secs(10),
        )
        .await;
    match refused {
        Err((e, _)) => assert!(
            e.to_string().contains("NotEnoughReplicas")
                || e.to_string()
                    .contains("Broker: Not enough in-sync replicas"),
            "unexpected error: {e}"
        ),
        Ok(d) => panic!("acks=all succeeded with one in-sync replica: {d:?}"),
    }

    cluster.restart(others[0]).await.expect("broker returns");
    wait_for("the ISR to regrow to two", || async {
        leadership(&cluster, "guarded", 0).filter(|(_, isr)| isr.len() >= 2)
    })
    .await
    .expect("ISR regrew");
    let producer = producer(&bootstrap, &[]);
    produce_all(&producer, "guarded", &[Outgoing::keyed("k", "accepted")]).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_mid_produce_loses_no_acknowledged_write() {
    let mut cluster = cluster().await;
    let bootstrap = cluster.bootstrap_servers();
    create_topic(
        &bootstrap,
        "failover",
        1,
        3,
        &[("min.insync.replicas", "2")],
    )
    .await;
    let (leader, _) = wait_for("a full ISR", || async {
        leadership(&cluster, "failover", 0).filter(|(_, isr)| isr.len() == 3)
    })
    .await
    .expect("leader");

    // One message at a time with acks=all, so each is acknowledged or not.
    let producer = producer(
        &bootstrap,
        &[("message.timeout.ms", "30000"), ("linger.ms", "0")],
    );
    let mut acked: BTreeMap<i64, String> = BTreeMap::new();
    let mut killed = false;
    for i in 0..400 {
        if i == 150 {
            cluster.kill(leader).await;
            killed = true;
        }
        let value = format!("m{i}");
        let sent = producer
            .send(
                FutureRecord::to("failover").key("k").payload(&value),
                Duration::from_secs(30),
            )
            .await;
        if let Ok(d) = sent {
            assert!(
                acked.insert(d.offset, value).is_none(),
                "offset {} acknowledged twice",
                d.offset
            );
        }
    }
    assert!(killed);
    let (new_leader, _) = leadership(&cluster, "failover", 0).expect("partition");
    assert_ne!(new_leader, leader, "leadership moved");
    let last = acked.keys().max().copied().unwrap_or(0);
    let consumed = consume(&bootstrap, "failover", 1, (last + 1) as usize).await;
    let stored: BTreeMap<i64, String> = consumed
        .iter()
        .map(|m| {
            (
                m.offset(),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            )
        })
        .collect();
    for (offset, value) in &acked {
        assert_eq!(
            stored.get(offset),
            Some(value),
            "acknowledged message at offset {offset}"
        );
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_controller_stops_acknowledging() {
    let cluster = cluster().await;
    let bootstrap = cluster.bootstrap_servers();
    create_topic(
        &bootstrap,
        "isolated",
        1,
        3,
        &[("min.insync.replicas", "2")],
    )
    .await;
    let (leader, _) = wait_for("a full ISR", || async {
        leadership(&cluster, "isolated", 0).filter(|(_, isr)| isr.len() == 3)
    })
    .await
    .expect("leader");
    cluster.faults().cut(leader, 1);

    // The controller fences the silent leader and elects another replica.
    let (new_leader, _) = wait_for("a new leader", || async {
        leadership(&cluster, "isolated", 0).filter(|(l, _)| *l >= 0 && *l != leader)
    })
    .await
    .expect("leader moved");

    // Writes through the new leader are acknowledged...
    let producer = producer(&bootstrap, &[]);
    produce_all(&producer, "isolated", &[Outgoing::keyed("k", "after")]).await;

    // ...while the old leader, which never heard of the change, no longer
    // acknowledges acks=all writes: it refuses them, or (counting itself
    // fenced) hangs up so the client turns to another broker.
    let mut old = KafkaClient::connect(cluster.broker_addr(leader))
        .await
        .expect("connect to the old leader");
    let answer =
        raw::try_produce(&mut old, "isolated", 0, raw::batch(&["to the old leader"])).await;
    match answer {
        Ok((code, _)) => assert!(
            code == NOT_LEADER_OR_FOLLOWER || code == REQUEST_TIMED_OUT,
            "the cut-off leader {leader} answered {code} after {new_leader} took over"
        ),
        Err(e) => eprintln!("the cut-off leader hung up: {e}"),
    }
    cluster.shutdown().await;
}
