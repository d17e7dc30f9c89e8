//! Hostile Kafka clients against a running broker: each test sends the
//! exact bytes an attacker would (through kraft's minimal client, which
//! sends any request as it is) and checks that the broker's memory and
//! connections stay bounded, that other clients are still served, and
//! that only real followers count toward the high watermark.
//!
//! Memory is read from this process's peak resident set (`VmHWM` in
//! `/proc/self/status`): the cluster runs in-process, so a broker that
//! allocates what a request asks for shows up there.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{create_topic, raw};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kraft_kafka_client::KafkaClient;
use kraft_testkit::{wait_for, TestCluster};

const MIB: usize = 1024 * 1024;

/// This process's peak resident set, in bytes.
fn peak_rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map(|kb| kb * 1024)
        .expect("VmHWM in /proc/self/status")
}

/// Writes `total` bytes to partition 0 of `topic`, in batches of one
/// 256 KiB record each (acks=all).
async fn fill(client: &mut KafkaClient, topic: &str, total: usize) {
    let value = "x".repeat(256 * 1024);
    for _ in 0..total / (256 * 1024) {
        let (code, _) = raw::produce(client, topic, 0, raw::batch(&[value.as_str()])).await;
        assert_eq!(code, 0, "produce to {topic}");
    }
}

/// A single-node cluster (controller and broker, id 1) with these extra
/// `server.properties` keys, and a client of its broker.
async fn single_node(props: &[(&str, &str)]) -> (TestCluster, KafkaClient) {
    let mut builder = TestCluster::builder(1).combined();
    for (k, v) in props {
        builder = builder.prop(k, v);
    }
    let cluster = builder.start().await.expect("cluster starts");
    let client = KafkaClient::connect(cluster.broker_addr(1))
        .await
        .expect("connect");
    (cluster, client)
}

/// A consumer's Fetch (v12, topic names) of partition 0 of `topic` from
/// offset 0, the partition listed `repeats` times, each with
/// `partition_max_bytes`, and `max_bytes` for the whole answer.
fn fetch_request(
    topic: &str,
    repeats: usize,
    partition_max_bytes: i32,
    max_bytes: i32,
) -> FetchRequest {
    let partitions = (0..repeats)
        .map(|_| {
            FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(partition_max_bytes)
        })
        .collect();
    FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(max_bytes)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(raw::name(topic))
            .with_partitions(partitions)])
}

fn record_bytes(response: &FetchResponse) -> usize {
    response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.records.as_ref().map_or(0, Bytes::len))
        .sum()
}

/// Part A of issue 12: `max_bytes = -1` (read as "no limit") and one
/// partition listed 1,000 times with a 2 GiB per-partition limit, over a
/// partition holding 8 MiB: a 20 KB request. The broker answers the
/// partition once (Kafka keys a fetch by partition; the last listing wins)
/// with at most `fetch.max.bytes` (plus one batch, KIP-74), and its memory
/// does not grow by the GBs the request asks for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_listing_one_partition_a_thousand_times_is_bounded() {
    let fetch_max = 2 * MIB;
    let (cluster, mut client) = single_node(&[("fetch.max.bytes", &fetch_max.to_string())]).await;
    create_topic(&cluster.bootstrap_servers(), "big", 1, 1, &[]).await;
    fill(&mut client, "big", 8 * MIB).await;

    let before = peak_rss();
    let request = fetch_request("big", 1000, i32::MAX, -1);
    let response: FetchResponse = client
        .send(12, &request)
        .await
        .unwrap_or_else(|e| panic!("the broker must answer a bounded Fetch; got: {e}"));
    let grown = peak_rss().saturating_sub(before);

    let entries: usize = response.responses.iter().map(|t| t.partitions.len()).sum();
    assert_eq!(
        entries, 1,
        "partition 0 listed 1,000 times is answered once"
    );
    let bytes = record_bytes(&response);
    assert!(
        bytes > 0 && bytes <= fetch_max + 300 * 1024,
        "{bytes} record bytes: must be at most fetch.max.bytes ({fetch_max}) plus one batch"
    );
    assert!(
        grown < 128 * MIB,
        "the process's peak RSS grew by {} MiB serving one 20 KB Fetch",
        grown / MIB
    );
    // A follower's fetch is capped by replica.fetch.response.max.bytes the
    // same way; a normal client is still served.
    let again: FetchResponse = client
        .send(12, &fetch_request("big", 1, MIB as i32, 1))
        .await
        .expect("a normal fetch");
    assert!(
        record_bytes(&again) > 0,
        "the first batch comes whole (KIP-74)"
    );
    cluster.shutdown().await;
}

