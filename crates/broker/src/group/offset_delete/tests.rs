//! What OffsetDelete may delete, by group state and subscription.

use bytes::{BufMut, BytesMut};
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::*;
use crate::group::records::{GroupValue, MemberValue};
use crate::group::state::GroupTimings;

/// Consumer protocol metadata of version `version` subscribing `topics`.
fn subscription(version: i16, topics: &[&str]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(version);
    ConsumerProtocolSubscription::default()
        .with_topics(
            topics
                .iter()
                .map(|t| StrBytes::from_string(t.to_string()))
                .collect(),
        )
        .encode(&mut out, version.min(3))
        .unwrap();
    out.freeze()
}

fn group(protocol_type: &str, members: &[Bytes]) -> Group {
    let value = GroupValue {
        protocol_type: protocol_type.into(),
        generation: 1,
        protocol: Some("range".into()),
        leader: None,
        current_state_timestamp: 0,
        members: members
            .iter()
            .enumerate()
            .map(|(i, metadata)| MemberValue {
                member_id: format!("m{i}"),
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout: 1000,
                session_timeout: 1000,
                subscription: metadata.clone(),
                assignment: Bytes::new(),
            })
            .collect(),
    };
    Group::from_value("g", value, GroupTimings::default(), 0)
}

#[test]
fn subscriptions_of_every_version_decode() {
    for version in 0..=3 {
        assert_eq!(
            subscribed_topics(&subscription(version, &["a", "b"])),
            Some(vec!["a".to_string(), "b".to_string()]),
            "version {version}"
        );
    }
    assert_eq!(subscribed_topics(&Bytes::from_static(b"\x00")), None);
}

#[test]
fn an_empty_group_keeps_nothing() {
    assert!(matches!(kept(&group("consumer", &[])), Ok(Kept::Nothing)));
}

#[test]
fn a_consumer_group_keeps_the_topics_its_members_subscribe_to() {
    let g = group(
        "consumer",
        &[subscription(1, &["a"]), subscription(3, &["b", "a"])],
    );
    match kept(&g) {
        Ok(Kept::Topics(topics)) => {
            assert_eq!(topics.into_iter().collect::<Vec<_>>(), vec!["a", "b"])
        }
        _ => panic!("expected the subscribed topics"),
    }
    let g = group("consumer", &[Bytes::from_static(b"junk")]);
    assert!(matches!(kept(&g), Ok(Kept::Everything)));
}

#[test]
fn a_group_of_another_protocol_with_members_is_not_empty() {
    let g = group("connect", &[Bytes::new()]);
    assert_eq!(kept(&g).err(), Some(ResponseError::NonEmptyGroup.code()));
}

#[test]
fn a_tombstone_written_during_a_commit_keeps_that_commit_deleted() {
    use crate::group::shard_data::ShardData;
    let key = [("t".to_string(), 0)];
    let mut data = ShardData::default();
    data.supersede("g", "t", 0, 10);
    assert!(
        !data.is_superseded("g", "t", 0, 5),
        "no commit was in flight"
    );
    data.track_commits("g", &key, true);
    data.supersede("g", "t", 0, 10);
    assert!(data.is_superseded("g", "t", 0, 5), "the commit is older");
    assert!(
        !data.is_superseded("g", "t", 0, 11),
        "a later commit stands"
    );
    data.track_commits("g", &key, false);
    assert!(
        !data.is_superseded("g", "t", 0, 5),
        "forgotten once settled"
    );
}
