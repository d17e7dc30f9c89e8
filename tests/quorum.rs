//! The controller quorum, end to end on in-process clusters: elections,
//! failover, partitions, crash recovery from snapshot plus log, catch-up by
//! snapshot, and refusal of foreign data directories and cluster ids.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use kraft_metadata::MetadataImage;
use kraft_proto::controller::controller_request::Body;
use kraft_proto::controller::DescribeQuorumRequest;
use kraft_raft::RaftRole;
use kraft_rpc::{error_code, ClientError, ControllerConnection, QuorumClient};
use kraft_testkit::{set_broker_config, wait_for, TestCluster};

/// The image's contents, without its offset (no-op records move the offset
/// but change nothing else).
fn contents(image: &MetadataImage) -> Vec<kraft_proto::metadata::MetadataRecord> {
    image.to_records()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_elect_exactly_one_leader() {
    let cluster = TestCluster::start(3).await.unwrap();
    // wait_for_leader returns once every node names the same leader for the
    // same term and exactly one of them is in the leader role.
    let (leader, _) = cluster.wait_for_leader().await.unwrap();
    // Raft's election safety, sampled: never two leaders in one term.
    let mut leaders_by_term: BTreeMap<u64, BTreeSet<i32>> = BTreeMap::new();
    for _ in 0..50 {
        for id in cluster.voter_ids() {
            let status = cluster.status(id).await.unwrap();
            if status.role == RaftRole::Leader {
                leaders_by_term.entry(status.term).or_default().insert(id);
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    for (term, leaders) in &leaders_by_term {
        assert_eq!(leaders.len(), 1, "term {term} had leaders {leaders:?}");
    }

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
        minority.call(set_broker_config("k", "minority")),
    )
    .await;
    match result {
        Ok(Err(ClientError::Server(e))) => {
            assert_eq!(e.code, error_code(ResponseError::NotController), "{e}")
        }
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
        .call_leader(set_broker_config("k", "majority"), kraft_testkit::DEADLINE)
        .await
        .unwrap();
    let Some(kraft_proto::controller::controller_response::Body::Write(_)) = response.body else {
        panic!("unexpected response {response:?}");
    };
    let committed = response.committed_offset;
    assert!(committed > before);
    let old = cluster.image(leader).unwrap();
    assert!(
        old.offset() < committed,
        "the minority saw no commit while cut off"
    );
    let key = kraft_metadata::ConfigResource::broker("");
    assert_ne!(old.configs().get(&key, "k"), Some("minority"));

    cluster.heal();
    let healed = cluster.wait_applied(leader, committed).await.unwrap();
    assert_eq!(healed.configs().get(&key, "k"), Some("majority"));
    let reference = cluster.wait_applied(majority[0], committed).await.unwrap();
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
    match conn.call(set_broker_config("x", "y")).await {
        Err(ClientError::Server(e)) => {
            assert_eq!(e.code, error_code(ResponseError::InconsistentClusterId));
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

/// What a broker will do: fetch the committed log from offset 1, get the
/// snapshot first because the log was compacted, and end with the
/// controllers' image; it is listed as an observer meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_catches_up_by_snapshot_then_log() {
    use kraft_metadata::{snapshot, MetadataDelta};
    use kraft_proto::controller::controller_response::Body as Resp;
    use kraft_proto::controller::FetchMetadataRequest;
    use kraft_proto::metadata::RecordBatch;
    use kraft_proto::Message as _;

    let cluster = TestCluster::builder(3)
        .prop("metadata.log.max.record.bytes.between.snapshots", 1024)
        .start()
        .await
        .unwrap();
    let mut last = 0;
    for i in 0..100 {
        last = cluster
            .set_config(&format!("key.{}", i % 10), &i.to_string())
            .await
            .unwrap();
    }
    let (leader, _) = cluster.wait_for_leader().await.unwrap();
    wait_for("a snapshot and a compacted log", || async {
        cluster
            .status(leader)
            .await
            .filter(|s| s.first_index > 1)
            .map(|_| ())
    })
    .await
    .unwrap();

    let mut conn =
        ControllerConnection::connect(cluster.controller_addr(leader), cluster.cluster_id())
            .await
            .unwrap();
    let fetch = |offset| {
        Body::FetchMetadata(FetchMetadataRequest {
            node_id: 100,
            offset,
            max_bytes: 4096,
            max_wait_ms: 0,
        })
    };
    let Some(Resp::FetchMetadata(first)) = conn.call(fetch(1)).await.unwrap().body else {
        panic!()
    };
    assert!(
        first.snapshot_required,
        "offset 1 is below the log start {}",
        first.log_start_offset
    );

    // Follow the log the way a broker does: load a snapshot whenever the
    // log start has passed the next offset (the leader keeps snapshotting
    // and compacting while we read), replay batches otherwise.
    let mut image = kraft_metadata::MetadataImage::empty();
    let mut snapshots_loaded = 0;
    while image.offset() < last {
        let Some(Resp::FetchMetadata(page)) =
            conn.call(fetch(image.offset() + 1)).await.unwrap().body
        else {
            panic!("not a FetchMetadata response")
        };
        if page.snapshot_required {
            if let Some(bytes) = download_snapshot(&mut conn, page.snapshot_offset).await {
                let (header, loaded) = snapshot::decode(&bytes).unwrap();
                assert_eq!(header.offset, page.snapshot_offset);
                image = loaded;
                snapshots_loaded += 1;
            }
            continue;
        }
        let mut delta = MetadataDelta::new(image.clone());
        for batch in page.batches {
            if !batch.records.is_empty() {
                delta
                    .replay_batch(batch.offset, &RecordBatch::decode(batch.records).unwrap())
                    .unwrap();
            }
            delta.set_offset(batch.offset);
        }
        image = delta.apply();
    }
    assert!(snapshots_loaded >= 1);
    let reference = cluster.wait_applied(leader, last).await.unwrap();
    assert_eq!(contents(&image), contents(&reference));

    // A fetch from the next offset reports how far this observer has come.
    conn.call(fetch(image.offset() + 1)).await.unwrap();
    let quorum = cluster.describe_quorum().await.unwrap();
    let observer = quorum
        .observers
        .iter()
        .find(|o| o.id == 100)
        .expect("the fetcher is an observer");
    assert_eq!(observer.log_end_offset, image.offset());
    cluster.shutdown().await;
}

/// A long poll past the end waits, and returns as soon as a write commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_fetch_past_the_end_waits_for_the_next_commit() {
    use kraft_proto::controller::controller_response::Body as Resp;
    use kraft_proto::controller::FetchMetadataRequest;

    let cluster = TestCluster::builder(1)
        .prop("metadata.max.idle.interval.ms", 0)
        .start()
        .await
        .unwrap();
    let offset = cluster.set_config("a", "1").await.unwrap();
    let mut conn = ControllerConnection::connect(cluster.controller_addr(1), cluster.cluster_id())
        .await
        .unwrap();
    let request = Body::FetchMetadata(FetchMetadataRequest {
        node_id: 7,
        offset: offset + 1,
        max_bytes: 0,
        max_wait_ms: 60_000,
    });
    let poll = tokio::spawn(async move { conn.call(request).await });
    let next = cluster.set_config("a", "2").await.unwrap();
    let response = tokio::time::timeout(kraft_testkit::DEADLINE, poll)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let Some(Resp::FetchMetadata(page)) = response.body else {
        panic!()
    };
    assert_eq!(page.batches.first().map(|b| b.offset), Some(next));
    cluster.shutdown().await;
}

/// Downloads snapshot `offset` in 500-byte chunks; None if the controller
/// replaced it with a newer one meanwhile.
async fn download_snapshot(conn: &mut ControllerConnection, offset: u64) -> Option<Vec<u8>> {
    use kraft_proto::controller::controller_response::Body as Resp;
    use kraft_proto::controller::FetchSnapshotRequest;

    let mut bytes = Vec::new();
    loop {
        let request = FetchSnapshotRequest {
            snapshot_offset: offset,
            position: bytes.len() as u64,
            max_bytes: 500,
        };
        match conn.call(Body::FetchSnapshot(request)).await {
            Ok(response) => {
                let Some(Resp::FetchSnapshot(chunk)) = response.body else {
                    panic!("not a FetchSnapshot response")
                };
                bytes.extend_from_slice(&chunk.chunk);
                if bytes.len() as u64 >= chunk.total_size {
                    return Some(bytes);
                }
            }
            Err(ClientError::Server(e))
                if e.code == error_code(ResponseError::SnapshotNotFound) =>
            {
                return None
            }
            Err(e) => panic!("FetchSnapshot failed: {e}"),
        }
    }
}

/// A user's operation commits as one Raft entry, however many records it
/// has, so it is applied all or nothing (only the controller's own
/// per-partition writes, like fencing, are split).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_of_25000_records_commits_as_one_entry() {
    use kraft_proto::controller::AlterConfigsRequest;
    use kraft_proto::metadata::{ConfigRecord, ConfigResourceType};

    let cluster = TestCluster::builder(1)
        .prop("metadata.max.idle.interval.ms", 0)
        .start()
        .await
        .unwrap();
    let before = cluster.set_config("marker", "1").await.unwrap();
    let request = Body::AlterConfigs(AlterConfigsRequest {
        changes: (0..25_000)
            .map(|i| ConfigRecord {
                resource_type: ConfigResourceType::ConfigResourceBroker as i32,
                resource_name: String::new(),
                name: format!("bulk.{i}"),
                value: Some(i.to_string()),
            })
            .collect(),
        validate_only: false,
    });
    let response = cluster
        .client()
        .call_leader(request, kraft_testkit::DEADLINE)
        .await
        .unwrap();
    let offset = response.committed_offset;
    assert_eq!(offset, before + 1, "one operation, one entry");
    let image = cluster.wait_applied(1, offset).await.unwrap();
    let defaults = kraft_metadata::ConfigResource::broker("");
    assert_eq!(image.configs().resource(&defaults).unwrap().len(), 25_001);
    cluster.shutdown().await;
}
