//! Leader appends and reads: offsets, rolls, bounds, sizes, LogAppendTime.

use kafka_protocol::records::Compression;

use super::{
    batch_with, decode, fill, open, read_all, segment_files, simple_batch, small_config, CODECS,
};
use crate::batch::{self, BatchHeader};
use crate::error::BatchError;
use crate::{LogConfig, LogError, ReadBound, TimestampType};

#[test]
fn round_trip_across_segment_rolls_with_every_codec() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(2048));
    let mut expected = Vec::new();
    for i in 0..60i64 {
        let codec = CODECS[i as usize % CODECS.len()];
        let timestamps: Vec<i64> = (0..4).map(|j| 1000 + i * 4 + j).collect();
        let bytes = batch_with(&timestamps, &format!("b{i}"), 120, codec);
        let info = log.append_as_leader(bytes, 1, 5000).unwrap();
        assert_eq!(info.first_offset, i * 4);
        assert_eq!(info.last_offset, i * 4 + 3);
        assert_eq!(info.max_timestamp, 1000 + i * 4 + 3);
        assert_eq!(info.log_append_time, -1);
        for j in 0..4 {
            expected.push((i * 4 + j, format!("b{i}-{j}")));
        }
    }
    assert_eq!(log.log_end_offset(), 240);
    assert!(
        log.segment_count() > 3,
        "tiny segments roll: {}",
        log.segment_count()
    );
    let files = segment_files(dir.path());
    assert_eq!(files.len(), log.segment_count());
    assert_eq!(files[0].file_name().unwrap(), "00000000000000000000.log");

    let batches = read_all(&log, 0, ReadBound::LogEnd);
    assert_eq!(batches.len(), 60);
    for (i, (header, bytes)) in batches.iter().enumerate() {
        assert_eq!(
            header.compression(),
            CODECS[i % CODECS.len()] as u8,
            "stored as received"
        );
        assert_eq!(header.partition_leader_epoch, 1);
        let records = decode(bytes);
        for (r, (offset, value)) in records.iter().zip(&expected[i * 4..i * 4 + 4]) {
            assert_eq!(r.offset, *offset);
            assert!(r.value.as_ref().unwrap().starts_with(value.as_bytes()));
        }
    }
}

#[test]
fn reads_start_at_the_batch_holding_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1 << 20));
    fill(&log, 50, 5, 100, 0);
    for offset in [0, 3, 7, 124, 248, 249] {
        let result = log.read(offset, 1 << 20, ReadBound::LogEnd, true).unwrap();
        let first = BatchHeader::parse(&result.records).unwrap();
        assert_eq!(first.base_offset, offset / 5 * 5, "offset {offset}");
        assert_eq!(result.log_end_offset, 250);
    }
}

#[test]
fn max_bytes_gives_whole_batches_and_min_one_batch_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    fill(&log, 10, 3, 100, 0);
    let size = simple_batch(3, 0, 40).len();

    let two = log
        .read(0, 2 * size + size / 2, ReadBound::LogEnd, false)
        .unwrap();
    assert_eq!(two.records.len(), 2 * size);
    assert_eq!(batch::batches(&two.records).count(), 2);

    let none = log.read(3, size - 1, ReadBound::LogEnd, false).unwrap();
    assert!(none.records.is_empty());

    let one = log.read(4, 10, ReadBound::LogEnd, true).unwrap();
    assert_eq!(one.records.len(), size);
    assert_eq!(BatchHeader::parse(&one.records).unwrap().base_offset, 3);
}

#[test]
fn reads_stop_at_the_high_watermark_for_consumers() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1 << 20));
    fill(&log, 10, 2, 100, 0);
    assert_eq!(log.high_watermark(), 0);
    log.set_high_watermark(8);
    assert_eq!(log.high_watermark(), 8);

    let consumer = read_all(&log, 0, ReadBound::HighWatermark);
    assert_eq!(consumer.last().unwrap().0.next_offset(), 8);
    let follower = read_all(&log, 0, ReadBound::LogEnd);
    assert_eq!(follower.last().unwrap().0.next_offset(), 20);

    let at_hw = log
        .read(8, 1 << 20, ReadBound::HighWatermark, true)
        .unwrap();
    assert!(at_hw.records.is_empty());
    assert_eq!(at_hw.high_watermark, 8);
    let above_hw = log
        .read(12, 1 << 20, ReadBound::HighWatermark, true)
        .unwrap();
    assert!(above_hw.records.is_empty());
    let at_end = log.read(20, 1 << 20, ReadBound::LogEnd, true).unwrap();
    assert!(at_end.records.is_empty());

    log.set_high_watermark(1000);
    assert_eq!(log.high_watermark(), 20, "clamped to the log end");
}

