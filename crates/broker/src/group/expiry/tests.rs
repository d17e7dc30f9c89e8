//! Offset expiry with an injected clock: which offsets and groups expire
//! (on hand-built shard data), and that the tombstones written, read back
//! as the loader reads them (from their bytes, and from a real partition
//! log a shard wrote to), leave a reloaded shard without them.

use bytes::Bytes;

use super::*;
use crate::group::records::{GroupValue, MemberValue, OffsetValue};
use crate::group::state::GroupTimings;

const MINUTE: i64 = 60_000;
const RETENTION: i64 = 10 * MINUTE;
const T0: i64 = 1_700_000_000_000;

fn offset(group: &str, topic: &str, partition: i32, committed_at: i64) -> CoordinatorRecord {
    CoordinatorRecord::Offset {
        group: group.into(),
        topic: topic.into(),
        partition,
        value: Some(OffsetValue {
            offset: 42,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: committed_at,
        }),
    }
}

fn group(group: &str, members: &[&str], state_since: i64) -> CoordinatorRecord {
    CoordinatorRecord::Group {
        group: group.into(),
        value: Some(GroupValue {
            protocol_type: "consumer".into(),
            generation: 3,
            protocol: Some("range".into()),
            leader: members.first().map(|m| m.to_string()),
            current_state_timestamp: state_since,
            members: members
                .iter()
                .map(|m| MemberValue {
                    member_id: m.to_string(),
                    group_instance_id: None,
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout: 300_000,
                    session_timeout: 45_000,
                    subscription: Bytes::new(),
                    assignment: Bytes::new(),
                })
                .collect(),
        }),
    }
}

/// Replays `records` (at offsets 0, 1, ...) as the loader does, through
/// their encoded bytes, at time `now`.
fn load(records: &[CoordinatorRecord], now: i64) -> ShardData {
    let mut data = ShardData::default();
    for (i, r) in records.iter().enumerate() {
        let (key, value) = r.encode();
        let decoded = CoordinatorRecord::decode(&key, value.as_deref()).unwrap();
        data.replay(decoded, i as i64, GroupTimings::default(), now);
    }
    data
}

