//! Preferred-leader election on the testkit cluster: on request (Kafka's
//! ElectLeaders through a broker, and `kraftctl topics elect-leaders`), and
//! automatically (`auto.leader.rebalance.enable`), both after a reordering
//! of the replicas and after the preferred broker died and came back.
//!
//! Cluster: controller 1, brokers 2, 3 and 4.

mod common;

use common::kraftctl::kraftctl_json;
use common::replication::{create_assigned, kafka, wait_partition};
use kraft::kafka_admin::replication::{self, ElectionType, ReassignmentPlan};
use kraft_testkit::TestCluster;

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_REQUEST: i16 = 42;
const ELECTION_NOT_NEEDED: i16 = 84;
const PREFERRED_LEADER_NOT_AVAILABLE: i16 = 80;

fn named(topic: &str, partitions: &[i32]) -> Vec<(String, Vec<i32>)> {
    vec![(topic.to_string(), partitions.to_vec())]
}

/// Makes broker `preferred` the first replica of `topic`-0 (led by another)
/// by reordering its replicas, which takes effect at once.
async fn reorder(cluster: &TestCluster, topic: &str, replicas: &[i32]) {
    let mut client = kafka(cluster, 2).await;
    let plan = [ReassignmentPlan {
        topic: topic.to_string(),
        partition: 0,
        replicas: Some(replicas.to_vec()),
    }];
    let outcomes = replication::alter_reassignments(&mut client, &plan)
        .await
        .expect("AlterPartitionReassignments");
    assert_eq!(outcomes[0].error, None);
    wait_partition(cluster, topic, 0, "reordered", |p| p.replicas == replicas).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elect_leaders_moves_leadership_to_the_preferred_replica() {
    let cluster = TestCluster::builder(1)
        .brokers(3)
        .prop("auto.leader.rebalance.enable", "false")
        .start()
        .await
        .unwrap();
    create_assigned(&cluster, "t", &[&[2, 3]]).await;
    let before = wait_partition(&cluster, "t", 0, "led by 2", |p| p.leader == 2).await;
    reorder(&cluster, "t", &[3, 2]).await;
    let p = wait_partition(&cluster, "t", 0, "still led by 2", |p| p.leader == 2).await;
    assert_eq!(
        p.leader_epoch, before.leader_epoch,
        "a reorder elects nobody"
    );

    let mut client = kafka(&cluster, 4).await;
    let outcomes = replication::elect_leaders(
        &mut client,
        ElectionType::Preferred,
        Some(&named("t", &[0])),
    )
    .await
    .unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(
        (outcomes[0].error_code, outcomes[0].error.clone()),
        (NONE, None)
    );
    // The broker answered after its cache had the change; the controller
    // has it too.
    let after = wait_partition(&cluster, "t", 0, "led by 3", |p| p.leader == 3).await;
    assert_eq!(after.leader_epoch, before.leader_epoch + 1);
    assert_eq!(after.isr, vec![2, 3]);

    // Asked again: not needed. Unknown partitions and unclean elections
    // get their own codes.
    let again = replication::elect_leaders(
        &mut client,
        ElectionType::Preferred,
        Some(&[
            ("t".to_string(), vec![0, 7]),
            ("missing".to_string(), vec![0]),
        ]),
    )
    .await
    .unwrap();
    let codes: Vec<(String, i32, i16)> = again
        .iter()
        .map(|o| (o.topic.clone(), o.partition, o.error_code))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("missing".to_string(), 0, UNKNOWN_TOPIC_OR_PARTITION),
            ("t".to_string(), 0, ELECTION_NOT_NEEDED),
            ("t".to_string(), 7, UNKNOWN_TOPIC_OR_PARTITION),
        ]
    );
    let unclean =
        replication::elect_leaders(&mut client, ElectionType::Unclean, Some(&named("t", &[0])))
            .await
            .unwrap();
    assert_eq!(unclean[0].error_code, INVALID_REQUEST);
    // Every partition: nothing to do, so nothing listed.
    let all = replication::elect_leaders(&mut client, ElectionType::Preferred, None)
        .await
        .unwrap();
    assert!(all.is_empty(), "{all:?}");

    // A preferred replica that is down cannot take over.
    reorder(&cluster, "t", &[2, 3]).await;
    let mut cluster = cluster;
    cluster.kill(2).await;
    wait_partition(&cluster, "t", 0, "2 fenced out of the ISR", |p| {
        p.isr == vec![3]
    })
    .await;
    let (ok, json) = kraftctl_json(&cluster, 4, &["topics", "elect-leaders", "--topic", "t"]).await;
    assert!(!ok, "a failed election is a failed command: {json}");
    assert_eq!(json[0]["partition"], 0);
    assert_eq!(json[0]["error_code"], PREFERRED_LEADER_NOT_AVAILABLE);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraftctl_elect_leaders_reports_each_partition() {
    let cluster = TestCluster::builder(1)
        .brokers(3)
        .prop("auto.leader.rebalance.enable", "false")
        .start()
        .await
        .unwrap();
    create_assigned(&cluster, "k", &[&[2, 3], &[3, 4]]).await;
    wait_partition(&cluster, "k", 1, "created", |p| p.leader == 3).await;
    reorder(&cluster, "k", &[3, 2]).await;

    let (ok, json) = kraftctl_json(&cluster, 2, &["topics", "elect-leaders"]).await;
    assert!(ok, "{json}");
    // Every partition was asked for: only the one that moved is listed.
    assert_eq!(json.as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(json[0]["topic"], "k");
    assert_eq!(json[0]["error"], serde_json::Value::Null);
    wait_partition(&cluster, "k", 0, "led by 3", |p| p.leader == 3).await;

    let (ok, json) = kraftctl_json(
        &cluster,
        2,
        &[
            "topics",
            "elect-leaders",
            "--topic",
            "k",
            "--partition",
            "1",
        ],
    )
    .await;
    assert!(ok, "not needed is not a failure: {json}");
    assert_eq!(json[0]["error_code"], ELECTION_NOT_NEEDED);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_rebalance_follows_a_reordering() {
    let cluster = TestCluster::builder(1)
        .brokers(3)
        .prop("leader.imbalance.check.interval.ms", 200)
        .start()
        .await
        .unwrap();
    create_assigned(&cluster, "r", &[&[2, 3, 4]]).await;
    let before = wait_partition(&cluster, "r", 0, "led by 2", |p| p.leader == 2).await;
    reorder(&cluster, "r", &[4, 3, 2]).await;
    let after = wait_partition(&cluster, "r", 0, "led by 4", |p| p.leader == 4).await;
    assert_eq!(after.leader_epoch, before.leader_epoch + 1);
    cluster.shutdown().await;
}

/// NEEDS FOLLOWER FETCHING: the restarted broker must catch up and be put
/// back in the ISR by the leader (AlterPartition) before it can lead again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_returns_to_a_restarted_preferred_broker() {
    let mut cluster = TestCluster::builder(1)
        .brokers(3)
        .prop("leader.imbalance.check.interval.ms", 300)
        .start()
        .await
        .unwrap();
    create_assigned(&cluster, "back", &[&[2, 3], &[3, 2]]).await;
    wait_partition(&cluster, "back", 0, "led by 2", |p| p.leader == 2).await;

    cluster.kill(2).await;
    let moved = wait_partition(&cluster, "back", 0, "led by 3", |p| p.leader == 3).await;
    assert_eq!(moved.isr, vec![3]);

    cluster.restart(2).await.unwrap();
    cluster.wait_for_brokers().await.unwrap();
    wait_partition(&cluster, "back", 0, "2 back in the ISR", |p| {
        p.isr.contains(&2)
    })
    .await;
    let back = wait_partition(&cluster, "back", 0, "led by 2 again", |p| p.leader == 2).await;
    assert_eq!(back.leader_epoch, moved.leader_epoch + 1);
    // Partition 1 never moved.
    wait_partition(&cluster, "back", 1, "led by 3", |p| p.leader == 3).await;
    cluster.shutdown().await;
}
