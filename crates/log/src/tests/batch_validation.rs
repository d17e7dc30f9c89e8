//! Producer batch validation and the batch splitter.

use kafka_protocol::records::Compression;

use super::{batch_with, encode, record, simple_batch, CODECS};
use crate::batch::{self, validate_produced, BatchHeader, HEADER_LEN};
use crate::error::BatchError;
use crate::TimestampType;

const MAX: u32 = 1_048_588;

/// Rewrites a header field and the CRC, as a buggy but honest client would.
fn with_field(bytes: &[u8], at: usize, value: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at..at + value.len()].copy_from_slice(value);
    let crc = batch::compute_crc(&out);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

#[test]
fn every_codec_validates_without_decoding() {
    for codec in CODECS {
        let bytes = batch_with(&[10, 20, 30], "x", 100, codec);
        let header = validate_produced(&bytes, MAX).expect("valid");
        assert_eq!(header.records_count, 3);
        assert_eq!(header.last_offset_delta, 2);
        assert_eq!(header.compression(), codec as u8);
        assert_eq!(header.max_timestamp, 30);
        assert_eq!(header.size(), bytes.len());
        assert_eq!(header.timestamp_type(), TimestampType::CreateTime);
        assert!(!header.is_control() && !header.is_transactional());
    }
}

#[test]
fn a_flipped_byte_fails_the_crc() {
    let mut bytes = simple_batch(3, 5, 50).to_vec();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x40;
    let err = validate_produced(&bytes, MAX).unwrap_err();
    assert!(matches!(err, BatchError::Corrupt { .. }), "{err}");
    assert_eq!(err.kafka_error_code(), 2);
}

#[test]
fn wrong_magic_is_invalid() {
    let bytes = with_field(&simple_batch(1, 5, 10), 16, &[1]);
    let err = validate_produced(&bytes, MAX).unwrap_err();
    assert!(matches!(err, BatchError::Invalid { .. }), "{err}");
    assert_eq!(err.kafka_error_code(), 87);
}

#[test]
fn two_batches_are_invalid() {
    let mut bytes = simple_batch(1, 5, 10).to_vec();
    bytes.extend_from_slice(&simple_batch(1, 6, 10));
    let err = validate_produced(&bytes, MAX).unwrap_err();
    assert!(matches!(err, BatchError::Invalid { .. }), "{err}");
}

#[test]
fn control_batches_from_clients_are_invalid() {
    let mut r = record(0, 5, b"marker".to_vec());
    r.control = true;
    let bytes = encode(&[r], Compression::None);
    assert!(BatchHeader::parse(&bytes).unwrap().is_control());
    let err = validate_produced(&bytes, MAX).unwrap_err();
    assert!(matches!(err, BatchError::Invalid { .. }), "{err}");
}

#[test]
fn inconsistent_counts_are_invalid() {
    let bytes = with_field(&simple_batch(3, 5, 10), 57, &5i32.to_be_bytes());
    assert!(matches!(
        validate_produced(&bytes, MAX),
        Err(BatchError::Invalid { .. })
    ));
    let bytes = with_field(&simple_batch(3, 5, 10), 57, &0i32.to_be_bytes());
    assert!(matches!(
        validate_produced(&bytes, MAX),
        Err(BatchError::Invalid { .. })
    ));
}

#[test]
fn too_large_is_refused_before_the_crc() {
    let bytes = simple_batch(10, 5, 1000);
    let err = validate_produced(&bytes, 5000).unwrap_err();
    assert!(
        matches!(err, BatchError::TooLarge { max: 5000, .. }),
        "{err}"
    );
    assert_eq!(err.kafka_error_code(), 10);
}

#[test]
fn truncated_input_is_corrupt() {
    let bytes = simple_batch(3, 5, 50);
    for len in [0, 20, HEADER_LEN - 1, HEADER_LEN, bytes.len() - 1] {
        let err = validate_produced(&bytes[..len], MAX).unwrap_err();
        assert!(matches!(err, BatchError::Corrupt { .. }), "{len}: {err}");
    }
    // A batch length shorter than the header itself.
    let bytes = with_field(&bytes, 8, &10i32.to_be_bytes());
    assert!(matches!(
        validate_produced(&bytes, MAX),
        Err(BatchError::Corrupt { .. })
    ));
}

#[test]
fn batches_splits_and_reports_a_partial_tail() {
    let a = simple_batch(2, 1, 30);
    let b = batch_with(&[1, 2, 3], "b", 30, Compression::Zstd);
    let mut buf = a.to_vec();
    buf.extend_from_slice(&b);
    buf.extend_from_slice(&a[..a.len() - 5]);
    let mut it = batch::batches(&buf);
    let found: Vec<_> = (&mut it).map(|r| r.expect("whole")).collect();
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].1, 0..a.len());
    assert_eq!(found[1].1, a.len()..a.len() + b.len());
    assert_eq!(found[1].0.records_count, 3);
    assert_eq!(it.partial_tail(), Some(a.len() + b.len()..buf.len()));

    let mut it = batch::batches(&buf[..a.len() + b.len()]);
    assert_eq!((&mut it).count(), 2);
    assert_eq!(it.partial_tail(), None);

    // A bad header is an error, once.
    let mut bad = a.to_vec();
    bad[16] = 7;
    let items: Vec<_> = batch::batches(&bad).collect();
    assert_eq!(items.len(), 1);
    assert!(items[0].is_err());
}

#[test]
fn log_append_time_stamp_keeps_the_crc_valid() {
    let bytes = batch_with(&[10, 20], "t", 20, Compression::Lz4);
    let mut head = [0u8; HEADER_LEN];
    head.copy_from_slice(&bytes[..HEADER_LEN]);
    batch::stamp_offset_and_epoch(&mut head, 77, 9);
    batch::stamp_log_append_time(&mut head, &bytes[HEADER_LEN..], 12345);
    let mut stamped = head.to_vec();
    stamped.extend_from_slice(&bytes[HEADER_LEN..]);
    let header = batch::validate_stored(&stamped).expect("valid after stamping");
    assert_eq!(header.base_offset, 77);
    assert_eq!(header.partition_leader_epoch, 9);
    assert_eq!(header.max_timestamp, 12345);
    assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(header.compression(), 3);
}
