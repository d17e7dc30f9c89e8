//! Consumer groups end to end: rdkafka consumers that `subscribe()` with a
//! `group.id` share partitions, rebalance and resume from committed
//! offsets; a member that stops heartbeating is expired (raw protocol);
//! offsets and group state survive a restart of the coordinator broker and
//! of every broker.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::groups::{
    committed_offsets, coordinator, describe, find_coordinator, group_consumer, heartbeat,
    heartbeat_accepted, join, join_once, leave, positions, sync,
};
use common::kraftctl::kraftctl_async;
use common::{create_topic, poll_messages, produce_all, producer, Outgoing};
use kraft_testkit::{wait_for, TestCluster};
use rdkafka::consumer::{CommitMode, Consumer};

const REBALANCE_IN_PROGRESS: i16 = 27;
const UNKNOWN_MEMBER_ID: i16 = 25;

/// One combined node with groups tuned for tests: `__consumer_offsets` on
/// the one broker, 4 partitions, no initial rebalance delay.
async fn single_node() -> TestCluster {
    TestCluster::builder(1)
        .combined()
        .prop("offsets.topic.replication.factor", 1)
        .prop("offsets.topic.num.partitions", 4)
        .prop("group.initial.rebalance.delay.ms", 0)
        .prop("group.min.session.timeout.ms", 100)
        .start()
        .await
        .expect("cluster starts")
}

fn messages(prefix: &str, n: usize) -> Vec<Outgoing> {
    (0..n)
        .map(|i| Outgoing::keyed(format!("{prefix}-{i}"), format!("value {i}")))
        .collect()
}

/// Reads `count` messages through a fresh subscriber of `group`, commits
/// its positions and closes it. Returns (partition, offset) of each.
async fn consume_and_commit(
    bootstrap: &str,
    group: &str,
    topic: &str,
    count: usize,
) -> Vec<(i32, i64)> {
    let (bootstrap, group, topic) = (bootstrap.to_string(), group.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let consumer = group_consumer(&bootstrap, &group, &topic);
        let got = poll_messages(&consumer, count);
        consumer
            .commit_consumer_state(CommitMode::Sync)
            .expect("commit");
        positions(&got)
    })
    .await
    .expect("consumer thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_consumer_resumes_from_the_committed_offsets() {
    let cluster = single_node().await;
    let bootstrap = cluster.bootstrap_servers();
    create_topic(&bootstrap, "events", 2, 1, &[]).await;
    let producer = producer(&bootstrap, &[]);
    let first: BTreeSet<(i32, i64)> = produce_all(&producer, "events", &messages("a", 100))
        .await
        .into_iter()
        .collect();

    let read = consume_and_commit(&bootstrap, "resume", "events", 100).await;
    assert_eq!(read.into_iter().collect::<BTreeSet<_>>(), first);
    let committed = committed_offsets(&bootstrap, "resume").await;
    for p in 0..2 {
        let end = first.iter().filter(|(q, _)| *q == p).count() as i64;
        assert_eq!(
            committed.get(&("events".to_string(), p)),
            Some(&end),
            "partition {p}"
        );
    }

    let second: BTreeSet<(i32, i64)> = produce_all(&producer, "events", &messages("b", 50))
        .await
        .into_iter()
        .collect();
    let read = consume_and_commit(&bootstrap, "resume", "events", 50).await;
    assert_eq!(
        read.into_iter().collect::<BTreeSet<_>>(),
        second,
        "the second consumer reads exactly what came after the commit"
    );
    cluster.shutdown().await;
}

