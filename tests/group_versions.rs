//! Every served version of every group API against a running broker, with
//! kraft's minimal client: each request is encoded at that version, the
//! broker's answer must decode at it and carry the expected error codes.

mod common;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kraft_kafka_client::KafkaClient;
use kraft_testkit::TestCluster;

use common::create_topic;
use common::groups::{coordinator, join, sync};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn g(v: &str) -> GroupId {
    GroupId(s(v))
}

/// Commits `offset` on partition 0 of `t` at `version`; the code.
async fn commit(
    c: &mut KafkaClient,
    group: &str,
    member: &str,
    gen: i32,
    version: i16,
    offset: i64,
) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(g(group))
        .with_generation_id_or_member_epoch(gen)
        .with_member_id(s(member))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)
                .with_committed_metadata(Some(s("md")))])]);
    let response = c.send(version, &request).await.expect("OffsetCommit");
    response.topics[0].partitions[0].error_code
}

/// The committed offset of `t`-0 read at `version`.
async fn fetch(c: &mut KafkaClient, group: &str, version: i16) -> i64 {
    if version >= 8 {
        let request =
            OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(g(group))
                .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                    .with_name(TopicName(s("t")))
                    .with_partition_indexes(vec![0])]))]);
        let response = c.send(version, &request).await.expect("OffsetFetch");
        assert_eq!(response.groups[0].error_code, 0);
        return response.groups[0].topics[0].partitions[0].committed_offset;
    }
    let request = OffsetFetchRequest::default()
        .with_group_id(g(group))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partition_indexes(vec![0])]));
    let response = c.send(version, &request).await.expect("OffsetFetch");
    assert_eq!(response.error_code, 0);
    response.topics[0].partitions[0].committed_offset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_version_of_the_group_apis_answers() {
    let cluster = TestCluster::builder(1)
        .combined()
        .prop("offsets.topic.replication.factor", 1)
        .prop("offsets.topic.num.partitions", 2)
        .prop("group.initial.rebalance.delay.ms", 0)
        .start()
        .await
        .expect("cluster starts");
    let bootstrap = cluster.bootstrap_servers();
    create_topic(&bootstrap, "t", 1, 1, &[]).await;
    let mut c = coordinator(&bootstrap, "main").await;
    for version in 0..=6 {
        let request = if version >= 4 {
            FindCoordinatorRequest::default().with_coordinator_keys(vec![s("main")])
        } else {
            FindCoordinatorRequest::default().with_key(s("main"))
        };
        let response = c.send(version, &request).await.expect("FindCoordinator");
        let (code, node) = match response.coordinators.first() {
            Some(k) => (k.error_code, k.node_id.0),
            None => (response.error_code, response.node_id.0),
        };
        assert_eq!((code, node), (0, 1), "FindCoordinator v{version}");
    }

    // A member in a Stable group.
    let joined = join(&mut c, "main", 10_000, 10_000).await;
    let (me, gen) = (joined.member_id.to_string(), joined.generation_id);
    let mine = [(me.clone(), Bytes::from_static(b"x"))];
    assert_eq!(sync(&mut c, "main", &me, gen, &mine).await.error_code, 0);
    for version in 0..=4 {
        let request = HeartbeatRequest::default()
            .with_group_id(g("main"))
            .with_generation_id(gen)
            .with_member_id(s(&me));
        let response = c.send(version, &request).await.expect("Heartbeat");
        assert_eq!(response.error_code, 0, "Heartbeat v{version}");
    }
    for version in 2..=9 {
        let offset = i64::from(version) * 10;
        assert_eq!(
            commit(&mut c, "main", &me, gen, version, offset).await,
            0,
            "OffsetCommit v{version}"
        );
        for read in 1..=9 {
            assert_eq!(
                fetch(&mut c, "main", read).await,
                offset,
                "OffsetFetch v{read}"
            );
        }
    }
    assert_eq!(
        commit(&mut c, "main", &me, gen + 1, 8, 1).await,
        22,
        "ILLEGAL_GENERATION"
    );
    for version in 0..=6 {
        let request = DescribeGroupsRequest::default().with_groups(vec![g("main")]);
        let response = c.send(version, &request).await.expect("DescribeGroups");
        let group = &response.groups[0];
        assert_eq!(
            group.group_state.as_str(),
            "Stable",
            "DescribeGroups v{version}"
        );
        assert_eq!(group.protocol_data.as_str(), "range");
        assert_eq!(group.members[0].member_assignment, Bytes::from_static(b"x"));
    }
    for version in 0..=5 {
        let response = c
            .send(version, &ListGroupsRequest::default())
            .await
            .expect("ListGroups");
        assert!(
            response
                .groups
                .iter()
                .any(|l| l.group_id.0.as_str() == "main"),
            "ListGroups v{version}"
        );
    }

    // Old clients: JoinGroup v0–v3 get no MEMBER_ID_REQUIRED round trip.
    for version in 0..=3 {
        let group = format!("old-{version}");
        let mut c = coordinator(&bootstrap, &group).await;
        let mut request = JoinGroupRequest::default()
            .with_group_id(g(&group))
            .with_session_timeout_ms(10_000)
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::from_static(b"m"))]);
        if version >= 1 {
            request = request.with_rebalance_timeout_ms(10_000);
        }
        let joined = c.send(version, &request).await.expect("JoinGroup");
        assert_eq!(joined.error_code, 0, "JoinGroup v{version}");
        let assignment = SyncGroupRequestAssignment::default()
            .with_member_id(joined.member_id.clone())
            .with_assignment(Bytes::from_static(b"a"));
        let request = SyncGroupRequest::default()
            .with_group_id(g(&group))
            .with_generation_id(joined.generation_id)
            .with_member_id(joined.member_id.clone())
            .with_assignments(vec![assignment]);
        let synced = c.send(version, &request).await.expect("SyncGroup");
        assert_eq!((synced.error_code, &synced.assignment[..]), (0, &b"a"[..]));
        let request = LeaveGroupRequest::default()
            .with_group_id(g(&group))
            .with_member_id(joined.member_id.clone());
        let left = c.send(version.min(2), &request).await.expect("LeaveGroup");
        assert_eq!(left.error_code, 0, "LeaveGroup v{}", version.min(2));
    }
    // Newer JoinGroup and SyncGroup versions, and batched LeaveGroup.
    for version in 4..=9 {
        let group = format!("new-{version}");
        let mut c = coordinator(&bootstrap, &group).await;
        let request = |member: &str| {
            JoinGroupRequest::default()
                .with_group_id(g(&group))
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_member_id(s(member))
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(Bytes::from_static(b"m"))])
        };
        let first = c.send(version, &request("")).await.expect("JoinGroup");
        assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED at v{version}");
        let joined = c
            .send(version, &request(&first.member_id))
            .await
            .expect("JoinGroup");
        assert_eq!(joined.error_code, 0, "JoinGroup v{version}");
        let sync_version = (version - 3).min(5);
        let mut request = SyncGroupRequest::default()
            .with_group_id(g(&group))
            .with_generation_id(joined.generation_id)
            .with_member_id(joined.member_id.clone())
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(joined.member_id.clone())
                .with_assignment(Bytes::from_static(b"a"))]);
        if sync_version >= 5 {
            request = request
                .with_protocol_type(Some(s("consumer")))
                .with_protocol_name(Some(s("range")));
        }
        let synced = c.send(sync_version, &request).await.expect("SyncGroup");
        assert_eq!(synced.error_code, 0, "SyncGroup v{sync_version}");
        let leave_version = (version - 1).min(5);
        let request = LeaveGroupRequest::default()
            .with_group_id(g(&group))
            .with_members(vec![
                MemberIdentity::default().with_member_id(joined.member_id.clone()),
                MemberIdentity::default().with_member_id(s("stranger")),
            ]);
        let left = c.send(leave_version, &request).await.expect("LeaveGroup");
        let codes: Vec<i16> = left.members.iter().map(|m| m.error_code).collect();
        assert_eq!(codes, vec![0, 25], "LeaveGroup v{leave_version}");
    }
    // The empty groups can go; the one with a member cannot.
    for version in 0..=2 {
        let group = format!("old-{version}");
        let mut c = coordinator(&bootstrap, &group).await;
        let request = DeleteGroupsRequest::default().with_groups_names(vec![g(&group)]);
        let response = c.send(version, &request).await.expect("DeleteGroups");
        assert_eq!(response.results[0].error_code, 0, "DeleteGroups v{version}");
    }
    let request = DeleteGroupsRequest::default().with_groups_names(vec![g("main")]);
    let response = c.send(2, &request).await.expect("DeleteGroups");
    assert_eq!(response.results[0].error_code, 68, "NON_EMPTY_GROUP");
    cluster.shutdown().await;
}
