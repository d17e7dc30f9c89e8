//! The CONTROLLER port under hostile peers: forged Raft messages (a
//! heartbeat from a non-voter, a heartbeat with a voter's id whose commit is
//! past the log end, a snapshot from a non-voter, a snapshot with a voter's
//! id whose data is garbage), broker RPCs from a broker that never
//! registered, and a frame header announcing 512 MiB. After each attack the
//! quorum must still elect, commit and serve, and no node may have lost its
//! Raft thread or its controller.
//!
//! Raft frames are one-way; the tests send a DescribeQuorum on the same
//! connection right after them. The listener serves a connection's frames
//! in order and DescribeQuorum asks the Raft thread through the same queue
//! the forged messages went into, so its answer means the Raft thread has
//! already taken them.

use bytes::{BufMut, BytesMut};
use kafka_protocol::ResponseError;
use kraft_proto::controller::controller_request::Body;
use kraft_proto::controller::{
    AlterPartitionItem, AlterPartitionRequest, BrokerHeartbeatRequest, ControllerRequest,
    ControllerResponse, DescribeQuorumRequest,
};
use kraft_proto::raft::RaftMessages;
use kraft_raft::{Message, MessageType};
use kraft_rpc::{error_code, ClientError};
use kraft_testkit::{wait_for, TestCluster, DEADLINE};
use prost::Message as _;
use protobuf::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// raft-rs ids are Kafka node ids plus one (`kraft_raft::driver::raft_id`).
fn raft_id(node: i32) -> u64 {
    node as u64 + 1
}

fn raft_message(kind: MessageType, from: u64, to: i32, term: u64) -> Message {
    let mut msg = Message::default();
    msg.set_msg_type(kind);
    msg.from = from;
    msg.to = raft_id(to);
    msg.term = term;
    msg
}

async fn write_frame(stream: &mut TcpStream, request: &ControllerRequest) {
    let body = request.encode_to_vec();
    let mut frame = BytesMut::with_capacity(4 + body.len());
    frame.put_u32(body.len() as u32);
    frame.put_slice(&body);
    stream.write_all(&frame).await.expect("write a frame");
}

async fn read_response(stream: &mut TcpStream) -> Option<ControllerResponse> {
    let len = stream.read_u32().await.ok()?;
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body).await.ok()?;
    ControllerResponse::decode(&body[..]).ok()
}

/// Sends `msgs` to node `to` as one Raft frame, then a DescribeQuorum on the
/// same connection; returns once the Raft thread has taken the messages (or
/// stopped: the answer then says so).
async fn send_raft(cluster: &TestCluster, to: i32, msgs: &[Message]) {
    let mut stream = TcpStream::connect(cluster.controller_addr(to))
        .await
        .expect("connect");
    let raft = RaftMessages {
        messages: msgs
            .iter()
            .map(|m| m.write_to_bytes().expect("encode").into())
            .collect(),
    };
    let frame = |id, body| ControllerRequest {
        correlation_id: id,
        cluster_id: cluster.cluster_id().to_string(),
        body: Some(body),
    };
    write_frame(&mut stream, &frame(0, Body::Raft(raft))).await;
    write_frame(
        &mut stream,
        &frame(1, Body::DescribeQuorum(DescribeQuorumRequest {})),
    )
    .await;
    let answered = tokio::time::timeout(DEADLINE, read_response(&mut stream)).await;
    assert!(
        matches!(answered, Ok(Some(_))),
        "node {to} did not answer after the forged raft frame"
    );
}

/// After an attack: every voter still has its Raft thread and controller,
/// the quorum agrees on a leader, and a write commits and reaches every
/// voter's image.
async fn assert_quorum_serves(cluster: &TestCluster, key: &str) {
    for id in cluster.voter_ids() {
        assert!(
            cluster.status(id).await.is_some(),
            "node {id}'s raft thread has stopped"
        );
        assert_eq!(cluster.fatal(id), None, "node {id} stopped on its own");
    }
    cluster.wait_for_leader().await.expect("a leader");
    let offset = cluster.set_config(key, "1").await.expect("a write commits");
    for id in cluster.voter_ids() {
        let image = cluster.wait_applied(id, offset).await.expect("applied");
        assert_eq!(
            image
                .configs()
                .get(&kraft_metadata::ConfigResource::broker(""), key),
            Some("1")
        );
    }
}