#[test]
fn offsets_outside_the_log_are_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    fill(&log, 2, 2, 100, 0);
    let err = log.read(5, 100, ReadBound::LogEnd, true).unwrap_err();
    assert!(
        matches!(
            err,
            LogError::OffsetOutOfRange {
                offset: 5,
                log_start: 0,
                log_end: 4
            }
        ),
        "{err}"
    );
    assert_eq!(err.kafka_error_code(), 1);
    assert!(matches!(
        log.read(-1, 100, ReadBound::LogEnd, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn log_append_time_rewrites_the_timestamp_with_a_valid_crc() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let log = open(dir.path(), config);
    let info = log
        .append_as_leader(
            batch_with(&[10, 20, 30], "t", 10, Compression::Gzip),
            4,
            99_000,
        )
        .unwrap();
    assert_eq!(info.log_append_time, 99_000);
    assert_eq!(info.max_timestamp, 99_000);
    let (header, bytes) = read_all(&log, 0, ReadBound::LogEnd).remove(0);
    assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(header.max_timestamp, 99_000);
    assert_eq!(header.compression(), 1);
    batch::validate_stored(&bytes).expect("CRC recomputed");
    assert_eq!(decode(&bytes).len(), 3, "a client can still decode it");
}

#[test]
fn bad_batches_are_refused_with_their_code() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(
        dir.path(),
        LogConfig {
            max_message_bytes: 500,
            ..LogConfig::default()
        },
    );
    let mut bad = simple_batch(2, 5, 10).to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let err = log.append_as_leader(bad.into(), 0, 0).unwrap_err();
    assert!(matches!(err, LogError::Batch(BatchError::Corrupt { .. })));
    assert_eq!(err.kafka_error_code(), 2);
    let err = log
        .append_as_leader(simple_batch(20, 5, 100), 0, 0)
        .unwrap_err();
    assert_eq!(err.kafka_error_code(), 10);
    assert_eq!(log.log_end_offset(), 0, "nothing was appended");
}

#[test]
fn an_older_leader_epoch_is_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    fill(&log, 1, 1, 0, 5);
    let err = log
        .append_as_leader(simple_batch(1, 0, 1), 4, 0)
        .unwrap_err();
    assert!(matches!(
        err,
        LogError::FencedLeaderEpoch {
            epoch: 4,
            latest: 5
        }
    ));
    assert_eq!(err.kafka_error_code(), 74);
    fill(&log, 1, 1, 0, 6);
    assert_eq!(log.latest_epoch(), Some(6));
    assert_eq!(log.epoch_entries(), vec![(5, 0), (6, 1)]);
}

#[test]
fn flush_policy_and_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush_interval_messages: Some(6),
        flush_interval_ms: Some(1000),
        segment_bytes: 1 << 20,
        ..LogConfig::default()
    };
    let log = open(dir.path(), config.clone());
    assert!(!log.flush_due(i64::MAX), "nothing to flush");
    fill(&log, 2, 2, 0, 0);
    assert!(!log.flush_due(crate::util::now_ms()));
    assert!(log.flush_due(crate::util::now_ms() + 1000), "flush.ms");
    fill(&log, 1, 2, 0, 0);
    assert!(log.flush_due(crate::util::now_ms()), "flush.messages");
    assert_eq!(log.recovery_point(), 0);
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), 6);
    assert!(!log.flush_due(crate::util::now_ms()));

    log.update_config(LogConfig {
        segment_bytes: 200,
        ..config
    });
    fill(&log, 3, 2, 0, 0);
    assert!(log.segment_count() > 1);
    assert!(
        log.flush_due(crate::util::now_ms()),
        "a rolled segment awaits its fsync"
    );
    log.flush().unwrap();
    assert!(!log.flush_due(crate::util::now_ms()));
    assert_eq!(log.recovery_point(), 12);
}

#[test]
fn segment_ms_and_index_size_roll_segments() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_ms: Some(1000),
        ..LogConfig::default()
    };
    let log = open(dir.path(), config);
    log.append_as_leader(simple_batch(1, 0, 10), 0, 10_000)
        .unwrap();
    log.append_as_leader(simple_batch(1, 0, 10), 0, 10_500)
        .unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append_as_leader(simple_batch(1, 0, 10), 0, 11_001)
        .unwrap();
    assert_eq!(log.segment_count(), 2);

    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        index_interval_bytes: 0,
        segment_index_bytes: 3 * 12,
        ..LogConfig::default()
    };
    let log = open(dir.path(), config);
    for ts in 0..10 {
        log.append_as_leader(simple_batch(1, ts, 10), 0, 0).unwrap();
    }
    assert!(log.segment_count() >= 3, "{}", log.segment_count());
    assert_eq!(read_all(&log, 0, ReadBound::LogEnd).len(), 10);
}
