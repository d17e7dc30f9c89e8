//! A partition log's life on disk, seen from outside: retention moves the
//! log start offset that clients see, and deleting a topic removes its
//! partition directories.

mod common;

use std::time::Duration;

use common::raw::{batch, produce};
use kraft_kafka_client::KafkaClient;
use kraft_testkit::{wait_for, TestCluster};
use rdkafka::consumer::{BaseConsumer, Consumer};

/// (earliest, latest) offsets of partition 0, through ListOffsets.
async fn watermarks(bootstrap: &str, topic: &str) -> Option<(i64, i64)> {
    let bootstrap = bootstrap.to_string();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = common::client_config(&bootstrap)
            .set("group.id", "watermarks")
            .create()
            .ok()?;
        consumer
            .fetch_watermarks(&topic, 0, Duration::from_secs(10))
            .ok()
    })
    .await
    .ok()
    .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_bytes_moves_the_log_start() {
    let cluster = TestCluster::builder(1)
        .combined()
        .prop("log.retention.check.interval.ms", 200)
        .start()
        .await
        .expect("cluster");
    let bootstrap = cluster.bootstrap_servers();
    // Tiny segments, and keep only about two of them.
    common::create_topic(
        &bootstrap,
        "retained",
        1,
        1,
        &[("segment.bytes", "1024"), ("retention.bytes", "2048")],
    )
    .await;
    let mut client = KafkaClient::connect(cluster.broker_addr(1))
        .await
        .expect("connect");
    let value = "x".repeat(300);
    for i in 0..40 {
        let (code, offset) = produce(&mut client, "retained", 0, batch(&[&value])).await;
        assert_eq!((code, offset), (0, i), "produce {i}");
    }
    let (start, end) = wait_for("retention to delete old segments", || async {
        watermarks(&bootstrap, "retained")
            .await
            .filter(|(start, _)| *start > 0)
    })
    .await
    .expect("log start moved");
    assert_eq!(end, 40, "the latest offset stays");
    assert!(start < end, "the newest data stays (start {start})");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_topic_removes_its_partition_directories() {
    let cluster = common::combined_node().await;
    let bootstrap = cluster.bootstrap_servers();
    common::create_topic(&bootstrap, "doomed", 2, 1, &[]).await;
    let mut client = KafkaClient::connect(cluster.broker_addr(1))
        .await
        .expect("connect");
    assert_eq!(produce(&mut client, "doomed", 0, batch(&["a"])).await.0, 0);
    let dirs = || {
        std::fs::read_dir(cluster.node_dir(1))
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("doomed-"))
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(dirs(), 2, "one directory per partition");

    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        common::client_config(&bootstrap).create().expect("admin");
    let options = rdkafka::admin::AdminOptions::new();
    for result in admin
        .delete_topics(&["doomed"], &options)
        .await
        .expect("DeleteTopics")
    {
        result.expect("deleted");
    }
    wait_for("the partition directories to go", || async {
        (dirs() == 0).then_some(())
    })
    .await
    .expect("directories removed");
    cluster.shutdown().await;
}