/// A subscriber on its own thread, publishing its current assignment.
struct Member {
    assignment: Arc<Mutex<BTreeSet<i32>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Member {
    fn start(bootstrap: &str, group: &str, topic: &str) -> Member {
        let assignment = Arc::new(Mutex::new(BTreeSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (bootstrap, group, topic) =
            (bootstrap.to_string(), group.to_string(), topic.to_string());
        let (seen, stopped) = (assignment.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let consumer = group_consumer(&bootstrap, &group, &topic);
            while !stopped.load(Ordering::Acquire) {
                let _ = consumer.poll(Duration::from_millis(50));
                if let Ok(list) = consumer.assignment() {
                    let now: BTreeSet<i32> =
                        list.elements().iter().map(|e| e.partition()).collect();
                    *seen.lock().unwrap_or_else(|e| e.into_inner()) = now;
                }
            }
            // Dropping the consumer closes it: it leaves the group.
        });
        Member {
            assignment,
            stop,
            thread: Some(thread),
        }
    }

    fn assignment(&self) -> BTreeSet<i32> {
        self.assignment
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("member thread");
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_share_a_topic_and_one_takes_all_when_the_other_leaves() {
    let cluster = single_node().await;
    let bootstrap = cluster.bootstrap_servers();
    create_topic(&bootstrap, "shared", 4, 1, &[]).await;
    let all: BTreeSet<i32> = (0..4).collect();
    let a = Member::start(&bootstrap, "sharing", "shared");
    let mut b = Member::start(&bootstrap, "sharing", "shared");
    wait_for("both members to hold half of the partitions", || {
        let (x, y) = (a.assignment(), b.assignment());
        let split = !x.is_empty()
            && !y.is_empty()
            && x.is_disjoint(&y)
            && x.union(&y).copied().collect::<BTreeSet<_>>() == all;
        async move { split.then_some(()) }
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}: a has {:?}, b has {:?}",
            a.assignment(),
            b.assignment()
        )
    });
    b.stop();
    wait_for("the remaining member to hold every partition", || {
        let whole = a.assignment() == all;
        async move { whole.then_some(()) }
    })
    .await
    .expect("rebalanced onto one member");
    drop(a);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_heartbeating_is_expired() {
    let cluster = TestCluster::builder(1)
        .combined()
        .prop("offsets.topic.replication.factor", 1)
        .prop("offsets.topic.num.partitions", 4)
        // Long enough for both members to join the first generation.
        .prop("group.initial.rebalance.delay.ms", 1500)
        .prop("group.min.session.timeout.ms", 100)
        .start()
        .await
        .expect("cluster starts");
    let bootstrap = cluster.bootstrap_servers();
    let group = "expiry";
    let session_ms = 1000;
    let mut a = coordinator(&bootstrap, group).await;
    let mut b = coordinator(&bootstrap, group).await;
    let (ja, jb) = tokio::join!(
        join(&mut a, group, session_ms, 10_000),
        join(&mut b, group, session_ms, 10_000)
    );
    assert_eq!(ja.generation_id, jb.generation_id, "one generation");
    let generation = ja.generation_id;
    let (leader_client, leader_join, silent_client, silent_join) = if ja.leader == ja.member_id {
        (&mut a, &ja, &mut b, &jb)
    } else {
        (&mut b, &jb, &mut a, &ja)
    };
    let everyone: Vec<(String, Bytes)> = leader_join
        .members
        .iter()
        .map(|m| (m.member_id.to_string(), Bytes::from_static(b"assigned")))
        .collect();
    assert_eq!(everyone.len(), 2, "the leader sees both members");
    let leader_id = leader_join.member_id.to_string();
    let silent_id = silent_join.member_id.to_string();
    let (s1, s2) = tokio::join!(
        sync(leader_client, group, &leader_id, generation, &everyone),
        sync(silent_client, group, &silent_id, generation, &[])
    );
    assert_eq!((s1.error_code, s2.error_code), (0, 0));

    // The follower stays silent; the leader heartbeats until told to rejoin.
    let mut rejoin = false;
    for _ in 0..600 {
        let code = heartbeat(leader_client, group, &leader_id, generation).await;
        if code == REBALANCE_IN_PROGRESS {
            rejoin = true;
            break;
        }
        assert_eq!(code, 0, "heartbeat");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rejoin, "the silent member's expiry starts a rebalance");
    let again = join_once(leader_client, group, &leader_id, session_ms, 10_000).await;
    assert_eq!(again.error_code, 0);
    assert_eq!(again.generation_id, generation + 1);
    let members: Vec<String> = again
        .members
        .iter()
        .map(|m| m.member_id.to_string())
        .collect();
    assert_eq!(
        members,
        vec![leader_id.clone()],
        "only the live member is left"
    );
    let mut other = coordinator(&bootstrap, group).await;
    assert_eq!(
        heartbeat(&mut other, group, &silent_id, generation).await,
        UNKNOWN_MEMBER_ID
    );
    let described = describe(&mut other, group).await;
    assert_eq!(described.groups[0].members.len(), 1);
    cluster.shutdown().await;
}

/// Three combined nodes; `__consumer_offsets` keeps Kafka's replication
/// factor of 3.
async fn three_nodes() -> TestCluster {
    TestCluster::builder(3)
        .combined()
        .prop("offsets.topic.num.partitions", 4)
        .prop("group.initial.rebalance.delay.ms", 0)
        .prop("group.min.session.timeout.ms", 100)
        .start()
        .await
        .expect("cluster starts")
}

/// The Kafka addresses of the running brokers, comma-separated.
fn running_brokers(cluster: &TestCluster) -> String {
    cluster
        .running()
        .iter()
        .map(|id| cluster.broker_addr(*id).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_and_group_state_survive_restarts() {
    let mut cluster = three_nodes().await;
    let bootstrap = cluster.bootstrap_servers();
    let group = "durable";
    create_topic(&bootstrap, "ledger", 2, 3, &[]).await;
    let producer = producer(&bootstrap, &[]);
    produce_all(&producer, "ledger", &messages("a", 100)).await;
    consume_and_commit(&bootstrap, group, "ledger", 100).await;
    let committed: BTreeMap<(String, i32), i64> = committed_offsets(&bootstrap, group).await;
    assert_eq!(committed.values().sum::<i64>(), 100);

    // A raw member makes the group Stable in some generation.
    let mut member = coordinator(&bootstrap, group).await;
    let joined = join(&mut member, group, 30_000, 30_000).await;
    let me = joined.member_id.to_string();
    let assignment = vec![(me.clone(), Bytes::from_static(b"mine"))];
    let synced = sync(&mut member, group, &me, joined.generation_id, &assignment).await;
    assert_eq!(synced.error_code, 0);

    // Kill the coordinator: another broker loads the partition.
    let (old, _) = find_coordinator(&bootstrap, group).await;
    cluster.kill(old).await;
    let alive = running_brokers(&cluster);
    wait_for("another broker to coordinate the group", || {
        let alive = alive.clone();
        async move { (find_coordinator(&alive, group).await.0 != old).then_some(()) }
    })
    .await
    .expect("coordinator moved");
    assert_eq!(committed_offsets(&alive, group).await, committed);
    heartbeat_accepted(&alive, group, &me, joined.generation_id).await;
    let mut member = coordinator(&alive, group).await;
    let described = describe(&mut member, group).await;
    assert_eq!(described.groups[0].group_state.as_str(), "Stable");
    assert_eq!(
        described.groups[0].members[0].member_assignment,
        Bytes::from_static(b"mine")
    );
    assert_eq!(leave(&mut member, group, &me).await, 0);
    cluster.restart(old).await.expect("restart");
    cluster.wait_for_brokers().await.expect("brokers up");

    // Every broker goes down, then comes back.
    let ids = cluster.running();
    for id in &ids {
        cluster.kill(*id).await;
    }
    for id in &ids {
        cluster.restart(*id).await.expect("restart");
    }
    cluster.wait_for_brokers().await.expect("brokers up");
    let bootstrap = cluster.bootstrap_servers();
    assert_eq!(committed_offsets(&bootstrap, group).await, committed);
    let mut client = coordinator(&bootstrap, group).await;
    let described = describe(&mut client, group).await;
    assert_eq!(described.groups[0].group_state.as_str(), "Empty");
    assert_eq!(described.groups[0].protocol_type.as_str(), "consumer");

    // A new subscriber resumes where the first one committed.
    let fresh: BTreeSet<(i32, i64)> = produce_all(&producer, "ledger", &messages("b", 20))
        .await
        .into_iter()
        .collect();
    let read = consume_and_commit(&bootstrap, group, "ledger", 20).await;
    assert_eq!(read.into_iter().collect::<BTreeSet<_>>(), fresh);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraftctl_lists_describes_and_deletes_groups() {
    let cluster = single_node().await;
    let bootstrap = cluster.bootstrap_servers();
    let s = bootstrap.as_str();
    create_topic(s, "audit", 2, 1, &[]).await;
    let producer = producer(s, &[]);
    produce_all(&producer, "audit", &messages("a", 30)).await;
    consume_and_commit(s, "auditors", "audit", 30).await;
    produce_all(&producer, "audit", &messages("b", 5)).await;

    let (ok, out, err) = kraftctl_async(&[
        "--bootstrap-server",
        s,
        "groups",
        "list",
        "--output",
        "json",
    ])
    .await;
    assert!(ok, "{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(listed[0]["group_id"], "auditors");
    assert_eq!(listed[0]["state"], "Empty");

    let (ok, out, err) = kraftctl_async(&[
        "--bootstrap-server",
        s,
        "groups",
        "describe",
        "auditors",
        "--output",
        "json",
    ])
    .await;
    assert!(ok, "{err}");
    let described: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(described["protocol_type"], "consumer");
    let partitions = described["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 2);
    let lag: i64 = partitions
        .iter()
        .map(|p| p["lag"].as_i64().unwrap_or(-1))
        .sum();
    assert_eq!(lag, 5, "the 5 messages produced after the commit");
    let (ok, table, _) =
        kraftctl_async(&["--bootstrap-server", s, "groups", "describe", "auditors"]).await;
    assert!(ok && table.contains("LogEndOffset"), "{table}");

    let (ok, _, err) =
        kraftctl_async(&["--bootstrap-server", s, "groups", "delete", "auditors"]).await;
    assert!(ok, "{err}");
    let (ok, _, err) =
        kraftctl_async(&["--bootstrap-server", s, "groups", "describe", "auditors"]).await;
    assert!(!ok && err.contains("GROUP_ID_NOT_FOUND"), "{err}");
    let (ok, _, err) =
        kraftctl_async(&["--bootstrap-server", s, "groups", "delete", "auditors"]).await;
    assert!(!ok && err.contains("GROUP_ID_NOT_FOUND"), "{err}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offsets_topic_waits_for_enough_brokers() {
    use kafka_protocol::messages::FindCoordinatorRequest;
    use kafka_protocol::protocol::StrBytes;
    // Kafka's default offsets.topic.replication.factor (3) on one broker.
    let cluster = TestCluster::builder(1)
        .combined()
        .start()
        .await
        .expect("cluster starts");
    let mut client = kraft_kafka_client::KafkaClient::connect(cluster.broker_addr(1))
        .await
        .expect("connect");
    let request = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_static_str("g"))
        .with_key_type(0);
    let response = client.send(2, &request).await.expect("FindCoordinator");
    assert_eq!(response.error_code, 15, "COORDINATOR_NOT_AVAILABLE");
    let message = response
        .error_message
        .map(|m| m.to_string())
        .unwrap_or_default();
    assert!(
        message.contains("offsets.topic.replication.factor"),
        "{message}"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_comes_back_without_a_rebalance() {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::{GroupId, HeartbeatRequest, JoinGroupRequest};
    use kafka_protocol::protocol::StrBytes;
    const FENCED_INSTANCE_ID: i16 = 82;
    let cluster = single_node().await;
    let bootstrap = cluster.bootstrap_servers();
    let group = "static";
    let s = |v: &str| StrBytes::from_string(v.to_string());
    let join_request = |member: &str| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_session_timeout_ms(30_000)
            .with_rebalance_timeout_ms(30_000)
            .with_member_id(s(member))
            .with_group_instance_id(Some(s("instance-1")))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::from_static(b"subscription"))])
    };
    let mut client = coordinator(&bootstrap, group).await;
    let first = client.send(5, &join_request("")).await.expect("JoinGroup");
    assert_eq!(
        first.error_code, 0,
        "a static member needs no member-id round trip"
    );
    let old_id = first.member_id.to_string();
    let assignment = vec![(old_id.clone(), Bytes::from_static(b"p0"))];
    let synced = sync(
        &mut client,
        group,
        &old_id,
        first.generation_id,
        &assignment,
    )
    .await;
    assert_eq!(synced.error_code, 0);

    // The process restarts: same instance id, no member id.
    let mut restarted = coordinator(&bootstrap, group).await;
    let again = restarted
        .send(5, &join_request(""))
        .await
        .expect("JoinGroup");
    assert_eq!(again.error_code, 0);
    assert_eq!(again.generation_id, first.generation_id, "no rebalance");
    assert_ne!(again.member_id.as_str(), old_id, "a new member id");
    let synced = sync(
        &mut restarted,
        group,
        &again.member_id,
        again.generation_id,
        &[],
    )
    .await;
    assert_eq!(
        synced.assignment,
        Bytes::from_static(b"p0"),
        "its assignment kept"
    );

    // The old incarnation is fenced.
    let beat = HeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(first.generation_id)
        .with_member_id(s(&old_id))
        .with_group_instance_id(Some(s("instance-1")));
    let response = client.send(3, &beat).await.expect("Heartbeat");
    assert_eq!(response.error_code, FENCED_INSTANCE_ID);
    cluster.shutdown().await;
}
