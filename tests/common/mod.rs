//! The one helper module of the root `tests/` tree: every end-to-end test
//! binary declares `mod common;` and takes what it needs from here, so no
//! helper is written twice (see `docs/testing.md`).
//!
//! This file holds what the tests that use librdkafka (`rdkafka`) as the
//! client share: its client configuration, topic creation, a producer that
//! reports every acknowledgement, and a consumer of assigned partitions (no
//! group). [`groups`] speaks the group protocol, [`raw`] builds batches for
//! kraft's own Kafka client, [`replication`] reads partition states for the
//! leader election and reassignment tests, [`kraftctl`] runs the admin
//! CLI, and [`txn`] holds the transaction tests' consumers and producers.

// Each test binary uses its own subset.
#![allow(dead_code)]

pub mod groups;
pub mod kraftctl;
pub mod raw;
pub mod replication;
pub mod txn;

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// How long a consumer may take to read everything: generous, for a loaded
/// 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// One combined node (controller and broker 1) with default settings.
pub async fn combined_node() -> kraft_testkit::TestCluster {
    kraft_testkit::TestCluster::builder(1)
        .combined()
        .start()
        .await
        .expect("cluster")
}

/// `bootstrap.servers` and IPv4 only: what every librdkafka client here
/// starts from.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4");
    config
}

pub async fn create_topic(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    replication_factor: i32,
    configs: &[(&str, &str)],
) {
    let mut topic = NewTopic::new(
        name,
        partitions,
        TopicReplication::Fixed(replication_factor),
    );
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    create_new_topic(bootstrap, &topic).await;
}

/// Creates `topic` through librdkafka's admin client, failing the test if
/// the broker refuses it.
pub async fn create_new_topic(bootstrap: &str, topic: &NewTopic<'_>) {
    let admin: AdminClient<DefaultClientContext> =
        client_config(bootstrap).create().expect("admin client");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics([topic], &options)
        .await
        .expect("CreateTopics");
    for result in results {
        result.expect("topic created");
    }
}

pub fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut config = client_config(bootstrap);
    config
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .set("message.timeout.ms", "60000");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config.create().expect("producer")
}

/// One message to produce.
#[derive(Clone, Debug, Default)]
pub struct Outgoing {
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub partition: Option<i32>,
    pub timestamp: Option<i64>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Sends every message and waits for each acknowledgement: (partition,
/// offset) per message, in send order.
pub async fn produce_all(
    producer: &FutureProducer,
    topic: &str,
    messages: &[Outgoing],
) -> Vec<(i32, i64)> {
    let mut deliveries = Vec::with_capacity(messages.len());
    for m in messages {
        let mut record = FutureRecord::to(topic).key(&m.key).payload(&m.payload);
        if let Some(p) = m.partition {
            record = record.partition(p);
        }
        if let Some(ts) = m.timestamp {
            record = record.timestamp(ts);
        }
        if !m.headers.is_empty() {
            let mut headers = OwnedHeaders::new();
            for (k, v) in &m.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
            record = record.headers(headers);
        }
        match producer.send_result(record) {
            Ok(delivery) => deliveries.push(delivery),
            Err((e, _)) => panic!("enqueue failed: {e}"),
        }
    }
    let mut acked = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        match delivery.await.expect("delivery report") {
            Ok(d) => acked.push((d.partition, d.offset)),
            Err((e, _)) => panic!("produce failed: {e}"),
        }
    }
    acked
}

/// Reads partitions `0..partitions` of `topic` from the beginning, with
/// assigned partitions (no group), until `count` messages have arrived.
pub async fn consume(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    count: usize,
) -> Vec<OwnedMessage> {
    let bootstrap = bootstrap.to_string();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = client_config(&bootstrap)
            .set("group.id", "assigned-only")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "100")
            .create()
            .expect("consumer");
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions {
            assignment
                .add_partition_offset(&topic, p, Offset::Beginning)
                .expect("assignment");
        }
        consumer.assign(&assignment).expect("assign");
        poll_messages(&consumer, count)
    })
    .await
    .expect("consumer thread")
}

impl Outgoing {
    /// A message with a key and a value.
    pub fn keyed(key: impl Into<String>, value: impl Into<String>) -> Outgoing {
        Outgoing {
            key: key.into().into_bytes(),
            payload: value.into().into_bytes(),
            ..Default::default()
        }
    }
}

/// Polls `consumer` until `count` messages have arrived (or panics at
/// [`DEADLINE`]). librdkafka reports transient trouble (a broker
/// restarting) as errors and retries by itself; the deadline catches a
/// consumer that never recovers.
pub fn poll_messages(consumer: &BaseConsumer, count: usize) -> Vec<OwnedMessage> {
    let mut out = Vec::with_capacity(count);
    let deadline = Instant::now() + DEADLINE;
    while out.len() < count {
        assert!(
            Instant::now() < deadline,
            "consumed {} of {count} messages before the deadline",
            out.len()
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push(m.detach()),
            Some(Err(e)) => eprintln!("consumer: {e}"),
            None => {}
        }
    }
    out
}
