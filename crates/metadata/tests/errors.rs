//! Invalid records are errors that leave the delta unchanged, never panics.

mod common;

use bytes::Bytes;
use common::*;
use kraft_metadata::{record, MetadataDelta, MetadataError, MetadataImage};
use kraft_proto::metadata::{self as pb, metadata_record::Record, MetadataRecord};

fn base() -> MetadataImage {
    let t = id(1);
    apply(
        &MetadataImage::empty(),
        5,
        &[register(1, 1, 5), topic("t", t), partition(t, 0, &[1])],
    )
}

/// Replays `r` over `base()`, checks the failed replay left the delta as it
/// was, and returns the error.
fn replay_err(r: &MetadataRecord) -> MetadataError {
    let mut delta = MetadataDelta::new(base());
    delta.replay(&noop()).unwrap();
    let before = delta.clone().apply();
    let err = delta.replay(r).expect_err("replay should fail");
    assert_eq!(delta.apply(), before, "a failed record changed the image");
    err
}

#[test]
fn unknown_version_and_missing_record() {
    for version in [0, 2, u32::MAX] {
        let r = MetadataRecord { version, ..noop() };
        assert_eq!(
            replay_err(&r),
            MetadataError::UnsupportedRecordVersion { version }
        );
    }
    let r = MetadataRecord {
        version: 1,
        record: None,
    };
    assert_eq!(replay_err(&r), MetadataError::MissingRecord { version: 1 });
}

#[test]
fn topic_errors() {
    assert_eq!(
        replay_err(&topic("t", id(2))),
        MetadataError::DuplicateTopicName { name: "t".into() }
    );
    assert_eq!(
        replay_err(&topic("u", id(1))),
        MetadataError::DuplicateTopicId { id: id(1) }
    );
    assert_eq!(replay_err(&topic("", id(2))), MetadataError::EmptyTopicName);
    assert_eq!(
        replay_err(&partition(id(9), 0, &[1])),
        MetadataError::UnknownTopicId { id: id(9) }
    );
    assert_eq!(
        replay_err(&partition(id(1), -1, &[1])),
        MetadataError::InvalidPartitionId {
            topic_id: id(1),
            partition_id: -1
        }
    );
    assert_eq!(
        replay_err(&wrap_change(change(id(9), 0))),
        MetadataError::UnknownTopicId { id: id(9) }
    );
    assert_eq!(
        replay_err(&wrap_change(change(id(1), 1))),
        MetadataError::UnknownPartition {
            topic_id: id(1),
            partition_id: 1
        }
    );
    assert_eq!(
        replay_err(&remove_topic(id(9))),
        MetadataError::UnknownTopicId { id: id(9) }
    );
}

#[test]
fn bad_topic_ids() {
    for len in [0usize, 15, 17] {
        let raw = Bytes::from(vec![7u8; len]);
        let expected = MetadataError::InvalidUuid {
            field: "topic_id",
            len,
        };
        let topic = record(Record::Topic(pb::TopicRecord {
            name: "x".into(),
            topic_id: raw.clone(),
        }));
        assert_eq!(replay_err(&topic), expected);
        let remove = record(Record::RemoveTopic(pb::RemoveTopicRecord {
            topic_id: raw.clone(),
        }));
        assert_eq!(replay_err(&remove), expected);
        let change = pb::PartitionChangeRecord {
            topic_id: raw.clone(),
            ..Default::default()
        };
        assert_eq!(replay_err(&wrap_change(change)), expected);
        let partition = record(Record::Partition(pb::PartitionRecord {
            topic_id: raw,
            ..Default::default()
        }));
        assert_eq!(replay_err(&partition), expected);
    }
}

