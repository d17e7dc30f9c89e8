//! Hostile batches against the record walker and the capped decompressor:
//! each shape is refused with the right error, quickly and without an
//! allocation its numbers could size, and honest batches of every codec
//! still pass and decode.

use std::io::Write;
use std::ops::ControlFlow;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::records::Compression;

use super::{batch_with, decode, encode, open, record, simple_batch, CODECS};
use crate::batch::{
    self, check_produced, decompression_limit, for_each_record, validate_produced, RecordView,
};
use crate::error::BatchError;
use crate::LogConfig;

const MAX: u32 = 1_048_588;
const LIMIT: u64 = 1 << 20;

/// A batch of `count` records whose bytes after the header are `payload`,
/// with `attributes`, both timestamps `ts`, and a correct CRC.
fn raw_batch(count: i32, attributes: i16, ts: i64, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i64(0);
    b.put_i32((49 + payload.len()) as i32);
    b.put_i32(-1);
    b.put_i8(2);
    b.put_u32(0);
    b.put_i16(attributes);
    b.put_i32(count - 1);
    b.put_i64(ts);
    b.put_i64(ts);
    b.put_i64(-1);
    b.put_i16(-1);
    b.put_i32(-1);
    b.put_i32(count);
    b.extend_from_slice(payload);
    seal(b)
}

