//! Brokers joining the quorum, seen through an unmodified Kafka client
//! (librdkafka, via `rdkafka`): topic admin, fencing of dead brokers,
//! controlled shutdown, whole-cluster restarts, combined mode, and refusal
//! of a broker from another cluster.

use std::time::Duration;

use kraft_broker::BrokerState;
use kraft_metadata::MetadataImage;
use kraft_testkit::{wait_for, TestCluster};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .create()
        .expect("admin client")
}

/// A metadata-only client that talks to exactly one broker.
fn metadata_client(broker: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("broker.address.family", "v4")
        .set("group.id", "metadata-only")
        .create()
        .expect("consumer")
}

async fn create(
    admin: &AdminClient<DefaultClientContext>,
    topic: &NewTopic<'_>,
) -> Result<String, RDKafkaErrorCode> {
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics([topic], &options)
        .await
        .expect("CreateTopics request");
    match results.into_iter().next().expect("one result") {
        Ok(name) => Ok(name),
        Err((_, code)) => Err(code),
    }
}

/// (leader, replicas, isr) of one partition.
type PartitionView = (i32, Vec<i32>, Vec<i32>);

/// Each partition as one broker answers Metadata.
fn partitions_seen_by(broker: &str, topic: &str) -> Option<Vec<PartitionView>> {
    let client = metadata_client(broker);
    let metadata = client
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .ok()?;
    let t = metadata.topics().iter().find(|t| t.name() == topic)?;
    if t.error().is_some() {
        return None;
    }
    let mut parts: Vec<_> = t
        .partitions()
        .iter()
        .map(|p| (p.id(), p.leader(), p.replicas().to_vec(), p.isr().to_vec()))
        .collect();
    parts.sort_by_key(|p| p.0);
    Some(parts.into_iter().map(|(_, l, r, i)| (l, r, i)).collect())
}