#[test]
fn broker_errors() {
    let stale = MetadataError::StaleBrokerEpoch {
        broker_id: 1,
        record_epoch: 4,
        current_epoch: 5,
    };
    assert_eq!(replay_err(&fence(1, 4)), stale);
    assert_eq!(replay_err(&unfence(1, 4)), stale);
    assert_eq!(replay_err(&shutdown(1, 4)), stale);
    assert_eq!(replay_err(&unregister(1, 4)), stale);
    assert_eq!(
        replay_err(&unfence(2, 5)),
        MetadataError::UnknownBroker { broker_id: 2 }
    );

    let mut bad = register(2, 2, 6);
    if let Some(Record::RegisterBroker(r)) = &mut bad.record {
        r.endpoints[0].port = 70000;
    }
    assert!(matches!(
        replay_err(&bad),
        MetadataError::InvalidPort { port: 70000, .. }
    ));
    let mut bad = register(2, 2, 6);
    if let Some(Record::RegisterBroker(r)) = &mut bad.record {
        r.incarnation_id = Bytes::from_static(b"short");
    }
    assert_eq!(
        replay_err(&bad),
        MetadataError::InvalidUuid {
            field: "incarnation_id",
            len: 5
        }
    );
}

#[test]
fn config_and_feature_errors() {
    let mut bad = config(
        kraft_metadata::ConfigResourceType::ConfigResourceTopic,
        "t",
        "k",
        Some("v"),
    );
    for value in [0, 1, 3, -1] {
        if let Some(Record::Config(c)) = &mut bad.record {
            c.resource_type = value;
        }
        assert_eq!(
            replay_err(&bad),
            MetadataError::InvalidConfigResourceType { value }
        );
    }
    for level in [-1, 32768, i32::MIN] {
        assert_eq!(
            replay_err(&feature("f", level)),
            MetadataError::InvalidFeatureLevel {
                name: "f".into(),
                level
            }
        );
    }
}

#[test]
fn epoch_overflow_is_an_error() {
    let t = id(1);
    let mut p = partition(t, 1, &[1]);
    if let Some(Record::Partition(r)) = &mut p.record {
        r.partition_epoch = i32::MAX;
    }
    let image = apply(&base(), 6, &[p]);
    let mut delta = MetadataDelta::new(image);
    assert!(matches!(
        delta.replay(&wrap_change(change(t, 1))),
        Err(MetadataError::EpochOverflow {
            which: "partition",
            ..
        })
    ));
}

#[test]
fn batch_error_names_the_record_and_keeps_earlier_ones() {
    let mut delta = MetadataDelta::new(base());
    let err = delta
        .replay_batch(
            6,
            &batch(vec![
                feature("f", 1),
                noop(),
                unfence(1, 4),
                feature("g", 1),
            ]),
        )
        .unwrap_err();
    assert_eq!(
        err,
        MetadataError::InBatch {
            offset: 6,
            index: 2,
            source: Box::new(MetadataError::StaleBrokerEpoch {
                broker_id: 1,
                record_epoch: 4,
                current_epoch: 5
            }),
        }
    );
    assert!(err
        .to_string()
        .contains("record 2 of the batch at offset 6"));
    assert_eq!(delta.offset(), 5, "a failed batch does not move the offset");
    let image = delta.apply();
    assert_eq!(image.features().level("f"), Some(1));
    assert_eq!(image.features().level("g"), None);
}

#[test]
fn batch_offsets_must_increase() {
    let mut delta = MetadataDelta::new(base());
    for offset in [0, 5] {
        assert_eq!(
            delta.replay_batch(offset, &batch(vec![noop()])),
            Err(MetadataError::NonIncreasingOffset { offset, current: 5 })
        );
    }
    delta.replay_batch(6, &batch(vec![])).unwrap();
    assert_eq!(delta.apply().offset(), 6);
}

#[test]
fn arbitrary_bytes_never_panic() {
    // Decode garbage as records and replay whatever parses.
    use prost::Message;
    let mut rng = Lcg::new(42);
    let mut delta = MetadataDelta::new(base());
    for _ in 0..20_000 {
        let len = rng.below(40) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if rng.chance(50) && !bytes.is_empty() {
            bytes[0] = 0x08; // version field
            if bytes.len() > 1 {
                bytes[1] = 1;
            }
        }
        if let Ok(r) = MetadataRecord::decode(bytes.as_slice()) {
            let _ = delta.replay(&r);
        }
    }
}
