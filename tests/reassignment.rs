//! Partition reassignment on the testkit cluster, through a broker's Kafka
//! API (AlterPartitionReassignments / ListPartitionReassignments) and
//! `kraftctl topics reassign | reassignments`.
//!
//! Cluster: controller 1, brokers 2 to 5.

mod common;

use std::time::{Duration, Instant};

use common::client_config;
use common::kraftctl::kraftctl_json;
use common::replication::{create_assigned, kafka, partition_state, wait_partition};
use kraft::kafka_admin::replication::{self, ReassignmentPlan};
use kraft_testkit::TestCluster;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;

fn plan(topic: &str, partition: i32, replicas: Option<&[i32]>) -> ReassignmentPlan {
    ReassignmentPlan {
        topic: topic.to_string(),
        partition,
        replicas: replicas.map(<[i32]>::to_vec),
    }
}

fn sorted(mut ids: Vec<i32>) -> Vec<i32> {
    ids.sort_unstable();
    ids
}

async fn produce(cluster: &TestCluster, topic: &str, payloads: &[String]) {
    let producer: FutureProducer = client_config(&cluster.bootstrap_servers())
        .set("acks", "all")
        .set("message.timeout.ms", "60000")
        .create()
        .expect("producer");
    for payload in payloads {
        let record = FutureRecord::<(), _>::to(topic)
            .partition(0)
            .payload(payload);
        producer
            .send(record, Duration::from_secs(60))
            .await
            .expect("acknowledged");
    }
}

/// Reads `topic`-0 from the beginning through broker `broker` only.
async fn consume_from(
    cluster: &TestCluster,
    broker: i32,
    topic: &str,
    count: usize,
) -> Vec<String> {
    let bootstrap = cluster.broker_addr(broker).to_string();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = client_config(&bootstrap)
            .set("group.id", "reassignment-check")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "100")
            .create()
            .expect("consumer");
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&topic, 0, Offset::Beginning)
            .expect("assignment");
        consumer.assign(&assignment).expect("assign");
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut out = Vec::new();
        while out.len() < count {
            assert!(Instant::now() < deadline, "read {} of {count}", out.len());
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    out.push(String::from_utf8_lossy(m.payload().unwrap_or(&[])).to_string())
                }
                Some(Err(e)) => eprintln!("consumer: {e}"),
                None => {}
            }
        }
        out
    })
    .await
    .expect("consumer thread")
}

