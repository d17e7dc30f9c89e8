//! Snapshot decoding rejects every kind of damage with a precise error,
//! never a panic and never a different image.

mod common;

use common::*;
use kraft_metadata::{snapshot, MetadataError, MetadataImage, SnapshotError};
use kraft_proto::metadata::{RecordBatch, SnapshotFooter, SnapshotHeader};
use prost::Message;

fn sample() -> (SnapshotHeader, MetadataImage, Vec<u8>) {
    let image = replay_log(MetadataImage::empty(), &generate_log(7, 60));
    let header = SnapshotHeader {
        offset: image.offset(),
        term: 2,
        timestamp_ms: 12345,
        voters: vec![1, 2, 3],
        learners: vec![],
    };
    let bytes = snapshot::encode(&header, &image);
    (header, image, bytes)
}

/// Writes the snapshot preamble and frames by hand.
fn handmade(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"KRAFTSNP".to_vec();
    out.extend_from_slice(&1u32.to_be_bytes());
    for payload in frames {
        push_frame(&mut out, payload);
    }
    out
}

fn push_frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    out.extend_from_slice(payload);
}

fn with_footer(mut body: Vec<u8>, record_count: u64) -> Vec<u8> {
    let footer = SnapshotFooter {
        record_count,
        checksum: crc32c::crc32c(&body),
    };
    push_frame(&mut body, &footer.encode_to_vec());
    body
}

#[test]
fn sample_round_trips_and_is_big_enough() {
    let (header, image, bytes) = sample();
    assert!(
        image.topics().len() >= 2 && bytes.len() > 500,
        "sample too small: {} topics, {} bytes",
        image.topics().len(),
        bytes.len()
    );
    assert_eq!(snapshot::decode(&bytes).unwrap(), (header, image));
}

#[test]
fn every_flipped_byte_is_rejected() {
    let (_, _, bytes) = sample();
    for pos in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut bad = bytes.clone();
            bad[pos] ^= mask;
            let result = snapshot::decode(&bad);
            assert!(result.is_err(), "flip {mask:#x} at byte {pos} was accepted");
        }
    }
}

#[test]
fn flips_give_the_expected_error_kind() {
    let (_, _, bytes) = sample();
    let flip = |pos: usize| {
        let mut bad = bytes.clone();
        bad[pos] ^= 0x10;
        snapshot::decode(&bad).unwrap_err()
    };
    assert_eq!(flip(0), SnapshotError::BadMagic);
    assert_eq!(
        flip(11),
        SnapshotError::UnsupportedVersion { version: 0x11 }
    );
    // The header frame starts at 12: its stored crc, then its payload.
    assert!(matches!(
        flip(12 + 5),
        SnapshotError::CrcMismatch { at: 12, .. }
    ));
    assert!(matches!(
        flip(12 + 9),
        SnapshotError::CrcMismatch { at: 12, .. }
    ));
    let last = bytes.len() - 1;
    assert!(matches!(flip(last), SnapshotError::CrcMismatch { .. }));
}

#[test]
fn every_truncation_is_rejected() {
    let (_, _, bytes) = sample();
    for len in 0..bytes.len() {
        let result = snapshot::decode(&bytes[..len]);
        assert!(result.is_err(), "truncation to {len} bytes was accepted");
    }
    assert!(matches!(
        snapshot::decode(&[]),
        Err(SnapshotError::Truncated { at: 0, .. })
    ));
    assert!(matches!(
        snapshot::decode(&bytes[..10]),
        Err(SnapshotError::Truncated { at: 0, .. })
    ));
    assert!(matches!(
        snapshot::decode(&bytes[..12]),
        Err(SnapshotError::Truncated {
            what: "header frame",
            at: 12
        })
    ));
    assert!(matches!(
        snapshot::decode(&bytes[..15]),
        Err(SnapshotError::Truncated {
            what: "frame header",
            at: 12
        })
    ));
    assert!(matches!(
        snapshot::decode(&bytes[..21]),
        Err(SnapshotError::Truncated {
            what: "frame payload",
            at: 12
        })
    ));
}

#[test]
fn cut_at_a_frame_boundary_is_a_missing_footer() {
    let (header, image, _) = sample();
    let batch = RecordBatch {
        records: image.to_records(),
    };
    let cut = handmade(&[header.encode_to_vec(), batch.encode_to_vec()]);
    let batch_at = 12 + 8 + header.encoded_len();
    assert_eq!(
        snapshot::decode(&cut),
        Err(SnapshotError::MissingFooter { at: batch_at })
    );
    let header_only = handmade(&[header.encode_to_vec()]);
    assert_eq!(
        snapshot::decode(&header_only),
        Err(SnapshotError::MissingFooter {
            at: header_only.len()
        })
    );
    // The header alone can still be peeked.
    assert_eq!(snapshot::decode_header(&header_only), Ok(header));
}

#[test]
fn bad_magic_and_version() {
    let (_, _, bytes) = sample();
    let mut bad = bytes.clone();
    bad[..8].copy_from_slice(b"KAFKASNP");
    assert_eq!(snapshot::decode(&bad), Err(SnapshotError::BadMagic));
    assert_eq!(snapshot::decode_header(&bad), Err(SnapshotError::BadMagic));
    assert_eq!(snapshot::decode(b"KRAFX"), Err(SnapshotError::BadMagic));
    let mut v2 = bytes.clone();
    v2[8..12].copy_from_slice(&2u32.to_be_bytes());
    assert_eq!(
        snapshot::decode(&v2),
        Err(SnapshotError::UnsupportedVersion { version: 2 })
    );
    assert_eq!(
        snapshot::decode_header(&v2),
        Err(SnapshotError::UnsupportedVersion { version: 2 })
    );
}

