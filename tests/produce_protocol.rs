//! Produce, Fetch and ListOffsets spoken byte by byte (kraft's minimal
//! Kafka client, with batches built by kafka-protocol): what a real client
//! cannot easily send — a corrupt batch — and the exact error codes and
//! long-poll behaviour of the protocol.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{CreateTopicsRequest, FetchRequest, FetchResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use kraft_kafka_client::KafkaClient;
use kraft_testkit::{wait_for, TestCluster};

mod common;

use common::raw::{batch, name, produce};

const CORRUPT_MESSAGE: i16 = 2;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const MESSAGE_TOO_LARGE: i16 = 10;
const INVALID_RECORD: i16 = 87;

/// The values of every record in `records` (concatenated batches).
fn values(records: &Bytes) -> Vec<(i64, String)> {
    let mut buf = records.clone();
    let sets = RecordBatchDecoder::decode_all(&mut buf).expect("decodable batches");
    sets.into_iter()
        .flat_map(|s| s.records)
        .map(|r| {
            let v = r.value.map(|v| String::from_utf8_lossy(&v).into_owned());
            (r.offset, v.unwrap_or_default())
        })
        .collect()
}

fn fetch_request(topic: &str, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_current_leader_epoch(-1)
                .with_partition_max_bytes(1 << 20)])])
}

/// `(error code, high watermark, records)` of partition 0.
async fn fetch(
    client: &mut KafkaClient,
    topic: &str,
    offset: i64,
    max_wait_ms: i32,
) -> (i16, i64, Bytes) {
    let response: FetchResponse = client
        .send(11, &fetch_request(topic, offset, max_wait_ms))
        .await
        .expect("fetch");
    let p = &response.responses[0].partitions[0];
    (
        p.error_code,
        p.high_watermark,
        p.records.clone().unwrap_or_default(),
    )
}

async fn create_topic(
    client: &mut KafkaClient,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(1)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(k.to_string()))
                            .with_value(Some(StrBytes::from_string(v.to_string())))
                    })
                    .collect(),
            )]);
    let response: kafka_protocol::messages::CreateTopicsResponse =
        client.send(5, &request).await.expect("create topics");
    assert_eq!(response.topics[0].error_code, 0, "{topic} created");
}

async fn connect(cluster: &TestCluster, broker: i32) -> KafkaClient {
    KafkaClient::connect(cluster.broker_addr(broker))
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_batch_is_refused_and_the_log_stays_intact() {
    let cluster = common::combined_node().await;
    let mut client = connect(&cluster, 1).await;
    create_topic(&mut client, "raw", 1, &[("max.message.bytes", "2000")]).await;

    assert_eq!(
        produce(&mut client, "raw", 0, batch(&["a", "b"])).await,
        (0, 0)
    );

    // Flip one byte of a record: the CRC no longer matches.
    let good = batch(&["c", "d"]);
    let mut bad = BytesMut::from(&good[..]);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    assert_eq!(
        produce(&mut client, "raw", 0, bad.freeze()).await.0,
        CORRUPT_MESSAGE
    );
    // A batch cut short.
    let cut = good.slice(..good.len() - 3);
    assert_eq!(produce(&mut client, "raw", 0, cut).await.0, CORRUPT_MESSAGE);
    // Not a v2 batch.
    let mut old = BytesMut::from(&good[..]);
    old[16] = 1;
    let code = produce(&mut client, "raw", 0, old.freeze()).await.0;
    assert!(
        matches!(code, CORRUPT_MESSAGE | INVALID_RECORD),
        "magic 1: {code}"
    );
    // Larger than max.message.bytes.
    let big = "x".repeat(3000);
    assert_eq!(
        produce(&mut client, "raw", 0, batch(&[&big])).await.0,
        MESSAGE_TOO_LARGE
    );

    // The log holds exactly the good batches, at dense offsets.
    assert_eq!(produce(&mut client, "raw", 0, good).await, (0, 2));
    let (code, hw, records) = fetch(&mut client, "raw", 0, 0).await;
    assert_eq!((code, hw), (0, 4));
    assert_eq!(
        values(&records),
        vec![
            (0, "a".into()),
            (1, "b".into()),
            (2, "c".into()),
            (3, "d".into())
        ]
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_past_the_end_waits_and_returns_when_data_arrives() {
    let cluster = common::combined_node().await;
    let mut client = connect(&cluster, 1).await;
    create_topic(&mut client, "poll", 1, &[]).await;
    assert_eq!(
        produce(&mut client, "poll", 0, batch(&["first"])).await,
        (0, 0)
    );

    // Nothing arrives: the fetch waits max_wait_ms, then answers empty.
    let started = Instant::now();
    let (code, hw, records) = fetch(&mut client, "poll", 1, 500).await;
    assert_eq!((code, hw, records.len()), (0, 1, 0));
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "answered before max_wait_ms"
    );

    // Data arrives while a fetch with a very long max_wait_ms is parked:
    // it answers with the data (long before the wait would end).
    let mut poller = connect(&cluster, 1).await;
    let parked = tokio::spawn(async move { fetch(&mut poller, "poll", 1, 600_000).await });
    assert_eq!(
        produce(&mut client, "poll", 0, batch(&["second"])).await,
        (0, 1)
    );
    let (code, hw, records) = tokio::time::timeout(Duration::from_secs(60), parked)
        .await
        .expect("the parked fetch answers once data arrives")
        .expect("fetch task");
    assert_eq!((code, hw), (0, 2));
    assert_eq!(values(&records), vec![(1, "second".into())]);

    // Past the end: OFFSET_OUT_OF_RANGE, at once.
    assert_eq!(
        fetch(&mut client, "poll", 5, 600_000).await.0,
        OFFSET_OUT_OF_RANGE
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_fetch_name_the_partition_error() {
    let cluster = TestCluster::builder(1)
        .brokers(2)
        .start()
        .await
        .expect("cluster");
    let mut client = connect(&cluster, 2).await;
    create_topic(&mut client, "two", 2, &[]).await;
    assert_eq!(
        produce(&mut client, "missing", 0, batch(&["x"])).await.0,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        produce(&mut client, "two", 7, batch(&["x"])).await.0,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    // Each broker leads one of the two partitions: the other answers
    // NOT_LEADER_OR_FOLLOWER for it.
    let image = wait_for("both partitions have leaders", || async {
        let image = cluster.image(1)?;
        let topic = image.topics().topic_by_name("two")?;
        let leaders: Vec<i32> = topic.partitions().values().map(|p| p.leader).collect();
        (leaders.len() == 2 && leaders.iter().all(|l| *l >= 0)).then_some(image)
    })
    .await
    .expect("leaders");
    // The topic was created through broker 2; broker 3 learns it from the
    // metadata log moments later (until then it rightly answers
    // UNKNOWN_TOPIC_OR_PARTITION).
    for broker in [2, 3] {
        wait_for("every broker to know the topic", || async {
            let cache = cluster.broker(broker)?.cache().image();
            (cache.offset() >= image.offset()).then_some(())
        })
        .await
        .expect("broker caught up");
    }
    let topic = image.topics().topic_by_name("two").expect("topic");
    for (index, p) in topic.partitions() {
        for broker in [2, 3] {
            let mut client = connect(&cluster, broker).await;
            let code = produce(&mut client, "two", *index, batch(&["y"])).await.0;
            if broker == p.leader {
                assert_eq!(code, 0, "the leader of partition {index} takes the write");
            } else {
                assert_eq!(
                    code, NOT_LEADER_OR_FOLLOWER,
                    "broker {broker}, partition {index}"
                );
            }
        }
    }
    cluster.shutdown().await;
}