fn seal(mut b: BytesMut) -> Bytes {
    let crc = batch::compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

/// Rewrites bytes at `at` and the CRC.
fn patched(bytes: &[u8], at: usize, value: &[u8]) -> Bytes {
    let mut out = BytesMut::from(bytes);
    out[at..at + value.len()].copy_from_slice(value);
    seal(out)
}

fn varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// One record's bytes: the fields as varints, `key`/`value` lengths as
/// given (their bytes follow only when non-negative and `body` holds them).
fn record_bytes(offset_delta: i64, key_len: i64, value: &[u8], headers: i64) -> Vec<u8> {
    let mut body = vec![0u8]; // attributes
    varint(&mut body, 0); // timestamp delta
    varint(&mut body, offset_delta);
    varint(&mut body, key_len);
    varint(&mut body, value.len() as i64);
    body.extend_from_slice(value);
    varint(&mut body, headers);
    let mut out = Vec::new();
    varint(&mut out, body.len() as i64);
    out.extend_from_slice(&body);
    out
}

/// The full producer check, as `append_as_leader` runs it.
fn produced(bytes: &[u8]) -> Result<(), BatchError> {
    let header = validate_produced(bytes, MAX)?;
    check_produced(bytes, &header, LIMIT, true).map(|_| ())
}

/// INVALID_RECORD, for the reason `what` names (its first word is in the message).
fn invalid(result: Result<(), BatchError>, what: &str) {
    match result {
        Err(e @ BatchError::Invalid { .. }) => {
            assert_eq!(e.kafka_error_code(), 87, "{what}");
            eprintln!("{what}: {e}");
        }
        other => panic!("{what}: expected INVALID_RECORD, got {other:?}"),
    }
}

fn too_large(result: Result<(), BatchError>, what: &str) {
    match result {
        Err(e @ BatchError::DecompressedTooLarge { .. }) => {
            assert_eq!(e.kafka_error_code(), 10, "{what}")
        }
        other => panic!("{what}: expected MESSAGE_TOO_LARGE, got {other:?}"),
    }
}

#[test]
fn a_count_the_bytes_cannot_hold_is_refused_before_any_decode() {
    let hostile = raw_batch(i32::MAX, 0, 5, &[]);
    assert_eq!(hostile.len(), 61);
    invalid(
        validate_produced(&hostile, MAX).map(|_| ()),
        "2^31-1 in 61 bytes",
    );
    // Compressed: bounded by the cap, 7 bytes a record.
    let over = (decompression_limit(MAX) / 7 + 1) as i32;
    let zstd = raw_batch(over, 4, 5, &[0; 16]);
    invalid(
        validate_produced(&zstd, MAX).map(|_| ()),
        "zstd count over the cap",
    );
    // Stored (replicated or from before this check): the decoder refuses it.
    batch::validate_stored(&hostile).expect("header-valid");
    let err = for_each_record(&hostile, LIMIT, true, |_| ControlFlow::Continue(()));
    assert!(matches!(err, Err(BatchError::Invalid { .. })), "{err:?}");
}

#[test]
fn records_must_match_the_count() {
    let value = [b'v'; 20];
    let two: Vec<u8> = [
        record_bytes(0, -1, &value, 0),
        record_bytes(1, -1, &value, 0),
    ]
    .concat();
    assert!(produced(&raw_batch(2, 0, 5, &two)).is_ok());
    invalid(
        produced(&raw_batch(3, 0, 5, &two)),
        "fewer records than declared",
    );
    invalid(
        produced(&raw_batch(1, 0, 5, &two)),
        "bytes after the last record",
    );
}

#[test]
fn offset_deltas_must_run_0_to_n_minus_1() {
    let swapped: Vec<u8> = [record_bytes(1, -1, b"a", 0), record_bytes(0, -1, b"b", 0)].concat();
    invalid(produced(&raw_batch(2, 0, 5, &swapped)), "deltas 1, 0");
    let gap: Vec<u8> = [record_bytes(0, -1, b"a", 0), record_bytes(2, -1, b"b", 0)].concat();
    invalid(produced(&raw_batch(2, 0, 5, &gap)), "deltas 0, 2");
    // The same through a compressed batch.
    let records = vec![record(0, 5, b"a".to_vec()), record(2, 5, b"b".to_vec())];
    let bytes = encode(&records, Compression::Gzip);
    let bytes = patched(&bytes, 23, &1i32.to_be_bytes());
    invalid(produced(&bytes), "gzip deltas 0, 2");
}

#[test]
fn malformed_records_are_invalid() {
    let bad = [
        ("key length -5", record_bytes(0, -5, b"", 0)),
        ("negative header count", record_bytes(0, -1, b"v", -1)),
        (
            "2^31-1 headers in no bytes",
            record_bytes(0, -1, b"v", i32::MAX as i64),
        ),
        ("a value longer than the record", {
            let mut r = record_bytes(0, -1, b"abc", 0);
            r[0] -= 2; // the length, zigzag: 2 bytes shorter
            r
        }),
        ("a record longer than its fields", {
            let mut r = record_bytes(0, -1, b"abc", 0);
            r[0] += 2;
            r.push(0);
            r
        }),
        ("a record length of 0", vec![0; 7]),
        ("a varint that never ends", vec![0xff; 12]),
    ];
    for (what, payload) in bad {
        invalid(produced(&raw_batch(1, 0, 5, &payload)), what);
    }
}

#[test]
fn max_timestamp_must_match_the_records() {
    let bytes = batch_with(&[10, 30, 20], "t", 10, Compression::None);
    assert!(produced(&bytes).is_ok());
    invalid(
        produced(&patched(&bytes, 35, &31i64.to_be_bytes())),
        "above",
    );
    invalid(
        produced(&patched(&bytes, 35, &20i64.to_be_bytes())),
        "below",
    );
    // LogAppendTime topics replace it: not checked.
    let lie = patched(&bytes, 35, &99i64.to_be_bytes());
    let header = validate_produced(&lie, MAX).expect("header");
    assert!(check_produced(&lie, &header, LIMIT, false).is_ok());
}

#[test]
fn honest_batches_of_every_codec_pass_and_decode() {
    for codec in CODECS {
        let bytes = batch_with(&[10, 30, 20], "x", 100, codec);
        let header = validate_produced(&bytes, MAX).expect("header");
        let summary = check_produced(&bytes, &header, LIMIT, true).expect("records");
        assert_eq!((summary.count, summary.max_timestamp), (3, 30), "{codec:?}");
        let mut seen: Vec<RecordView> = Vec::new();
        for_each_record(&bytes, LIMIT, true, |r| {
            seen.push(r);
            ControlFlow::Continue(())
        })
        .expect("decodes");
        let expected: Vec<RecordView> = decode(&bytes)
            .into_iter()
            .map(|r| RecordView {
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key,
                value: r.value,
            })
            .collect();
        assert_eq!(seen, expected, "{codec:?}");
    }
}

#[test]
fn compressed_counts_must_match_too() {
    for codec in &CODECS[1..] {
        let bytes = batch_with(&[1, 2, 3], "c", 10, *codec);
        let more = patched(&bytes, 57, &4i32.to_be_bytes());
        let more = patched(&more, 23, &3i32.to_be_bytes());
        invalid(produced(&more), &format!("{codec:?}: 4 declared, 3 held"));
    }
}

/// The start of a record whose value claims ~2 GB, for bombs to fill.
fn bomb_prefix() -> Vec<u8> {
    const VALUE: i64 = 2_000_000_000;
    let mut value_len = Vec::new();
    varint(&mut value_len, VALUE);
    let mut out = Vec::new();
    varint(&mut out, 4 + value_len.len() as i64 + VALUE + 1);
    out.extend_from_slice(&[0, 0, 0, 1]);
    out.extend_from_slice(&value_len);
    out
}

#[test]
fn a_zstd_bomb_stops_at_the_cap() {
    // A raw block with the record's start, then RLE blocks of 128 KiB of
    // zeros, 4 bytes each: 4 KiB expand to 128 MiB.
    let prefix = bomb_prefix();
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3];
    frame.extend_from_slice(&((prefix.len() as u32) << 3).to_le_bytes()[..3]);
    frame.extend_from_slice(&prefix);
    for i in 0..1024u32 {
        let rle = (128 * 1024) << 3 | 1 << 1 | u32::from(i == 1023);
        frame.extend_from_slice(&rle.to_le_bytes()[..3]);
        frame.push(0);
    }
    too_large(produced(&raw_batch(1, 4, 5, &frame)), "zstd bomb");
}