fn keys(data: &ShardData, group: &str) -> Vec<(String, i32)> {
    data.groups
        .get(group)
        .map(|e| e.offsets.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn an_offsets_only_group_loses_each_offset_retention_after_its_commit() {
    let data = load(
        &[
            offset("g", "t", 0, T0),
            offset("g", "t", 1, T0 + 5 * MINUTE),
        ],
        T0,
    );
    assert!(data.plan_expiry(RETENTION, T0 + RETENTION - 1).is_empty());
    let plans = data.plan_expiry(RETENTION, T0 + RETENTION);
    assert_eq!(
        plans,
        vec![GroupExpiry {
            group: "g".into(),
            offsets: vec![("t".into(), 0)],
            remove_group: false,
        }]
    );
    let plans = data.plan_expiry(RETENTION, T0 + 5 * MINUTE + RETENTION);
    assert_eq!(plans[0].offsets.len(), 2);
    assert!(plans[0].remove_group, "nothing is left in the group");
}

#[test]
fn an_empty_group_counts_retention_from_when_it_became_empty() {
    let emptied = T0 + 30 * MINUTE;
    let data = load(&[offset("g", "t", 0, T0), group("g", &[], emptied)], T0);
    assert!(
        data.plan_expiry(RETENTION, T0 + RETENTION).is_empty(),
        "the commit is old, but the group became empty later"
    );
    let plans = data.plan_expiry(RETENTION, emptied + RETENTION);
    assert_eq!(plans[0].offsets, vec![("t".to_string(), 0)]);
    assert!(plans[0].remove_group);
}

#[test]
fn an_active_groups_offsets_never_expire() {
    let data = load(&[offset("g", "t", 0, T0), group("g", &["m1"], T0)], T0);
    assert_eq!(
        data.groups["g"].group.state(),
        crate::group::GroupState::Stable
    );
    assert!(data
        .plan_expiry(RETENTION, T0 + 1000 * RETENTION)
        .is_empty());
}

#[test]
fn offsets_an_open_transaction_wrote_stay() {
    let mut data = load(&[offset("g", "t", 0, T0), offset("g", "t", 1, T0)], T0);
    data.replay_transactional(7, offset("g", "t", 1, T0), 2, GroupTimings::default(), T0);
    let plans = data.plan_expiry(RETENTION, T0 + 2 * RETENTION);
    assert_eq!(plans[0].offsets, vec![("t".to_string(), 0)]);
    assert!(
        !plans[0].remove_group,
        "the transaction's offset is pending"
    );
}

#[test]
fn an_offset_being_committed_waits_for_the_next_check() {
    let mut data = load(&[offset("g", "t", 0, T0)], T0);
    data.track_commits("g", &[("t".into(), 0)], true);
    assert!(data.plan_expiry(RETENTION, T0 + 2 * RETENTION).is_empty());
    data.track_commits("g", &[("t".into(), 0)], false);
    assert_eq!(data.plan_expiry(RETENTION, T0 + 2 * RETENTION).len(), 1);
}

#[test]
fn a_reloaded_shard_does_not_bring_expired_offsets_back() {
    let mut log = vec![
        offset("old", "t", 0, T0),
        offset("old", "t", 1, T0),
        group("empty", &[], T0),
        offset("empty", "t", 0, T0),
        offset("active", "t", 0, T0),
        group("active", &["m1"], T0),
        offset("young", "t", 0, T0 + 2 * RETENTION),
    ];
    let now = T0 + 2 * RETENTION;
    let mut data = load(&log, now);
    let plans = data.plan_expiry(RETENTION, now);
    let groups: Vec<&str> = plans.iter().map(|p| p.group.as_str()).collect();
    assert_eq!(groups, vec!["empty", "old"]);
    let written = tombstones(&plans);
    assert_eq!(written.len(), 5, "3 offsets and 2 groups: {written:?}");
    data.apply_expiry(&plans);
    log.extend(written);
    let reloaded = load(&log, now);
    for data in [&data, &reloaded] {
        let mut ids: Vec<&String> = data.groups.keys().collect();
        ids.sort();
        assert_eq!(ids, vec!["active", "young"]);
        assert_eq!(keys(data, "active"), vec![("t".to_string(), 0)]);
        assert_eq!(keys(data, "young"), vec![("t".to_string(), 0)]);
    }
    assert!(reloaded.plan_expiry(RETENTION, now).is_empty());
}

/// A `__consumer_offsets` partition this broker (1) leads alone, and the
/// temp directory holding its log.
fn led_partition() -> (std::sync::Arc<crate::replica::Partition>, tempfile::TempDir) {
    use crate::replica::log_config::PartitionSettings;
    use kraft_log::{LogConfig, PartitionLog};
    let dir = tempfile::tempdir().expect("temp dir");
    let log = PartitionLog::open(
        &dir.path().join("__consumer_offsets-0"),
        LogConfig::default(),
    )
    .expect("open the log");
    let partition = crate::replica::Partition::new(
        uuid::Uuid::new_v4(),
        "__consumer_offsets".into(),
        0,
        1,
        log,
        PartitionSettings {
            log: LogConfig::default(),
            min_insync_replicas: 1,
            timestamp_after_max_ms: i64::MAX / 2,
        },
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
    );
    let registration = kraft_metadata::PartitionRegistration {
        replicas: vec![1],
        isr: vec![1],
        leader: 1,
        leader_epoch: 1,
        partition_epoch: 1,
        ..Default::default()
    };
    partition.set_state(registration, now_ms());
    (partition, dir)
}

#[tokio::test]
async fn expiry_writes_tombstones_the_loader_replays() {
    use crate::group::{loader, MemberRef, OffsetCommit};
    let (partition, _dir) = led_partition();
    let shard = Shard::new(
        0,
        partition.clone(),
        1,
        ShardData::default(),
        GroupTimings::default(),
        std::time::Duration::from_secs(30),
    );
    let now = now_ms();
    let commits = |topic: &str| {
        (0..2)
            .map(|p| OffsetCommit {
                topic: topic.into(),
                partition: p,
                value: OffsetValue {
                    offset: 5,
                    leader_epoch: -1,
                    metadata: String::new(),
                    commit_timestamp: now,
                },
            })
            .collect::<Vec<_>>()
    };
    let alone = MemberRef {
        generation_id: -1,
        ..MemberRef::default()
    };
    for group in ["g", "h"] {
        let codes = shard.commit(group, &alone, commits("t"), 4096).await;
        assert_eq!(codes, vec![0, 0], "commit to {group}");
    }
    assert_eq!(shard.expire_offsets(RETENTION, now + RETENTION - 1), Ok(0));
    assert_eq!(shard.expire_offsets(RETENTION, now + RETENTION), Ok(4));
    assert!(shard.fetch_offsets("g", None).is_empty());
    assert!(shard.list().is_empty(), "both groups are gone");

    let (reloaded, _) =
        loader::load(&partition, GroupTimings::default(), now).expect("the partition loads");
    assert!(
        reloaded.groups.values().all(|e| !e.exists()),
        "{:?}",
        reloaded.groups.keys().collect::<Vec<_>>()
    );
    assert!(reloaded.plan_expiry(RETENTION, now + RETENTION).is_empty());
}
