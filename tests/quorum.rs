//! The controller quorum, end to end on in-process clusters: elections,
//! failover, partitions, crash recovery from snapshot plus log, catch-up by
//! snapshot, and refusal of foreign data directories and cluster ids.

use kraft_controller::error_codes::{INCONSISTENT_CLUSTER_ID, NOT_CONTROLLER};
use kraft_controller::{ClientError, ControllerConnection, QuorumClient};
use kraft_metadata::MetadataImage;
use kraft_proto::controller::controller_request::Body;
use kraft_proto::controller::{AlterConfigsRequest, DescribeQuorumRequest};
use kraft_proto::metadata::{ConfigRecord, ConfigResourceType};
use kraft_raft::RaftRole;
use kraft_testkit::{wait_for, TestCluster};

/// The image's contents, without its offset (no-op records move the offset
/// but change nothing else).
fn contents(image: &MetadataImage) -> Vec<kraft_proto::metadata::MetadataRecord> {
    image.to_records()
}

fn alter(key: &str, value: &str) -> Body {
    Body::AlterConfigs(AlterConfigsRequest {
        changes: vec![ConfigRecord {
            resource_type: ConfigResourceType::ConfigResourceBroker as i32,
            resource_name: String::new(),
            name: key.to_string(),
            value: Some(value.to_string()),
        }],
        validate_only: false,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_elect_exactly_one_leader() {
    let cluster = TestCluster::start(3).await.unwrap();
    let (leader, term) = cluster.wait_for_leader().await.unwrap();
    let mut leaders = 0;
    for id in cluster.voter_ids() {
        let status = cluster.status(id).await.unwrap();
        assert_eq!(
            status.leader_id,
            Some(leader),
            "node {id} follows another leader"
        );
        assert!(status.term >= term);
        if status.role == RaftRole::Leader {
            leaders += 1;
            assert_eq!(id, leader);
        }
    }
    assert_eq!(leaders, 1, "exactly one node is leader");

    let offset = cluster
        .set_config("log.retention.ms", "1000")
        .await
        .unwrap();
    for id in cluster.voter_ids() {
        let image = cluster.wait_applied(id, offset).await.unwrap();
        assert_eq!(
            image.configs().get(
                &kraft_metadata::ConfigResource::broker(""),
                "log.retention.ms"
            ),
            Some("1000")
        );
        assert_eq!(
            image.features().level("metadata.version"),
            Some(1),
            "bootstrap records"
        );
    }
    let quorum = cluster.describe_quorum().await.unwrap();
    assert_eq!(quorum.leader_id, leader);
    assert_eq!(quorum.cluster_id, cluster.cluster_id());
    assert_eq!(
        quorum.voters.iter().map(|v| v.id).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(quorum.high_watermark >= offset);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_elects_a_new_one_and_commits_continue() {
    let mut cluster = TestCluster::start(3).await.unwrap();
    let (old_leader, old_term) = cluster.wait_for_leader().await.unwrap();
    cluster.set_config("a", "1").await.unwrap();

    cluster.kill(old_leader).await;
    let (new_leader, new_term) = cluster.wait_for_leader().await.unwrap();
    assert_ne!(new_leader, old_leader);
    assert!(
        new_term > old_term,
        "epoch {new_term} must exceed {old_term}"
    );
    let offset = cluster.set_config("a", "2").await.unwrap();

    // The old leader comes back as a follower and catches up.
    cluster.restart(old_leader).await.unwrap();
    let image = cluster.wait_applied(old_leader, offset).await.unwrap();
    let survivor = cluster.wait_applied(new_leader, offset).await.unwrap();
    assert_eq!(
        image
            .configs()
            .get(&kraft_metadata::ConfigResource::broker(""), "a"),
        Some("2")
    );
    assert_eq!(contents(&image), contents(&survivor));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_cannot_commit_and_catches_up_once_healed() {
    let cluster = TestCluster::start(3).await.unwrap();
    let (leader, _) = cluster.wait_for_leader().await.unwrap();
    let before = cluster.set_config("k", "before").await.unwrap();
    let majority: Vec<i32> = cluster
        .voter_ids()
        .into_iter()
        .filter(|id| *id != leader)
        .collect();

    // Cut the leader off: it is now a minority of one.
    cluster.partition(&[leader], &majority);
    let mut minority =
        ControllerConnection::connect(cluster.controller_addr(leader), cluster.cluster_id())
            .await
            .unwrap();
    let result = tokio::time::timeout(
        kraft_testkit::DEADLINE,
        minority.call(alter("k", "minority")),
    )
    .await;
    match result {
        Ok(Err(ClientError::Server(e))) => assert_eq!(e.code, NOT_CONTROLLER, "{e}"),
        other => panic!("a minority leader must not commit: {other:?}"),
    }

    // The majority elects a leader of its own and commits.
    let mut client = QuorumClient::new(
        majority
            .iter()
            .map(|id| cluster.controller_addr(*id).to_string())
            .collect(),
        cluster.cluster_id(),
    );
    let response = client
        .call_leader(alter("k", "majority"), kraft_testkit::DEADLINE)
        .await
        .unwrap();
    let Some(kraft_proto::controller::controller_response::Body::Write(write)) = response.body
    else {
        panic!("unexpected response {response:?}");
    };
    assert!(write.offset > before);
    let old = cluster.image(leader).unwrap();
    assert!(
        old.offset() < write.offset,
        "the minority saw no commit while cut off"
    );
    let key = kraft_metadata::ConfigResource::broker("");
    assert_ne!(old.configs().get(&key, "k"), Some("minority"));

    cluster.heal();
    let healed = cluster.wait_applied(leader, write.offset).await.unwrap();
    assert_eq!(healed.configs().get(&key, "k"), Some("majority"));
    let reference = cluster
        .wait_applied(majority[0], write.offset)
        .await
        .unwrap();
    assert_eq!(contents(&healed), contents(&reference));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_recovers_from_snapshot_plus_log() {
    let mut cluster = TestCluster::builder(3)
        .prop("metadata.log.max.record.bytes.between.snapshots", 2048)
        .prop("metadata.log.segment.bytes", 4096)
        .start()
        .await
        .unwrap();
    let (leader, _) = cluster.wait_for_leader().await.unwrap();
    let mut last = 0;
    for i in 0..150 {
        last = cluster
            .set_config(&format!("key.{}", i % 40), &i.to_string())
            .await
            .unwrap();
    }
    let victim = cluster
        .voter_ids()
        .into_iter()
        .find(|id| *id != leader)
        .unwrap();
    let before = cluster.wait_applied(victim, last).await.unwrap();
    let status = cluster.status(victim).await.unwrap();
    assert!(
        status.snapshot_index > 0,
        "the victim took a snapshot before the crash"
    );

    cluster.kill(victim).await;
    cluster.restart(victim).await.unwrap();
    let after = cluster.wait_applied(victim, last).await.unwrap();
    assert_eq!(contents(&after), contents(&before));
    let reference = cluster.wait_applied(leader, last).await.unwrap();
    assert_eq!(contents(&after), contents(&reference));

    // And the whole cluster, restarted, comes back with the same state.
    for id in cluster.voter_ids() {
        cluster.kill(id).await;
    }
    for id in cluster.voter_ids() {
        cluster.restart(id).await.unwrap();
    }
    cluster.wait_for_leader().await.unwrap();
    for id in cluster.voter_ids() {
        let image = cluster.wait_applied(id, last).await.unwrap();
        assert_eq!(
            contents(&image),
            contents(&reference),
            "node {id} after a full restart"
        );
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_the_log_start_is_caught_up_by_snapshot() {
    let cluster = TestCluster::builder(3)
        .prop("metadata.log.max.record.bytes.between.snapshots", 1024)
        .prop("metadata.log.segment.bytes", 4096)
        .start()
        .await
        .unwrap();
    let (leader, _) = cluster.wait_for_leader().await.unwrap();
    let lagger = cluster
        .voter_ids()
        .into_iter()
        .find(|id| *id != leader)
        .unwrap();
    let others: Vec<i32> = cluster
        .voter_ids()
        .into_iter()
        .filter(|id| *id != lagger)
        .collect();
    cluster.partition(&[lagger], &others);
    let lagger_end = cluster.status(lagger).await.unwrap().last_index;

    // Write until the leader has compacted past everything the lagger has.
    let mut last = 0;
    let mut compacted = false;
    for i in 0..5000 {
        last = cluster
            .set_config(&format!("key.{}", i % 30), &i.to_string())
            .await
            .unwrap();
        let leader = wait_for("a majority leader", || cluster.agreed_leader(&others))
            .await
            .unwrap()
            .0;
        if cluster
            .status(leader)
            .await
            .is_some_and(|s| s.first_index > lagger_end + 1)
        {
            compacted = true;
            break;
        }
    }
    assert!(compacted, "the leader never compacted its log");

    cluster.heal();
    let caught_up = cluster.wait_applied(lagger, last).await.unwrap();
    let status = cluster.status(lagger).await.unwrap();
    assert!(
        status.snapshot_index > lagger_end,
        "the lagger installed a snapshot"
    );
    let reference = cluster.wait_applied(leader, last).await.unwrap();
    assert_eq!(contents(&caught_up), contents(&reference));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_voters_survive_two_failures() {
    let mut cluster = TestCluster::start(5).await.unwrap();
    let (leader, term) = cluster.wait_for_leader().await.unwrap();
    let follower = cluster
        .voter_ids()
        .into_iter()
        .find(|id| *id != leader)
        .unwrap();
    cluster.kill(leader).await;
    cluster.kill(follower).await;
    let (new_leader, new_term) = cluster.wait_for_leader().await.unwrap();
    assert_ne!(new_leader, leader);
    assert!(new_term > term);
    let offset = cluster.set_config("survived", "yes").await.unwrap();
    for id in cluster.running() {
        cluster.wait_applied(id, offset).await.unwrap();
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_another_cluster_are_refused() {
    let cluster = TestCluster::start(1).await.unwrap();
    cluster.wait_for_leader().await.unwrap();
    let addr = cluster.controller_addr(1);
    let mut conn = ControllerConnection::connect(addr, "AAAAAAAAAAAAAAAAAAAAAA")
        .await
        .unwrap();
    match conn.call(alter("x", "y")).await {
        Err(ClientError::Server(e)) => {
            assert_eq!(e.code, INCONSISTENT_CLUSTER_ID);
            assert!(e.message.contains(cluster.cluster_id()), "{e}");
        }
        other => panic!("expected INCONSISTENT_CLUSTER_ID, got {other:?}"),
    }
    // DescribeQuorum is the one request allowed without a cluster id.
    let mut anonymous = ControllerConnection::connect(addr, "").await.unwrap();
    anonymous
        .call(Body::DescribeQuorum(DescribeQuorumRequest {}))
        .await
        .unwrap();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_appends_no_ops_so_the_high_watermark_moves() {
    let cluster = TestCluster::start(3).await.unwrap();
    cluster.wait_for_leader().await.unwrap();
    let first = cluster.describe_quorum().await.unwrap().high_watermark;
    wait_for("the high watermark to move with no writes", || async {
        let now = cluster.describe_quorum().await.ok()?.high_watermark;
        (now >= first + 3).then_some(())
    })
    .await
    .unwrap();
    cluster.shutdown().await;
}