/// The leader's high watermark of partition 0 of `topic` on broker `id`.
fn high_watermark(cluster: &TestCluster, id: i32, topic: &str) -> Option<i64> {
    let topic_id = cluster.image(1)?.topics().topic_id(topic)?;
    match cluster.broker(id)?.replicas().lookup(topic_id, 0) {
        kraft_broker::replica::PartitionLookup::Hosted(p) => Some(p.high_watermark()),
        _ => None,
    }
}

/// A follower's Fetch of partition 0 of `topic` at `fetch_offset`, as
/// replica `replica_id`: at v12 (no broker epoch; `replica_id` at the top)
/// or at v15 with `replica_epoch`. Returns the partition's error code.
async fn spoofed_fetch(
    client: &mut KafkaClient,
    cluster: &TestCluster,
    topic: &str,
    version: i16,
    replica_id: i32,
    replica_epoch: i64,
    fetch_offset: i64,
) -> i16 {
    let topic_id = cluster
        .image(1)
        .and_then(|i| i.topics().topic_id(topic))
        .expect("topic id");
    let mut request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(MIB as i32)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(if version >= 13 {
                Default::default()
            } else {
                raw::name(topic)
            })
            .with_topic_id(if version >= 13 {
                topic_id
            } else {
                Default::default()
            })
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(fetch_offset)
                .with_partition_max_bytes(MIB as i32)])]);
    if version >= 15 {
        request.replica_state = ReplicaState::default()
            .with_replica_id(replica_id.into())
            .with_replica_epoch(replica_epoch);
    } else {
        request.replica_id = replica_id.into();
    }
    let response: FetchResponse = client
        .send(version, &request)
        .await
        .expect("fetch answered");
    response.responses[0].partitions[0].error_code
}

/// Part C of issue 12: a client that claims to be follower `f` (the real
/// one is cut off from the leader, still in the ISR) must not move the high
/// watermark, so an acks=all produce in flight is not acknowledged by the
/// spoof; once the real follower reaches the leader again, it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_replica_id_does_not_move_the_high_watermark() {
    let cluster = TestCluster::builder(1)
        .brokers(2)
        .prop("replica.lag.time.max.ms", 600_000)
        .start()
        .await
        .expect("cluster starts");
    create_topic(&cluster.bootstrap_servers(), "acks", 1, 2, &[]).await;
    let (leader, follower) = wait_for("a full ISR", || async {
        let image = cluster.image(1)?;
        let p = image.topics().topic_by_name("acks")?.partition(0)?.clone();
        let follower = *p.isr.iter().find(|b| **b != p.leader)?;
        (p.isr.len() == 2 && high_watermark(&cluster, p.leader, "acks").is_some())
            .then_some((p.leader, follower))
    })
    .await
    .expect("leader and follower");
    let mut producer = KafkaClient::connect(cluster.broker_addr(leader))
        .await
        .expect("connect");
    // Let the follower catch up once, then cut it off from the leader.
    let (code, _) = raw::produce(&mut producer, "acks", 0, raw::batch(&["first"])).await;
    assert_eq!(code, 0);
    cluster.faults().cut(follower, leader);
    let in_flight = tokio::spawn(async move {
        raw::try_produce(&mut producer, "acks", 0, raw::batch(&["second"])).await
    });
    wait_for("the second batch on the leader", || async {
        let topic_id = cluster.image(1)?.topics().topic_id("acks")?;
        match cluster.broker(leader)?.replicas().lookup(topic_id, 0) {
            kraft_broker::replica::PartitionLookup::Hosted(p) => {
                (p.log().log_end_offset() == 2).then_some(())
            }
            _ => None,
        }
    })
    .await
    .expect("appended");
    assert_eq!(high_watermark(&cluster, leader, "acks"), Some(1));

    let real_epoch = cluster
        .image(1)
        .and_then(|i| i.cluster().broker(follower).map(|b| b.epoch))
        .expect("the follower's registration");
    let mut spoof = KafkaClient::connect(cluster.broker_addr(leader))
        .await
        .expect("connect");
    for (version, epoch) in [
        (12, -1),
        (15, -1),
        (15, real_epoch + 1),
        (15, real_epoch - 1),
    ] {
        let code = spoofed_fetch(&mut spoof, &cluster, "acks", version, follower, epoch, 2).await;
        assert_eq!(
            high_watermark(&cluster, leader, "acks"),
            Some(1),
            "a Fetch v{version} claiming to be replica {follower} (epoch {epoch}, the real one is {real_epoch}) moved the high watermark (answer code {code})"
        );
        assert_eq!(
            code, 77,
            "a Fetch v{version} as replica {follower} with epoch {epoch}: STALE_BROKER_EPOCH"
        );
        assert!(
            !in_flight.is_finished(),
            "the acks=all produce was answered"
        );
    }
    cluster.heal();
    let answer = in_flight.await.expect("task").expect("produce answered");
    assert_eq!(answer, (0, 1), "acknowledged once the real follower has it");
    cluster.shutdown().await;
}
