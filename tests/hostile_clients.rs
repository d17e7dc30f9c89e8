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
use kafka_protocol::messages::{ApiVersionsRequest, FetchRequest, FetchResponse};
use kafka_protocol::protocol::StrBytes;
use kraft_kafka_client::KafkaClient;
use kraft_testkit::{wait_for, TestCluster, DEADLINE};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

const MIB: usize = 1024 * 1024;

/// The tests measure this process's peak memory: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The soft limit on open files of this process (`ulimit -n`).
fn fd_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// A TCP connection to `addr` from the loopback address `source` (Linux
/// routes all of 127.0.0.0/8 to lo, so each source is a distinct client
/// IP), optionally with a tiny receive buffer.
async fn connect_from(source: &str, addr: &str, recv_buffer: Option<u32>) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{source}:0").parse().expect("source address"))
        .expect("bind the source address");
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
    }
    socket
        .connect(addr.parse().expect("broker address"))
        .await
        .unwrap_or_else(|e| panic!("connect from {source}: {e}"))
}

/// Whether the broker closed `stream` (EOF or reset); never consumes data
/// (these clients are sent nothing but EOF).
fn is_closed(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.try_read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

/// A normal client's round trip: a fresh connection from 127.0.0.1 and an
/// ApiVersions answered, within the deadline.
async fn normal_client_is_served(addr: &str, when: &str) {
    let served = tokio::time::timeout(DEADLINE, async {
        let mut client = KafkaClient::connect(addr).await.ok()?;
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("kraft-tests"))
            .with_client_software_version(StrBytes::from_static_str("1"));
        client.send(3, &request).await.ok()
    })
    .await;
    assert!(
        matches!(served, Ok(Some(ref r)) if r.error_code == 0),
        "a normal client was not served {when}: {served:?}"
    );
}

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
    let _serial = SERIAL.lock().await;
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
    let _serial = SERIAL.lock().await;
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

/// Part B of issue 12: 5,000 connections from one IP (127.0.0.2) that send
/// nothing, against `max.connections.per.ip=1000`. The broker keeps 1,000,
/// closes the 4,000 past the limit, still serves a client from another IP,
/// and its memory stays small.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_idle_connections_are_bounded_and_others_are_served() {
    let _serial = SERIAL.lock().await;
    let limit = fd_limit();
    assert!(
        limit >= 12_000,
        "this test opens 5,000 connections to an in-process broker (both ends: 10,000 fds); \
         it needs ulimit -n >= 12000, and this process has {limit}"
    );
    let (cluster, _client) = single_node(&[("max.connections.per.ip", "1000")]).await;
    let addr = cluster.broker_addr(1).to_string();
    let before = peak_rss();
    let mut flood = Vec::with_capacity(5000);
    for _ in 0..5000 {
        flood.push(connect_from("127.0.0.2", &addr, None).await);
    }
    normal_client_is_served(&addr, "while 5,000 idle connections were open").await;
    let closed = wait_for(
        "the connections past max.connections.per.ip to be closed",
        || async {
            let closed = flood.iter().filter(|s| is_closed(s)).count();
            (closed >= 4000).then_some(closed)
        },
    )
    .await
    .unwrap_or_else(|e| {
        let closed = flood.iter().filter(|s| is_closed(s)).count();
        panic!("{e}: {closed} of 5,000 closed, expected 4,000 (limit 1,000 per IP)")
    });
    assert_eq!(
        closed, 4000,
        "the broker keeps max.connections.per.ip = 1,000 of them"
    );
    let grown = peak_rss().saturating_sub(before);
    assert!(
        grown < 128 * MIB,
        "peak RSS grew by {} MiB for 5,000 idle connections",
        grown / MIB
    );
    drop(flood);
    cluster.shutdown().await;
}

/// Part B: `connections.max.idle.ms` (1.5 s here). Connections that send
/// nothing, and one that sends half a size prefix and stops (a slowloris),
/// are closed by the broker after the idle time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_connections_max_idle_ms() {
    let _serial = SERIAL.lock().await;
    let (cluster, _client) = single_node(&[("connections.max.idle.ms", "1500")]).await;
    let addr = cluster.broker_addr(1).to_string();
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(connect_from("127.0.0.3", &addr, None).await);
    }
    let mut slowloris = connect_from("127.0.0.3", &addr, None).await;
    slowloris
        .write_all(&[0, 0])
        .await
        .expect("half a size prefix");
    idle.push(slowloris);
    let closed = wait_for("the idle connections to be closed", || async {
        let closed = idle.iter().filter(|s| is_closed(s)).count();
        (closed == idle.len()).then_some(closed)
    })
    .await;
    assert!(
        closed.is_ok(),
        "{} of {} idle connections closed after connections.max.idle.ms = 1500",
        idle.iter().filter(|s| is_closed(s)).count(),
        idle.len()
    );
    normal_client_is_served(&addr, "after closing idle connections").await;
    cluster.shutdown().await;
}

