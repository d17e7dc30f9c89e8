//! Compaction through a running broker, as a Kafka user sees it: a topic
//! with `cleanup.policy=compact` written by librdkafka, key after key many
//! times over, is compacted by the broker's log cleaner while consumers
//! read it: a consumer from the beginning sees offsets only go forward,
//! every key's latest value at its original offset, and, once the cleaner
//! has run, far fewer records than were written.

mod common;

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use common::{client_config, create_topic, produce_all, Outgoing, DEADLINE};

const KEYS: usize = 10;
const ROUNDS: usize = 50;

/// Every record of `topic`-0 from the beginning up to offset `last`:
/// (offset, key, value).
async fn read_all(bootstrap: &str, topic: &str, last: i64) -> Vec<(i64, String, String)> {
    let bootstrap = bootstrap.to_string();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = client_config(&bootstrap)
            .set("group.id", "compaction-reader")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "100")
            .create()
            .expect("consumer");
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&topic, 0, Offset::Beginning)
            .expect("assignment");
        consumer.assign(&assignment).expect("assign");
        let mut out = Vec::new();
        let deadline = Instant::now() + DEADLINE;
        loop {
            assert!(Instant::now() < deadline, "never read up to offset {last}");
            let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let text =
                |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
            out.push((m.offset(), text(m.key()), text(m.payload())));
            if m.offset() >= last {
                return out;
            }
        }
    })
    .await
    .expect("reader thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_topic_keeps_each_keys_latest_value_at_its_offset() {
    let cluster = kraft_testkit::TestCluster::builder(1)
        .combined()
        .prop("log.cleaner.backoff.ms", 50)
        .start()
        .await
        .expect("cluster");
    let bootstrap = cluster.bootstrap_servers();
    create_topic(
        &bootstrap,
        "compacted",
        1,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "2048"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    )
    .await;
    let producer = common::producer(&bootstrap, &[("linger.ms", "0")]);
    let mut written = Vec::new();
    for round in 0..ROUNDS {
        let messages: Vec<Outgoing> = (0..KEYS)
            .map(|k| Outgoing {
                partition: Some(0),
                ..Outgoing::keyed(format!("k{k}"), format!("k{k}-v{round}"))
            })
            .collect();
        written.extend(produce_all(&producer, "compacted", &messages).await);
    }
    let last = written.iter().map(|(_, o)| *o).max().expect("written");
    let total = written.len();

    // Read while the cleaner works, until a read finds the log compacted.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let records = read_all(&bootstrap, "compacted", last).await;
        // Offsets only go forward, and every key's last value is its
        // latest, at the offset it was written at.
        assert!(
            records.windows(2).all(|w| w[0].0 < w[1].0),
            "offsets go back"
        );
        for k in 0..KEYS {
            let key = format!("k{k}");
            let (offset, _, value) = records
                .iter()
                .rev()
                .find(|(_, rk, _)| *rk == key)
                .expect("every key is there");
            assert_eq!(*value, format!("{key}-v{}", ROUNDS - 1));
            let written_at = written[(ROUNDS - 1) * KEYS + k].1;
            assert_eq!(*offset, written_at, "{key}'s latest at its original offset");
        }
        if records.len() < total / 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cleaner never compacted the topic: {} of {total} records left",
            records.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(producer);
    cluster.shutdown().await;
}
