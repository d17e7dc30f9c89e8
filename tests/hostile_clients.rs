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
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
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
