//! Coordinator records against hand-built bytes in Kafka's schemas, every
//! value version we read, and bad input.

use bytes::{BufMut, Bytes, BytesMut};

use super::*;

fn offset_record(value: Option<OffsetValue>) -> CoordinatorRecord {
    CoordinatorRecord::Offset {
        group: "g".into(),
        topic: "t".into(),
        partition: 3,
        value,
    }
}

fn group_value() -> GroupValue {
    GroupValue {
        protocol_type: "consumer".into(),
        generation: 7,
        protocol: Some("range".into()),
        leader: Some("m1".into()),
        current_state_timestamp: 1_700_000_000_000,
        members: vec![
            MemberValue {
                member_id: "m1".into(),
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout: 300_000,
                session_timeout: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            },
            MemberValue {
                member_id: "m2".into(),
                group_instance_id: Some("i2".into()),
                client_id: "c".into(),
                client_host: "".into(),
                rebalance_timeout: 1,
                session_timeout: 2,
                subscription: Bytes::new(),
                assignment: Bytes::new(),
            },
        ],
    }
}

#[test]
fn offset_records_have_kafkas_layout() {
    let value = OffsetValue {
        offset: 42,
        leader_epoch: 5,
        metadata: "m".into(),
        commit_timestamp: 1000,
    };
    let (key, bytes) = offset_record(Some(value.clone())).encode();
    assert_eq!(&key[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3]);
    let mut want = BytesMut::new();
    want.put_i16(3);
    want.put_i64(42);
    want.put_i32(5);
    want.put_i16(1);
    want.put_u8(b'm');
    want.put_i64(1000);
    assert_eq!(bytes.as_deref(), Some(&want[..]));
    assert_eq!(
        CoordinatorRecord::decode(&key, bytes.as_deref()),
        Ok(offset_record(Some(value)))
    );
}

#[test]
fn tombstones_round_trip() {
    let (key, value) = offset_record(None).encode();
    assert!(value.is_none());
    assert_eq!(
        CoordinatorRecord::decode(&key, None),
        Ok(offset_record(None))
    );
    let group = CoordinatorRecord::Group {
        group: "g".into(),
        value: None,
    };
    let (key, value) = group.encode();
    assert_eq!(&key[..], &[0, 2, 0, 1, b'g']);
    assert_eq!(CoordinatorRecord::decode(&key, value.as_deref()), Ok(group));
}

#[test]
fn group_metadata_round_trips() {
    let record = CoordinatorRecord::Group {
        group: "orders".into(),
        value: Some(group_value()),
    };
    let (key, value) = record.encode();
    assert_eq!(
        value.as_ref().map(|v| &v[..2]),
        Some(&[0u8, 3][..]),
        "version 3"
    );
    assert_eq!(
        CoordinatorRecord::decode(&key, value.as_deref()),
        Ok(record)
    );
}

#[test]
fn older_and_flexible_offset_values_decode() {
    let key = offset_record(None).encode().0;
    // v1: offset, metadata, commit timestamp, expire timestamp.
    let mut v1 = BytesMut::new();
    v1.put_i16(1);
    v1.put_i64(9);
    v1.put_i16(0);
    v1.put_i64(100);
    v1.put_i64(200);
    // v4: flexible — compact string (length + 1) and empty tagged fields.
    let mut v4 = BytesMut::new();
    v4.put_i16(4);
    v4.put_i64(9);
    v4.put_i32(2);
    v4.put_u8(3);
    v4.put_slice(b"ab");
    v4.put_i64(100);
    v4.put_u8(0);
    for (bytes, epoch, metadata) in [(&v1[..], -1, ""), (&v4[..], 2, "ab")] {
        let decoded = CoordinatorRecord::decode(&key, Some(bytes)).expect("decodes");
        assert_eq!(
            decoded,
            offset_record(Some(OffsetValue {
                offset: 9,
                leader_epoch: epoch,
                metadata: metadata.into(),
                commit_timestamp: 100,
            }))
        );
    }
}

#[test]
fn a_version_0_group_value_decodes() {
    let mut v0 = BytesMut::new();
    v0.put_i16(0);
    v0.put_i16(8);
    v0.put_slice(b"consumer");
    v0.put_i32(2);
    v0.put_i16(-1); // protocol
    v0.put_i16(-1); // leader
    v0.put_i32(1);
    for s in ["m", "c", "h"] {
        v0.put_i16(s.len() as i16);
        v0.put_slice(s.as_bytes());
    }
    v0.put_i32(10_000); // session timeout
    v0.put_i32(0); // subscription
    v0.put_i32(-1); // null assignment
    let key = CoordinatorRecord::Group {
        group: "g".into(),
        value: None,
    }
    .encode()
    .0;
    let CoordinatorRecord::Group {
        value: Some(value), ..
    } = CoordinatorRecord::decode(&key, Some(&v0)).expect("decodes")
    else {
        panic!("not a group record")
    };
    assert_eq!(value.generation, 2);
    assert_eq!(value.protocol, None);
    assert_eq!(
        value.members[0].rebalance_timeout, 10_000,
        "the session timeout"
    );
    assert_eq!(value.members[0].group_instance_id, None);
}

#[test]
fn bad_bytes_are_errors_not_panics() {
    assert_eq!(
        CoordinatorRecord::decode(&[0, 9, 0, 0], None),
        Err(RecordError::UnknownKeyVersion(9))
    );
    assert!(CoordinatorRecord::decode(&[0], None).is_err());
    assert!(CoordinatorRecord::decode(&[0, 1, 0, 5, b'g'], None).is_err());
    let key = offset_record(None).encode().0;
    assert!(matches!(
        CoordinatorRecord::decode(&key, Some(&[0, 7])),
        Err(RecordError::UnknownValueVersion { version: 7, .. })
    ));
    let (_, value) = CoordinatorRecord::Group {
        group: "g".into(),
        value: Some(group_value()),
    }
    .encode();
    let value = value.expect("a value");
    let group_key = [0u8, 2, 0, 1, b'g'];
    for cut in 0..value.len() {
        assert!(
            CoordinatorRecord::decode(&group_key, Some(&value[..cut])).is_err(),
            "cut at {cut}"
        );
    }
    // A member count far beyond the bytes present.
    let mut huge = BytesMut::new();
    huge.put_i16(3);
    huge.put_i16(0);
    huge.put_i32(1);
    huge.put_i16(-1);
    huge.put_i16(-1);
    huge.put_i64(0);
    huge.put_i32(i32::MAX);
    assert!(CoordinatorRecord::decode(&group_key, Some(&huge)).is_err());
}