fn leaders_of(image: &MetadataImage, broker: i32) -> usize {
    image
        .topics()
        .topics()
        .flat_map(|t| t.partitions().values())
        .filter(|p| p.leader == broker)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_created_by_a_kafka_client_appear_on_every_broker() {
    let cluster = TestCluster::builder(3).brokers(3).start().await.unwrap();
    let admin = admin(&cluster.bootstrap_servers());
    create(
        &admin,
        &NewTopic::new("orders", 6, TopicReplication::Fixed(3)),
    )
    .await
    .unwrap();

    for broker in cluster.broker_ids() {
        // CreateTopics answers once the broker that forwarded it has the
        // topic; the others learn it from the metadata log moments later.
        let addr = cluster.broker_addr(broker).to_string();
        let parts = wait_for("the broker to know the topic", || {
            let addr = addr.clone();
            async move {
                tokio::task::spawn_blocking(move || partitions_seen_by(&addr, "orders"))
                    .await
                    .ok()
                    .flatten()
                    .filter(|p| p.len() == 6)
            }
        })
        .await
        .expect("the broker knows the topic");
        assert_eq!(parts.len(), 6, "broker {broker}");
        let mut leaders = std::collections::BTreeMap::new();
        for (leader, replicas, isr) in &parts {
            assert_eq!(replicas.len(), 3);
            assert_eq!(replicas[0], *leader, "the preferred leader leads");
            let mut sorted = replicas.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![4, 5, 6], "replicas are the brokers");
            assert_eq!(isr.len(), 3);
            *leaders.entry(*leader).or_insert(0) += 1;
        }
        assert_eq!(
            leaders.values().copied().collect::<Vec<_>>(),
            vec![2, 2, 2],
            "leaders spread evenly"
        );
    }
    // The brokers tail the metadata log: the quorum lists them as observers
    // with how far behind they are.
    let quorum = wait_for("every broker listed as an observer", || async {
        let q = cluster.describe_quorum().await.ok()?;
        let ids: Vec<i32> = q.observers.iter().map(|o| o.id).collect();
        (ids == vec![4, 5, 6]).then_some(q)
    })
    .await
    .unwrap();
    for observer in &quorum.observers {
        assert!(observer.log_end_offset > 0 && observer.last_caught_up_ms_ago >= 0);
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_invalid_creates_get_kafkas_error_codes() {
    let cluster = TestCluster::builder(1).brokers(3).start().await.unwrap();
    let admin = admin(&cluster.bootstrap_servers());
    create(&admin, &NewTopic::new("dup", 1, TopicReplication::Fixed(1)))
        .await
        .unwrap();
    let cases = [
        (
            NewTopic::new("dup", 1, TopicReplication::Fixed(1)),
            RDKafkaErrorCode::TopicAlreadyExists,
        ),
        (
            NewTopic::new("bad name!", 1, TopicReplication::Fixed(1)),
            RDKafkaErrorCode::InvalidTopic,
        ),
        (
            NewTopic::new("too-many-replicas", 1, TopicReplication::Fixed(4)),
            RDKafkaErrorCode::InvalidReplicationFactor,
        ),
        (
            NewTopic::new("no-partitions", 0, TopicReplication::Fixed(1)),
            RDKafkaErrorCode::InvalidPartitions,
        ),
        (
            NewTopic::new("bad-config", 1, TopicReplication::Fixed(1))
                .set("cleanup.policy", "sometimes"),
            RDKafkaErrorCode::InvalidConfig,
        ),
    ];
    for (topic, expected) in &cases {
        assert_eq!(
            create(&admin, topic).await,
            Err(*expected),
            "{}",
            topic.name
        );
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_broker_is_fenced_its_leaderships_move_and_a_restart_unfences_it() {
    let mut cluster = TestCluster::builder(1).brokers(3).start().await.unwrap();
    let admin = admin(&cluster.bootstrap_servers());
    create(&admin, &NewTopic::new("t", 6, TopicReplication::Fixed(3)))
        .await
        .unwrap();
    let victim = 3;
    let image = cluster.image(1).unwrap();
    assert!(leaders_of(&image, victim) > 0, "the victim leads something");

    cluster.kill(victim).await;
    // broker.session.timeout.ms is 1.5 s in the testkit.
    let fenced = wait_for(
        "the dead broker to be fenced and lose its leaderships",
        || async {
            let image = cluster.image(1)?;
            let fenced = image.cluster().broker(victim)?.fenced;
            (fenced && leaders_of(&image, victim) == 0).then_some(image)
        },
    )
    .await
    .unwrap();
    for topic in fenced.topics().topics() {
        for p in topic.partitions().values() {
            assert!(p.leader >= 0, "another in-sync replica took over");
            assert!(!p.isr.contains(&victim), "the dead broker left the ISR");
        }
    }

    cluster.restart(victim).await.unwrap();
    wait_for("the restarted broker to be unfenced", || async {
        let image = cluster.image(1)?;
        let state = *cluster.broker(victim)?.state().borrow();
        (!image.cluster().broker(victim)?.fenced && matches!(state, BrokerState::Running { .. }))
            .then_some(())
    })
    .await
    .unwrap();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controlled_shutdown_moves_leaderships_before_the_broker_stops() {
    let mut cluster = TestCluster::builder(1)
        .brokers(3)
        // Long enough that only controlled shutdown can explain a move.
        .prop("broker.session.timeout.ms", 60_000)
        .start()
        .await
        .unwrap();
    let admin = admin(&cluster.bootstrap_servers());
    create(&admin, &NewTopic::new("t", 6, TopicReplication::Fixed(3)))
        .await
        .unwrap();
    let leaving = 2;
    assert!(leaders_of(&cluster.image(1).unwrap(), leaving) > 0);

    cluster.stop(leaving).await;
    // By the time stop() returned, the controller had moved everything.
    let image = cluster.image(1).unwrap();
    assert_eq!(leaders_of(&image, leaving), 0);
    assert!(image.cluster().broker(leaving).unwrap().fenced);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_survives_a_restart_of_the_whole_cluster() {
    let mut cluster = TestCluster::builder(3).brokers(2).start().await.unwrap();
    let admin = admin(&cluster.bootstrap_servers());
    create(
        &admin,
        &NewTopic::new("kept", 4, TopicReplication::Fixed(2)),
    )
    .await
    .unwrap();
    drop(admin);
    let ids: Vec<i32> = cluster.running();
    for id in &ids {
        cluster.kill(*id).await;
    }
    for id in &ids {
        cluster.restart(*id).await.unwrap();
    }
    for broker in cluster.broker_ids() {
        let addr = cluster.broker_addr(broker).to_string();
        let parts = wait_for("the topic after a full restart", || {
            let addr = addr.clone();
            async move {
                tokio::task::spawn_blocking(move || partitions_seen_by(&addr, "kept"))
                    .await
                    .ok()
                    .flatten()
                    .filter(|p| p.iter().all(|(leader, _, _)| *leader >= 0))
            }
        })
        .await
        .unwrap();
        assert_eq!(parts.len(), 4);
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn combined_mode_serves_kafka_clients() {
    let cluster = TestCluster::builder(1).combined().start().await.unwrap();
    let admin = admin(&cluster.bootstrap_servers());
    create(
        &admin,
        &NewTopic::new("solo", 2, TopicReplication::Fixed(1)),
    )
    .await
    .unwrap();
    let addr = cluster.broker_addr(1).to_string();
    let parts = tokio::task::spawn_blocking(move || partitions_seen_by(&addr, "solo"))
        .await
        .unwrap()
        .expect("topic");
    assert_eq!(parts, vec![(1, vec![1], vec![1]), (1, vec![1], vec![1])]);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_formatted_for_another_cluster_is_refused() {
    let cluster = TestCluster::builder(1).start().await.unwrap();
    let refused = cluster
        .start_foreign_broker(50)
        .await
        .expect("the node starts, then is refused");
    let reason = tokio::time::timeout(kraft_testkit::DEADLINE, refused.wait_fatal())
        .await
        .expect("refused in time");
    assert!(reason.contains("INCONSISTENT_CLUSTER_ID"), "{reason}");
    refused.kill().await;
    assert!(
        cluster.image(1).unwrap().cluster().broker(50).is_none(),
        "it never registered"
    );
    cluster.shutdown().await;
}

/// The highest offset among the checkpoints in `dir`.
fn newest_checkpoint(dir: &std::path::Path) -> Option<u64> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".checkpoint"))
        .filter_map(|n| n.get(..20)?.parse().ok())
        .max()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_broker_starts_from_its_local_snapshot() {
    let mut cluster = TestCluster::builder(1)
        .brokers(1)
        .prop("metadata.log.max.record.bytes.between.snapshots", 256)
        .start()
        .await
        .unwrap();
    let admin = admin(&cluster.bootstrap_servers());
    for i in 0..10 {
        create(
            &admin,
            &NewTopic::new(&format!("t{i}"), 10, TopicReplication::Fixed(1)),
        )
        .await
        .unwrap();
    }
    drop(admin);
    let broker = 2;
    let offset = cluster.broker(broker).unwrap().cache().offset();
    let dir = cluster.node_dir(broker).join("__cluster_metadata-0");
    wait_for("a local snapshot covering the topics", || async {
        newest_checkpoint(&dir).filter(|o| *o >= offset)
    })
    .await
    .unwrap();

    // With every controller down, the restarted broker still knows the
    // topics: it loaded its own snapshot.
    cluster.kill(1).await;
    cluster.restart(broker).await.unwrap();
    let image = cluster.broker(broker).unwrap().cache().image();
    assert!(image.offset() >= offset);
    assert_eq!(image.topics().len(), 10);
    cluster.shutdown().await;
}