#[test]
fn a_gzip_bomb_stops_at_the_cap() {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&bomb_prefix()).expect("gzip");
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..4 {
        encoder.write_all(&zeros).expect("gzip");
    }
    let payload = encoder.finish().expect("gzip");
    too_large(produced(&raw_batch(1, 1, 5, &payload)), "gzip bomb");
}

#[test]
fn a_snappy_block_claiming_more_than_the_cap_is_never_allocated() {
    // Raw snappy: the preamble claims 2^32-1 bytes.
    let payload = [0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0];
    too_large(produced(&raw_batch(1, 2, 5, &payload)), "raw snappy");
    // Xerial framing, one block claiming the same.
    let mut framed = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
    framed.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    framed.extend_from_slice(&payload);
    too_large(produced(&raw_batch(1, 2, 5, &framed)), "xerial snappy");
}

#[test]
fn a_stream_that_does_not_decompress_is_corrupt() {
    for codec in 1..=4i16 {
        let result = produced(&raw_batch(1, codec, 5, &[0x5a; 40]));
        match result {
            Err(e @ BatchError::Corrupt { .. }) => assert_eq!(e.kafka_error_code(), 2),
            other => panic!("codec {codec}: expected CORRUPT_MESSAGE, got {other:?}"),
        }
    }
}

#[test]
fn the_log_refuses_a_lying_batch_and_keeps_its_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    log.append_as_leader(simple_batch(2, 5, 10), 0, 5)
        .expect("honest batch");
    let lie = patched(&simple_batch(2, 5, 10), 35, &50i64.to_be_bytes());
    let err = log.append_as_leader(lie, 0, 5).expect_err("lying batch");
    assert_eq!(err.kafka_error_code(), 87, "{err}");
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn a_stored_batch_claiming_2_pow_31_records_does_not_abort_a_lookup_by_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    log.append_as_follower(raw_batch(i32::MAX, 0, 1_000, &[]))
        .expect("a replica stores what its leader sent");
    log.set_high_watermark(log.log_end_offset());
    // The records cannot be walked: the answer is the batch start.
    let found = log.offset_for_timestamp(500).expect("lookup");
    assert_eq!(found.map(|f| f.offset), Some(0));
}
