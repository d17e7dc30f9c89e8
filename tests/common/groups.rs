//! Consumer-group helpers for tests: the raw group protocol through
//! kraft's minimal client (FindCoordinator, JoinGroup with the member-id
//! round trip, SyncGroup, Heartbeat, LeaveGroup, OffsetFetch,
//! DescribeGroups), and an rdkafka consumer subscribed with a `group.id`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest, GroupId,
    HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, OffsetFetchRequest,
    SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use kraft_kafka_client::KafkaClient;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::Message;

use super::{client_config, DEADLINE};

const MEMBER_ID_REQUIRED: i16 = 79;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// The coordinator of `group` (node id, host:port), asking the brokers of
/// `bootstrap` (comma-separated) in turn until one names it.
pub async fn find_coordinator(bootstrap: &str, group: &str) -> (i32, String) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        for addr in bootstrap.split(',') {
            let Ok(mut client) = KafkaClient::connect(addr).await else {
                continue;
            };
            let request = FindCoordinatorRequest::default()
                .with_key_type(0)
                .with_coordinator_keys(vec![s(group)]);
            if let Ok(response) = client.send(4, &request).await {
                if let Some(c) = response.coordinators.first() {
                    if c.error_code == 0 {
                        return (c.node_id.0, format!("{}:{}", c.host.as_str(), c.port));
                    }
                }
            }
        }
        assert!(Instant::now() < deadline, "no coordinator for {group}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A connection to the coordinator of `group`, once it has loaded the
/// group's partition of `__consumer_offsets`. FindCoordinator names a
/// coordinator as soon as it leads that partition; until the load ends its
/// group requests answer COORDINATOR_LOAD_IN_PROGRESS, which real clients
/// retry, so the helper waits for DescribeGroups to answer NONE.
pub async fn coordinator(bootstrap: &str, group: &str) -> KafkaClient {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (_, addr) = find_coordinator(bootstrap, group).await;
        if let Ok(mut client) = KafkaClient::connect(addr.as_str()).await {
            let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]);
            if let Ok(response) = client.send(5, &request).await {
                if response.groups.first().is_some_and(|g| g.error_code == 0) {
                    return client;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "the coordinator of {group} never finished loading"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One JoinGroup (v5) for `member_id` ("" the first time).
pub async fn join_once(
    client: &mut KafkaClient,
    group: &str,
    member_id: &str,
    session_ms: i32,
    rebalance_ms: i32,
) -> JoinGroupResponse {
    let request = JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(session_ms)
        .with_rebalance_timeout_ms(rebalance_ms)
        .with_member_id(s(member_id))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"subscription"))]);
    client.send(5, &request).await.expect("JoinGroup")
}

/// Joins as a new member: the MEMBER_ID_REQUIRED round trip, then the
/// join that waits for the rebalance.
pub async fn join(
    client: &mut KafkaClient,
    group: &str,
    session_ms: i32,
    rebalance_ms: i32,
) -> JoinGroupResponse {
    let first = join_once(client, group, "", session_ms, rebalance_ms).await;
    assert_eq!(first.error_code, MEMBER_ID_REQUIRED, "{first:?}");
    let response = join_once(client, group, &first.member_id, session_ms, rebalance_ms).await;
    assert_eq!(response.error_code, 0, "{response:?}");
    response
}

/// SyncGroup (v3); the leader passes every member's assignment.
pub async fn sync(
    client: &mut KafkaClient,
    group: &str,
    member_id: &str,
    generation: i32,
    assignments: &[(String, Bytes)],
) -> SyncGroupResponse {
    let request = SyncGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation)
        .with_member_id(s(member_id))
        .with_assignments(
            assignments
                .iter()
                .map(|(m, a)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(m))
                        .with_assignment(a.clone())
                })
                .collect(),
        );
    client.send(3, &request).await.expect("SyncGroup")
}

/// Heartbeat (v3): the error code.
pub async fn heartbeat(
    client: &mut KafkaClient,
    group: &str,
    member_id: &str,
    generation: i32,
) -> i16 {
    let request = HeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation)
        .with_member_id(s(member_id));
    client
        .send(3, &request)
        .await
        .expect("Heartbeat")
        .error_code
}

/// LeaveGroup (v3) for one member: its error code.
pub async fn leave(client: &mut KafkaClient, group: &str, member_id: &str) -> i16 {
    let request = LeaveGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_members(vec![MemberIdentity::default().with_member_id(s(member_id))]);
    let response = client.send(3, &request).await.expect("LeaveGroup");
    response
        .members
        .first()
        .map_or(response.error_code, |m| m.error_code)
}

/// Every committed offset of `group`: (topic, partition) -> offset, or the
/// group-level error code.
pub async fn committed(
    client: &mut KafkaClient,
    group: &str,
) -> Result<BTreeMap<(String, i32), i64>, i16> {
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(None);
    let response = client.send(7, &request).await.expect("OffsetFetch");
    if response.error_code != 0 {
        return Err(response.error_code);
    }
    Ok(response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    (t.name.0.to_string(), p.partition_index),
                    p.committed_offset,
                )
            })
        })
        .collect())
}

/// DescribeGroups (v5) of one group.
pub async fn describe(client: &mut KafkaClient, group: &str) -> DescribeGroupsResponse {
    let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]);
    client.send(5, &request).await.expect("DescribeGroups")
}

/// The committed offsets of `group` as its coordinator (found through
/// `bootstrap`) reports them, retrying while it loads or moves.
pub async fn committed_offsets(bootstrap: &str, group: &str) -> BTreeMap<(String, i32), i64> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let mut client = coordinator(bootstrap, group).await;
        if let Ok(offsets) = committed(&mut client, group).await {
            return offsets;
        }
        assert!(Instant::now() < deadline, "no offsets for {group}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Heartbeats through the coordinator of `group` until it answers NONE
/// (it may still be loading, or not yet the coordinator).
pub async fn heartbeat_accepted(bootstrap: &str, group: &str, member_id: &str, generation: i32) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let mut client = coordinator(bootstrap, group).await;
        let code = heartbeat(&mut client, group, member_id, generation).await;
        if code == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "heartbeat of {member_id} still refused with {code}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An rdkafka consumer in `group` (earliest, manual commits, short
/// session and heartbeat interval) subscribed to `topic`.
pub fn group_consumer(bootstrap: &str, group: &str, topic: &str) -> BaseConsumer {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "300")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

/// (partition, offset) of each message.
pub fn positions(messages: &[OwnedMessage]) -> Vec<(i32, i64)> {
    let mut out: Vec<(i32, i64)> = messages
        .iter()
        .map(|m| (m.partition(), m.offset()))
        .collect();
    out.sort_unstable();
    out
}
