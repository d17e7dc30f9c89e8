//! Producing and consuming with an unmodified Kafka client (librdkafka, via
//! `rdkafka`): ordering per partition, every compression codec, headers
//! and timestamps, ListOffsets, and a broker killed with SIGKILL that keeps
//! every acknowledged message.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{client_config, consume, create_topic, produce_all, producer, Outgoing};
use kraft_testkit::process::ProcessCluster;
use kraft_testkit::TestCluster;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::{Message, Offset, Timestamp, TopicPartitionList};

const KRAFTD: &str = env!("CARGO_BIN_EXE_kraftd");

async fn single_node() -> TestCluster {
    TestCluster::builder(1)
        .combined()
        .start()
        .await
        .expect("cluster starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_messages_come_back_in_order_per_partition() {
    let cluster = single_node().await;
    let bootstrap = cluster.bootstrap_servers();
    create_topic(&bootstrap, "keyed", 3, 1, &[]).await;
    let producer = producer(&bootstrap, &[]);
    let messages: Vec<Outgoing> = (0..100_000u32)
        .map(|i| Outgoing {
            key: format!("key-{}", i % 1000).into_bytes(),
            payload: format!("message {i}").into_bytes(),
            ..Default::default()
        })
        .collect();
    let acked = produce_all(&producer, "keyed", &messages).await;

    // What each partition must hold, in order.
    let mut expected: BTreeMap<i32, Vec<(i64, &Outgoing)>> = BTreeMap::new();
    for (m, (p, offset)) in messages.iter().zip(&acked) {
        expected.entry(*p).or_default().push((*offset, m));
    }
    assert_eq!(expected.len(), 3, "keys spread over all three partitions");

    let consumed = consume(&bootstrap, "keyed", 3, messages.len()).await;
    let mut got: BTreeMap<i32, Vec<&OwnedMessage>> = BTreeMap::new();
    for m in &consumed {
        got.entry(m.partition()).or_default().push(m);
    }
    let mut key_partition: BTreeMap<Vec<u8>, i32> = BTreeMap::new();
    for (p, want) in &expected {
        let have = &got[p];
        assert_eq!(have.len(), want.len(), "partition {p}: message count");
        for (i, ((offset, m), c)) in want.iter().zip(have).enumerate() {
            assert_eq!(c.offset(), *offset, "partition {p}, message {i}: offset");
            assert_eq!(
                c.offset(),
                i as i64,
                "partition {p}: offsets are dense from 0"
            );
            assert_eq!(
                c.key(),
                Some(&m.key[..]),
                "partition {p} offset {offset}: key"
            );
            assert_eq!(
                c.payload(),
                Some(&m.payload[..]),
                "partition {p} offset {offset}: payload"
            );
            let first = *key_partition.entry(m.key.clone()).or_insert(*p);
            assert_eq!(first, *p, "one key, one partition");
        }
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compression_codec_round_trips() {
    let cluster = single_node().await;
    let bootstrap = cluster.bootstrap_servers();
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        create_topic(&bootstrap, &topic, 1, 1, &[]).await;
        let producer = producer(&bootstrap, &[("compression.type", codec)]);
        // Repetitive payloads so every codec really compresses them.
        let messages: Vec<Outgoing> = (0..2000u32)
            .map(|i| Outgoing {
                key: format!("k{i}").into_bytes(),
                payload: format!("{codec} payload {i} ").repeat(10).into_bytes(),
                ..Default::default()
            })
            .collect();
        produce_all(&producer, &topic, &messages).await;
        let consumed = consume(&bootstrap, &topic, 1, messages.len()).await;
        for (i, (m, c)) in messages.iter().zip(&consumed).enumerate() {
            assert_eq!(c.offset(), i as i64, "{codec}: offset");
            assert_eq!(c.key(), Some(&m.key[..]), "{codec}: key {i}");
            assert_eq!(c.payload(), Some(&m.payload[..]), "{codec}: payload {i}");
        }
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_and_timestamps_are_preserved() {
    let cluster = single_node().await;
    let bootstrap = cluster.bootstrap_servers();
    create_topic(&bootstrap, "stamped", 1, 1, &[]).await;
    create_topic(
        &bootstrap,
        "appended",
        1,
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await;
    let producer = producer(&bootstrap, &[]);
    let base = 1_600_000_000_000i64;
    let messages: Vec<Outgoing> = (0..50)
        .map(|i| Outgoing {
            key: format!("k{i}").into_bytes(),
            payload: format!("v{i}").into_bytes(),
            timestamp: Some(base + i * 1000),
            headers: (0..(i % 4))
                .map(|h| (format!("h{h}"), format!("value {i}/{h}").into_bytes()))
                .collect(),
            ..Default::default()
        })
        .collect();
    produce_all(&producer, "stamped", &messages).await;
    let consumed = consume(&bootstrap, "stamped", 1, messages.len()).await;
    for (m, c) in messages.iter().zip(&consumed) {
        assert_eq!(
            c.timestamp(),
            Timestamp::CreateTime(m.timestamp.unwrap_or_default())
        );
        let headers: Vec<(String, Vec<u8>)> = c
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(headers, m.headers, "headers of offset {}", c.offset());
    }

    // Under LogAppendTime the broker's clock replaces the producer's.
    let before = now_ms();
    produce_all(&producer, "appended", &messages[..10]).await;
    let after = now_ms();
    for c in consume(&bootstrap, "appended", 1, 10).await {
        match c.timestamp() {
            Timestamp::LogAppendTime(ts) => assert!(
                (before..=after).contains(&ts),
                "log-append time {ts} is outside {before}..={after}"
            ),
            other => panic!("expected a log-append time, got {other:?}"),
        }
    }
    cluster.shutdown().await;
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_answers_earliest_latest_and_by_time() {
    let cluster = single_node().await;
    let bootstrap = cluster.bootstrap_servers();
    create_topic(&bootstrap, "timed", 1, 1, &[]).await;
    // Timestamps 1000 ms apart; one batch holds many of them, so a lookup by
    // time must find a record inside a batch. Compressed, to look inside a
    // compressed batch too.
    let producer = producer(
        &bootstrap,
        &[("compression.type", "lz4"), ("linger.ms", "50")],
    );
    let base = 1_700_000_000_000i64;
    let messages: Vec<Outgoing> = (0..100)
        .map(|i| Outgoing {
            payload: format!("at {i}").into_bytes(),
            timestamp: Some(base + i * 1000),
            ..Default::default()
        })
        .collect();
    let acked = produce_all(&producer, "timed", &messages).await;
    assert_eq!(acked.last().map(|a| a.1), Some(99));

    let bootstrap2 = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = client_config(&bootstrap2)
            .set("group.id", "list-offsets")
            .create()
            .expect("consumer");
        let timeout = Duration::from_secs(30);
        let (low, high) = consumer
            .fetch_watermarks("timed", 0, timeout)
            .expect("earliest and latest");
        assert_eq!((low, high), (0, 100));
        for (target, want) in [
            (base - 5, Offset::Offset(0)),
            (base, Offset::Offset(0)),
            (base + 1, Offset::Offset(1)),
            (base + 42_000, Offset::Offset(42)),
            (base + 42_500, Offset::Offset(43)),
            (base + 99_000, Offset::Offset(99)),
            (base + 99_001, Offset::End),
        ] {
            let mut query = TopicPartitionList::new();
            query
                .add_partition_offset("timed", 0, Offset::Offset(target))
                .expect("query");
            let answer = consumer.offsets_for_times(query, timeout).expect("by time");
            let offset = answer
                .find_partition("timed", 0)
                .expect("partition in the answer")
                .offset();
            assert_eq!(offset, want, "offset for timestamp {target}");
        }
    })
    .await
    .expect("list offsets thread");
    cluster.shutdown().await;
}

/// Acknowledged writes survive `kill -9` of the (single, combined) node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_keeps_every_acknowledged_message() {
    let mut node = ProcessCluster::start_combined(Path::new(KRAFTD), &[]).expect("kraftd starts");
    let bootstrap = node.bootstrap_servers();
    create_topic(&bootstrap, "durable", 3, 1, &[]).await;
    let producer = producer(&bootstrap, &[("message.timeout.ms", "5000")]);
    let messages: Vec<Outgoing> = (0..20_000u32)
        .map(|i| Outgoing {
            key: i.to_be_bytes().to_vec(),
            payload: format!("durable {i}").into_bytes(),
            ..Default::default()
        })
        .collect();
    let acked = produce_all(&producer, "durable", &messages).await;
    drop(producer);

    node.kill9(1).expect("SIGKILL");
    node.spawn(1).expect("restart");

    let consumed = consume(&bootstrap, "durable", 3, messages.len()).await;
    let stored: BTreeMap<(i32, i64), &OwnedMessage> = consumed
        .iter()
        .map(|m| ((m.partition(), m.offset()), m))
        .collect();
    for (m, at) in messages.iter().zip(&acked) {
        let c = stored
            .get(at)
            .unwrap_or_else(|| panic!("acknowledged message at {at:?} is gone\n{}", node.log(1)));
        assert_eq!(c.payload(), Some(&m.payload[..]), "message at {at:?}");
    }
}