/// NEEDS FOLLOWER FETCHING: brokers 4 and 5 must copy the partition and be
/// added to the ISR by the leader (AlterPartition) for the move to finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_moves_to_new_brokers_with_its_data() {
    let cluster = TestCluster::builder(1).brokers(4).start().await.unwrap();
    create_assigned(&cluster, "moving", &[&[2, 3]]).await;
    wait_partition(&cluster, "moving", 0, "led by 2", |p| p.leader == 2).await;
    let payloads: Vec<String> = (0..20).map(|i| format!("message {i}")).collect();
    produce(&cluster, "moving", &payloads).await;

    let mut client = kafka(&cluster, 2).await;
    let started =
        replication::alter_reassignments(&mut client, &[plan("moving", 0, Some(&[4, 5]))])
            .await
            .unwrap();
    assert_eq!(started[0].error, None);
    let during = wait_partition(&cluster, "moving", 0, "reassigning", |p| {
        p.replicas.len() == 4 || p.replicas == vec![4, 5]
    })
    .await;
    if during.replicas.len() == 4 {
        assert_eq!(during.replicas, vec![4, 5, 2, 3]);
        assert_eq!(during.adding_replicas, vec![4, 5]);
        assert_eq!(during.removing_replicas, vec![2, 3]);
    }

    let partitions = vec![("moving".to_string(), vec![0])];
    let mut changes = 0;
    let done = tokio::time::timeout(
        Duration::from_secs(90),
        replication::wait_for_reassignments(
            &mut client,
            &partitions,
            Duration::from_millis(200),
            |_| changes += 1,
        ),
    )
    .await
    .expect("the reassignment finishes")
    .unwrap();
    assert!(changes >= 1);
    assert!(!done[0].in_progress);

    let end = wait_partition(&cluster, "moving", 0, "on 4 and 5", |p| {
        p.replicas == vec![4, 5] && p.adding_replicas.is_empty()
    })
    .await;
    assert_eq!(sorted(end.isr.clone()), vec![4, 5]);
    assert!(end.removing_replicas.is_empty());
    assert!([4, 5].contains(&end.leader), "leader {}", end.leader);
    let got = consume_from(&cluster, end.leader, "moving", payloads.len()).await;
    assert_eq!(got, payloads);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_reassignment_is_listed_and_can_be_cancelled() {
    let mut cluster = TestCluster::builder(1).brokers(4).start().await.unwrap();
    create_assigned(&cluster, "stuck", &[&[2, 3]]).await;
    wait_partition(&cluster, "stuck", 0, "led by 2", |p| p.leader == 2).await;
    // Broker 5 stays registered but is down: it can never join the ISR.
    cluster.kill(5).await;

    let (ok, json) = kraftctl_json(
        &cluster,
        2,
        &[
            "topics",
            "reassign",
            "--topic",
            "stuck",
            "--partition",
            "0",
            "--replicas",
            "2,5",
            "--no-wait",
        ],
    )
    .await;
    assert!(ok, "{json}");
    let moving = wait_partition(&cluster, "stuck", 0, "reassigning", |p| {
        !p.adding_replicas.is_empty()
    })
    .await;
    assert_eq!(
        (
            moving.replicas.clone(),
            moving.adding_replicas.clone(),
            moving.removing_replicas.clone()
        ),
        (vec![2, 5, 3], vec![5], vec![3])
    );
    assert_eq!(moving.leader, 2);

    let (ok, listed) = kraftctl_json(&cluster, 3, &["topics", "reassignments"]).await;
    assert!(ok, "{listed}");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["topic"], "stuck");
    assert_eq!(listed[0]["adding_replicas"], serde_json::json!([5]));
    assert_eq!(listed[0]["removing_replicas"], serde_json::json!([3]));

    let (ok, json) = kraftctl_json(
        &cluster,
        2,
        &[
            "topics",
            "reassign",
            "--topic",
            "stuck",
            "--partition",
            "0",
            "--cancel",
        ],
    )
    .await;
    assert!(ok, "{json}");
    let back = wait_partition(&cluster, "stuck", 0, "back on 2 and 3", |p| {
        p.adding_replicas.is_empty()
    })
    .await;
    assert_eq!(back.replicas, vec![2, 3]);
    assert!(back.removing_replicas.is_empty());
    assert_eq!(back.leader, 2);
    let (_, listed) = kraftctl_json(&cluster, 3, &["topics", "reassignments"]).await;
    assert_eq!(listed, serde_json::json!([]));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_reassignments_get_kafkas_error_codes() {
    let cluster = TestCluster::builder(1).brokers(4).start().await.unwrap();
    create_assigned(&cluster, "e", &[&[2, 3]]).await;
    wait_partition(&cluster, "e", 0, "created", |p| p.leader == 2).await;
    let mut client = kafka(&cluster, 3).await;
    let outcomes = replication::alter_reassignments(
        &mut client,
        &[
            plan("e", 0, Some(&[4, 4])),
            plan("e", 5, Some(&[4])),
            plan("nope", 0, Some(&[4])),
        ],
    )
    .await
    .unwrap();
    let codes: Vec<i16> = outcomes.iter().map(|o| o.error_code).collect();
    assert_eq!(
        codes,
        vec![
            INVALID_REPLICA_ASSIGNMENT,
            UNKNOWN_TOPIC_OR_PARTITION,
            UNKNOWN_TOPIC_OR_PARTITION
        ]
    );
    for replicas in [&[9][..], &[][..]] {
        let outcome =
            replication::alter_reassignments(&mut client, &[plan("e", 0, Some(replicas))])
                .await
                .unwrap();
        assert_eq!(
            outcome[0].error_code, INVALID_REPLICA_ASSIGNMENT,
            "{replicas:?}"
        );
    }
    let cancel = replication::alter_reassignments(&mut client, &[plan("e", 0, None)])
        .await
        .unwrap();
    assert_eq!(cancel[0].error_code, NO_REASSIGNMENT_IN_PROGRESS);
    assert!(cancel[0]
        .error
        .as_deref()
        .unwrap_or("")
        .starts_with("NO_REASSIGNMENT_IN_PROGRESS"));
    // Nothing changed.
    let p = partition_state(&cluster, 1, "e", 0).unwrap();
    assert_eq!(p.replicas, vec![2, 3]);
    assert!(p.adding_replicas.is_empty() && p.removing_replicas.is_empty());
    cluster.shutdown().await;
}
