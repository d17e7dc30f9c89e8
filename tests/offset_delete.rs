//! OffsetDelete (API 47) end to end, with raw requests through kraft's
//! minimal client and through `kraftctl groups delete-offsets`: an Empty
//! group loses the offsets asked for (and a restarted coordinator does not
//! bring them back), an active consumer group keeps the offsets of topics
//! it subscribes to, an unknown group is GROUP_ID_NOT_FOUND, an unknown
//! partition UNKNOWN_TOPIC_OR_PARTITION.

mod common;

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kraft_kafka_client::KafkaClient;
use kraft_testkit::TestCluster;

use common::create_topic;
use common::groups::{committed, committed_offsets, coordinator, sync};
use common::kraftctl::{kraftctl_async, kraftctl_json};

const GROUP_ID_NOT_FOUND: i16 = 69;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
const MEMBER_ID_REQUIRED: i16 = 79;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

async fn cluster() -> TestCluster {
    TestCluster::builder(1)
        .combined()
        .prop("offsets.topic.replication.factor", 1)
        .prop("offsets.topic.num.partitions", 2)
        .prop("group.initial.rebalance.delay.ms", 0)
        .start()
        .await
        .expect("cluster starts")
}

/// Commits offset 10 on each (topic, partition) as `member` of generation
/// `gen` (-1 and "" for a group that only stores offsets).
async fn commit(c: &mut KafkaClient, group: &str, member: &str, gen: i32, parts: &[(&str, i32)]) {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in parts {
        by_topic.entry(t).or_default().push(*p);
    }
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(gen)
        .with_member_id(s(member))
        .with_topics(
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(s(t)))
                        .with_partitions(
                            ps.into_iter()
                                .map(|p| {
                                    OffsetCommitRequestPartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(10)
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let response = c.send(8, &request).await.expect("OffsetCommit");
    for t in &response.topics {
        for p in &t.partitions {
            assert_eq!(
                p.error_code, 0,
                "commit of {}-{}",
                t.name.0, p.partition_index
            );
        }
    }
}

/// OffsetDelete v0: the top-level code and (topic, partition) -> code.
async fn delete_offsets(
    c: &mut KafkaClient,
    group: &str,
    parts: &[(&str, &[i32])],
) -> (i16, BTreeMap<(String, i32), i16>) {
    let request = OffsetDeleteRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(
            parts
                .iter()
                .map(|(t, ps)| {
                    OffsetDeleteRequestTopic::default()
                        .with_name(TopicName(s(t)))
                        .with_partitions(
                            ps.iter()
                                .map(|p| {
                                    OffsetDeleteRequestPartition::default().with_partition_index(*p)
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let response = c.send(0, &request).await.expect("OffsetDelete");
    let codes = response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| ((t.name.0.to_string(), p.partition_index), p.error_code))
        })
        .collect();
    (response.error_code, codes)
}

fn keys(offsets: &BTreeMap<(String, i32), i64>) -> Vec<(&str, i32)> {
    offsets.keys().map(|(t, p)| (t.as_str(), *p)).collect()
}

/// Consumer protocol metadata (version 1) subscribing to `topics`.
fn subscription(topics: &[&str]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(1);
    ConsumerProtocolSubscription::default()
        .with_topics(topics.iter().map(|t| s(t)).collect())
        .encode(&mut out, 1)
        .expect("subscription encodes");
    out.freeze()
}

/// Joins `group` as its only member subscribed to `topics` and syncs; the
/// member id and generation.
async fn join_subscribed(c: &mut KafkaClient, group: &str, topics: &[&str]) -> (String, i32) {
    let join = |member: String| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_session_timeout_ms(30_000)
            .with_rebalance_timeout_ms(30_000)
            .with_member_id(s(&member))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(subscription(topics))])
    };
    let first = c.send(5, &join(String::new())).await.expect("JoinGroup");
    assert_eq!(first.error_code, MEMBER_ID_REQUIRED, "{first:?}");
    let joined = c
        .send(5, &join(first.member_id.to_string()))
        .await
        .expect("JoinGroup");
    assert_eq!(joined.error_code, 0, "{joined:?}");
    let (me, gen) = (joined.member_id.to_string(), joined.generation_id);
    let synced = sync(c, group, &me, gen, &[(me.clone(), Bytes::new())]).await;
    assert_eq!(synced.error_code, 0, "{synced:?}");
    (me, gen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_delete_follows_the_groups_state_and_subscriptions() {
    let mut cluster = cluster().await;
    let bootstrap = cluster.bootstrap_servers();
    create_topic(&bootstrap, "a", 2, 1, &[]).await;
    create_topic(&bootstrap, "b", 1, 1, &[]).await;

    let mut c = coordinator(&bootstrap, "nobody").await;
    let (code, _) = delete_offsets(&mut c, "nobody", &[("a", &[0])]).await;
    assert_eq!(code, GROUP_ID_NOT_FOUND);

    // A group that only stores offsets (Empty): what is asked for goes.
    let mut c = coordinator(&bootstrap, "stored").await;
    commit(&mut c, "stored", "", -1, &[("a", 0), ("a", 1), ("b", 0)]).await;
    let (code, codes) =
        delete_offsets(&mut c, "stored", &[("a", &[0, 1, 7]), ("missing", &[0])]).await;
    assert_eq!(code, 0);
    let expected: BTreeMap<(String, i32), i16> = [
        (("a".to_string(), 0), 0),
        (("a".to_string(), 1), 0),
        (("a".to_string(), 7), UNKNOWN_TOPIC_OR_PARTITION),
        (("missing".to_string(), 0), UNKNOWN_TOPIC_OR_PARTITION),
    ]
    .into();
    assert_eq!(codes, expected);
    let left = committed(&mut c, "stored").await.expect("offsets");
    assert_eq!(keys(&left), vec![("b", 0)]);

    // An active consumer group keeps the offsets of the topics it uses.
    let mut c = coordinator(&bootstrap, "active").await;
    let (me, gen) = join_subscribed(&mut c, "active", &["a"]).await;
    commit(&mut c, "active", &me, gen, &[("a", 0), ("b", 0)]).await;
    let (code, codes) = delete_offsets(&mut c, "active", &[("a", &[0]), ("b", &[0])]).await;
    assert_eq!(code, 0);
    assert_eq!(codes[&("a".to_string(), 0)], GROUP_SUBSCRIBED_TO_TOPIC);
    assert_eq!(codes[&("b".to_string(), 0)], 0);
    let left = committed(&mut c, "active").await.expect("offsets");
    assert_eq!(keys(&left), vec![("a", 0)]);

    // The tombstones are in __consumer_offsets: a restarted coordinator
    // reads them back and the deleted offsets stay deleted.
    cluster.restart(1).await.expect("restart");
    let stored = committed_offsets(&bootstrap, "stored").await;
    assert_eq!(keys(&stored), vec![("b", 0)]);
    let active = committed_offsets(&bootstrap, "active").await;
    assert_eq!(keys(&active), vec![("a", 0)]);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraftctl_deletes_offsets_per_partition() {
    let cluster = cluster().await;
    let bootstrap = cluster.bootstrap_servers();
    create_topic(&bootstrap, "a", 2, 1, &[]).await;
    create_topic(&bootstrap, "b", 1, 1, &[]).await;
    let mut c = coordinator(&bootstrap, "app").await;
    commit(&mut c, "app", "", -1, &[("a", 0), ("a", 1), ("b", 0)]).await;

    let addr = cluster.broker_addr(1);
    let (ok, table, err) = kraftctl_async(&[
        "--bootstrap-server",
        addr,
        "groups",
        "delete-offsets",
        "app",
        "--topic",
        "a",
        "--partition",
        "1",
    ])
    .await;
    assert!(ok, "{err}");
    assert!(table.contains("Successful"), "{table}");
    let left = committed(&mut c, "app").await.expect("offsets");
    assert_eq!(keys(&left), vec![("a", 0), ("b", 0)]);

    // Without --partition: every partition of the topic.
    let (ok, rows) = kraftctl_json(
        &cluster,
        1,
        &["groups", "delete-offsets", "app", "--topic", "a"],
    )
    .await;
    assert!(ok, "{rows}");
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r["error"].is_null()), "{rows:?}");
    let left = committed(&mut c, "app").await.expect("offsets");
    assert_eq!(keys(&left), vec![("b", 0)]);

    // An active group subscribed to b: a per-partition error, exit failure.
    let (me, gen) = join_subscribed(&mut c, "app", &["b"]).await;
    commit(&mut c, "app", &me, gen, &[("b", 0)]).await;
    let (ok, table, _) = kraftctl_async(&[
        "--bootstrap-server",
        addr,
        "groups",
        "delete-offsets",
        "app",
        "--topic",
        "b",
    ])
    .await;
    assert!(!ok, "{table}");
    assert!(table.contains("GROUP_SUBSCRIBED_TO_TOPIC"), "{table}");

    let (ok, _, err) = kraftctl_async(&[
        "--bootstrap-server",
        addr,
        "groups",
        "delete-offsets",
        "nobody",
        "--topic",
        "a",
    ])
    .await;
    assert!(!ok && err.contains("GROUP_ID_NOT_FOUND"), "{err}");
    cluster.shutdown().await;
}