/// A follower of the current leader, and the leader's term.
async fn follower(cluster: &TestCluster) -> (i32, i32, u64) {
    let (leader, term) = cluster.wait_for_leader().await.expect("a leader");
    let follower = cluster
        .voter_ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    (leader, follower, term)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_from_a_non_voter_with_a_commit_past_the_log_end_is_dropped() {
    let cluster = TestCluster::start(3).await.unwrap();
    let (_, target, term) = follower(&cluster).await;
    let mut msg = raft_message(MessageType::MsgHeartbeat, raft_id(99), target, term + 1);
    msg.commit = 1_000_000;
    send_raft(&cluster, target, &[msg]).await;
    let status = cluster.status(target).await.expect("raft still runs");
    assert!(status.term <= term + 1);
    assert_ne!(status.leader_id, Some(99), "a non-voter became leader");
    assert_quorum_serves(&cluster, "after.non.voter.heartbeat").await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_with_a_voters_id_and_a_commit_past_the_log_end_is_dropped() {
    let cluster = TestCluster::start(3).await.unwrap();
    let (leader, target, term) = follower(&cluster).await;
    // Same term, from the real leader's id: only the commit is a lie.
    let mut msg = raft_message(MessageType::MsgHeartbeat, raft_id(leader), target, term);
    msg.commit = 1_000_000;
    send_raft(&cluster, target, &[msg.clone()]).await;
    // And a higher term, which would make the target follow the liar.
    msg.term = term + 1;
    send_raft(&cluster, target, &[msg]).await;
    let status = cluster.status(target).await.expect("raft still runs");
    assert!(status.commit < 1_000_000);
    assert_quorum_serves(&cluster, "after.voter.heartbeat").await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_that_rewrites_committed_entries_is_dropped() {
    let cluster = TestCluster::start(3).await.unwrap();
    let (leader, target, _) = follower(&cluster).await;
    let offset = cluster.set_config("before.append", "1").await.unwrap();
    cluster.wait_applied(target, offset).await.unwrap();
    // An append anchored at the target's last committed entry whose one
    // entry is numbered 1 (committed long ago) with another term: raft-rs
    // finds the "conflict" at 1, below its commit index, and panics.
    let status = cluster.status(target).await.expect("status");
    let mut msg = raft_message(MessageType::MsgAppend, raft_id(leader), target, status.term);
    msg.index = status.commit;
    msg.log_term = status.term;
    msg.commit = status.commit;
    msg.mut_entries().push(kraft_raft::Entry {
        index: 1,
        term: status.term + 7,
        ..Default::default()
    });
    send_raft(&cluster, target, &[msg]).await;
    assert_quorum_serves(&cluster, "after.append").await;
    cluster.shutdown().await;
}

fn forged_snapshot(from: u64, to: i32, term: u64, voters: &[i32], data: &[u8]) -> Message {
    let mut msg = raft_message(MessageType::MsgSnapshot, from, to, term + 1);
    let snapshot = msg.mut_snapshot();
    snapshot.data = data.to_vec().into();
    let meta = snapshot.mut_metadata();
    meta.index = 1_000;
    meta.term = term + 1;
    meta.mut_conf_state().voters = voters.iter().map(|id| raft_id(*id)).collect();
    msg
}

/// The checkpoint files in node `id`'s metadata log directory.
fn checkpoints(cluster: &TestCluster, id: i32) -> Vec<String> {
    let dir = cluster.node_dir(id).join("__cluster_metadata-0");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".checkpoint"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_snapshot_is_never_persisted_and_the_node_restarts() {
    let mut cluster = TestCluster::start(3).await.unwrap();
    let (leader, target, term) = follower(&cluster).await;
    let before = checkpoints(&cluster, target);
    let voters = cluster.voter_ids();
    // From a non-voter, and from the leader's id with data that is no
    // metadata snapshot.
    let non_voter = forged_snapshot(raft_id(99), target, term, &voters, b"garbage");
    send_raft(&cluster, target, &[non_voter]).await;
    let garbage = forged_snapshot(raft_id(leader), target, term, &voters, b"garbage");
    send_raft(&cluster, target, &[garbage]).await;
    assert_eq!(
        checkpoints(&cluster, target),
        before,
        "a forged snapshot was written"
    );
    assert_quorum_serves(&cluster, "after.snapshot").await;
    // The node still starts from what it has on disk.
    cluster
        .restart(target)
        .await
        .expect("the node starts again");
    assert_quorum_serves(&cluster, "after.snapshot.restart").await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_rpcs_from_an_unregistered_broker_are_refused() {
    let cluster = TestCluster::start(3).await.unwrap();
    cluster.wait_for_leader().await.unwrap();
    let mut client = cluster.client();
    let heartbeat = Body::BrokerHeartbeat(BrokerHeartbeatRequest {
        broker_id: 42,
        broker_epoch: 7,
        current_metadata_offset: 1_000_000,
        ..Default::default()
    });
    let refused = client.call_leader(heartbeat, DEADLINE).await;
    assert_server_error(refused, ResponseError::BrokerIdNotRegistered);
    let alter = Body::AlterPartition(AlterPartitionRequest {
        broker_id: 42,
        broker_epoch: 7,
        partitions: vec![AlterPartitionItem {
            topic_id: vec![1; 16].into(),
            partition: 0,
            leader_epoch: 0,
            partition_epoch: 0,
            new_isr: vec![42],
        }],
    });
    let refused = client.call_leader(alter, DEADLINE).await;
    assert_server_error(refused, ResponseError::StaleBrokerEpoch);
    assert_quorum_serves(&cluster, "after.unregistered").await;
    cluster.shutdown().await;
}

fn assert_server_error(result: Result<ControllerResponse, ClientError>, want: ResponseError) {
    match result {
        Err(ClientError::Server(e)) => assert_eq!(e.code, error_code(want), "{e}"),
        other => panic!("expected {want:?}, got {other:?}"),
    }
}

/// This process's resident set, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A 4-byte header announcing 512 MiB: the connection is closed at once
/// (no frame is that large), and no memory is reserved for it. Bound: the
/// resident set may grow by at most 64 MiB across 16 such connections
/// (reserving up front would take 8 GiB of address space and, once touched,
/// resident memory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_announcing_512_mib_closes_the_connection_without_reserving_it() {
    let cluster = TestCluster::start(3).await.unwrap();
    cluster.wait_for_leader().await.unwrap();
    let before = rss_kib();
    for _ in 0..16 {
        let mut stream = TcpStream::connect(cluster.controller_addr(1))
            .await
            .expect("connect");
        stream
            .write_all(&(512u32 * 1024 * 1024).to_be_bytes())
            .await
            .expect("write the header");
        // Some body bytes, as a slow sender would.
        stream.write_all(&[0u8; 4096]).await.expect("write");
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(DEADLINE, stream.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "the connection stayed open after a 512 MiB header: {read:?}"
        );
    }
    let after = rss_kib();
    assert!(
        after < before + 64 * 1024,
        "VmRSS grew from {before} KiB to {after} KiB"
    );
    assert_quorum_serves(&cluster, "after.big.header").await;
    cluster.shutdown().await;
}

/// The quorum keeps serving while a connection sits idle mid-frame; the
/// idle timeout is tested in `kraft-controller`'s listener tests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_frame_does_not_stop_the_quorum() {
    let cluster = TestCluster::start(3).await.unwrap();
    let (leader, _) = cluster.wait_for_leader().await.unwrap();
    let mut stream = TcpStream::connect(cluster.controller_addr(leader))
        .await
        .expect("connect");
    stream.write_all(&1000u32.to_be_bytes()).await.unwrap();
    stream.write_all(&[0u8; 10]).await.unwrap();
    assert_quorum_serves(&cluster, "after.unfinished").await;
    let offset = cluster.set_config("after.unfinished.2", "1").await.unwrap();
    wait_for("the write to be applied", || async {
        cluster.image(leader).filter(|i| i.offset() >= offset)
    })
    .await
    .unwrap();
    drop(stream);
    cluster.shutdown().await;
}