#[test]
fn trailing_bytes_are_rejected() {
    let (_, _, bytes) = sample();
    let mut extra = bytes.clone();
    extra.extend_from_slice(&[0, 0, 0]);
    assert_eq!(
        snapshot::decode(&extra),
        Err(SnapshotError::TrailingBytes {
            at: bytes.len(),
            len: 3
        })
    );
    // A whole valid frame after the footer is trailing too.
    let mut extra = bytes.clone();
    push_frame(
        &mut extra,
        &RecordBatch {
            records: vec![noop()],
        }
        .encode_to_vec(),
    );
    assert!(
        matches!(snapshot::decode(&extra), Err(SnapshotError::TrailingBytes { at, .. }) if at == bytes.len())
    );
}

#[test]
fn footer_checksum_and_count_are_checked() {
    let header = SnapshotHeader {
        offset: 3,
        ..Default::default()
    };
    let batch = RecordBatch {
        records: vec![feature("f", 1), noop()],
    };
    let body = handmade(&[header.encode_to_vec(), batch.encode_to_vec()]);

    let good = with_footer(body.clone(), 2);
    let (_, image) = snapshot::decode(&good).unwrap();
    assert_eq!((image.offset(), image.features().level("f")), (3, Some(1)));

    assert_eq!(
        snapshot::decode(&with_footer(body.clone(), 3)),
        Err(SnapshotError::RecordCountMismatch {
            stored: 3,
            found: 2
        })
    );

    // A footer (with a valid frame crc) whose checksum does not match.
    let mut wrong = body.clone();
    let footer = SnapshotFooter {
        record_count: 2,
        checksum: crc32c::crc32c(&body) ^ 1,
    };
    push_frame(&mut wrong, &footer.encode_to_vec());
    assert_eq!(
        snapshot::decode(&wrong),
        Err(SnapshotError::ChecksumMismatch {
            stored: crc32c::crc32c(&body) ^ 1,
            computed: crc32c::crc32c(&body),
        })
    );
}

#[test]
fn malformed_and_unreplayable_content() {
    let header = SnapshotHeader::default();
    let header_len = header.encoded_len();
    let batch_at = 12 + 8 + header_len;

    // A frame whose crc is right but whose payload is not a RecordBatch.
    let body = handmade(&[header.encode_to_vec(), vec![0x0a, 0x05, 0x01]]);
    assert!(matches!(
        snapshot::decode(&with_footer(body, 0)),
        Err(SnapshotError::Malformed { what: "record batch", at, .. }) if at == batch_at
    ));

    // A header frame that is not a SnapshotHeader.
    let body = handmade(&[vec![0xff, 0xff]]);
    assert!(matches!(
        snapshot::decode(&with_footer(body, 0)),
        Err(SnapshotError::Malformed {
            what: "snapshot header",
            at: 12,
            ..
        })
    ));

    // Well-formed records that do not replay.
    let batch = RecordBatch {
        records: vec![partition(id(5), 0, &[1])],
    };
    let body = handmade(&[header.encode_to_vec(), batch.encode_to_vec()]);
    assert_eq!(
        snapshot::decode(&with_footer(body, 1)),
        Err(SnapshotError::Replay {
            at: batch_at,
            source: MetadataError::UnknownTopicId { id: id(5) }
        })
    );
}

#[test]
fn garbage_never_panics() {
    let (_, _, bytes) = sample();
    let mut rng = Lcg::new(99);
    for _ in 0..3000 {
        // Random splices of a valid snapshot and random bytes.
        let mut bad = bytes.clone();
        for _ in 0..1 + rng.below(4) {
            let pos = rng.below(bad.len() as u64) as usize;
            match rng.below(3) {
                0 => bad[pos] = rng.next() as u8,
                1 => bad.truncate(pos.max(12)),
                _ => bad.insert(pos, rng.next() as u8),
            }
        }
        if bad != bytes {
            assert!(snapshot::decode(&bad).is_err());
        }
        let _ = snapshot::decode_header(&bad);
    }
}

#[test]
fn flips_in_a_multi_frame_snapshot_are_rejected() {
    use kraft_metadata::ConfigResourceType::ConfigResourceBroker;
    let records: Vec<_> = (0..snapshot::MAX_BATCH_RECORDS + 100)
        .map(|i| {
            config(
                ConfigResourceBroker,
                "",
                &format!("key.{i:05}"),
                Some("value"),
            )
        })
        .collect();
    let image = apply(&MetadataImage::empty(), 8, &records);
    let header = SnapshotHeader {
        offset: 8,
        ..Default::default()
    };
    let bytes = snapshot::encode(&header, &image);
    assert_eq!(snapshot::decode(&bytes).unwrap().1, image);
    for pos in (0..bytes.len())
        .step_by(251)
        .chain(bytes.len() - 40..bytes.len())
    {
        let mut bad = bytes.clone();
        bad[pos] ^= 0x04;
        assert!(
            snapshot::decode(&bad).is_err(),
            "flip at byte {pos} was accepted"
        );
    }
    for len in (0..bytes.len()).step_by(509) {
        assert!(
            snapshot::decode(&bytes[..len]).is_err(),
            "cut at {len} was accepted"
        );
    }
}