/// Part B: 32 clients (tiny receive buffers) each ask for a 4 MiB Fetch and
/// never read the answer. The answers' records come from the fetch budget
/// (`queued.max.request.bytes` = 16 MiB) and are held until written, so
/// the broker holds at most 16 MiB of them at once instead of 128 MiB;
/// each stalled write ends at the idle time (2 s), which frees the budget
/// for the next. Meanwhile and afterwards other clients are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_their_fetch_answers_hold_bounded_memory() {
    let _serial = SERIAL.lock().await;
    let (cluster, mut client) = single_node(&[
        ("fetch.max.bytes", &(4 * MIB).to_string()),
        ("queued.max.request.bytes", &(16 * MIB).to_string()),
        ("connections.max.idle.ms", "2000"),
    ])
    .await;
    let addr = cluster.broker_addr(1).to_string();
    create_topic(&cluster.bootstrap_servers(), "slow", 1, 1, &[]).await;
    fill(&mut client, "slow", 5 * MIB).await;

    let before = peak_rss();
    let request = fetch_request("slow", 1, (4 * MIB) as i32, (4 * MIB) as i32);
    let payload = client.encode_request(1, 12, &request).expect("encode");
    let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&payload);
    let mut slow = Vec::new();
    for _ in 0..32 {
        let mut stream = connect_from("127.0.0.4", &addr, Some(4096)).await;
        stream.write_all(&frame).await.expect("send the fetch");
        slow.push(stream);
    }
    normal_client_is_served(&addr, "while 32 clients did not read 4 MiB answers").await;
    // Each slow client is answered in turn (its first bytes arrive: peek
    // does not read them), so every answer has been built by then.
    wait_for("every slow client to be answered", || async {
        let mut peeked = 0;
        for s in &slow {
            let mut byte = [0u8; 1];
            if matches!(
                tokio::time::timeout(Duration::from_millis(1), s.peek(&mut byte)).await,
                Ok(Ok(n)) if n > 0
            ) {
                peeked += 1;
            }
        }
        (peeked == slow.len()).then_some(())
    })
    .await
    .expect("answers sent");
    let grown = peak_rss().saturating_sub(before);
    assert!(
        grown < 64 * MIB,
        "peak RSS grew by {} MiB holding the answers of 32 clients that never read them",
        grown / MIB
    );
    // The first client sat idle past connections.max.idle.ms: a new one.
    let mut consumer = KafkaClient::connect(&addr).await.expect("connect");
    let answer: FetchResponse = consumer
        .send(12, &fetch_request("slow", 1, MIB as i32, MIB as i32))
        .await
        .expect("a consumer is served");
    assert!(record_bytes(&answer) > 0);
    drop(slow);
    cluster.shutdown().await;
}

/// Part B: followers are not starved by clients. Kraft's brokers replicate
/// over the client listener, so a flood that takes every place under
/// `max.connections` must not keep a follower out: the follower, restarted
/// during the flood, proves what it is with its first request (a Fetch v15
/// with its new broker epoch) and is served past the limit, and catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_gets_in_past_a_connection_flood() {
    let _serial = SERIAL.lock().await;
    let mut cluster = TestCluster::builder(1)
        .brokers(2)
        .prop("max.connections", 40)
        .start()
        .await
        .expect("cluster starts");
    create_topic(&cluster.bootstrap_servers(), "flooded", 1, 2, &[]).await;
    let (leader, follower) = wait_for("a full ISR", || async {
        let image = cluster.image(1)?;
        let p = image
            .topics()
            .topic_by_name("flooded")?
            .partition(0)?
            .clone();
        let follower = *p.isr.iter().find(|b| **b != p.leader)?;
        (p.isr.len() == 2 && high_watermark(&cluster, p.leader, "flooded").is_some())
            .then_some((p.leader, follower))
    })
    .await
    .expect("leader and follower");
    let leader_addr = cluster.broker_addr(leader).to_string();
    let mut producer = KafkaClient::connect(&leader_addr).await.expect("connect");

    // The follower goes away (its connection with it); a flood takes every
    // place; the follower comes back and must reconnect.
    cluster.kill(follower).await;
    let mut flood = Vec::new();
    for _ in 0..200 {
        flood.push(connect_from("127.0.0.5", &leader_addr, None).await);
    }
    wait_for(
        "the leader to refuse connections past max.connections",
        || async { flood.iter().any(is_closed).then_some(()) },
    )
    .await
    .expect("the flood reached the limit");
    cluster
        .restart(follower)
        .await
        .expect("the follower restarts");
    let (code, _) = raw::produce(&mut producer, "flooded", 0, raw::batch(&["during"])).await;
    assert_eq!(code, 0);
    let caught_up = wait_for("the restarted follower to fetch the new batch", || async {
        let topic_id = cluster.image(1)?.topics().topic_id("flooded")?;
        match cluster.broker(follower)?.replicas().lookup(topic_id, 0) {
            kraft_broker::replica::PartitionLookup::Hosted(p) => {
                (p.log().log_end_offset() == 1).then_some(())
            }
            _ => None,
        }
    })
    .await;
    assert!(
        caught_up.is_ok(),
        "the follower could not reach its leader past a flood of {} client connections: {caught_up:?}",
        flood.len()
    );
    drop(flood);
    cluster.shutdown().await;
}
