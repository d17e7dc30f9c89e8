//! Finding offsets by timestamp, inside uncompressed and compressed batches.

use kafka_protocol::records::Compression;

use super::{batch_with, open, small_config, CODECS};
use crate::{LogConfig, PartitionLog, TimestampOffset, TimestampType};

/// Batches of 5 records with increasing timestamps 1000, 1010, ... (10 apart).
fn timed_log(dir: &std::path::Path, codec: Compression, config: LogConfig) -> PartitionLog {
    let log = open(dir, config);
    for b in 0..30i64 {
        let timestamps: Vec<i64> = (0..5).map(|r| 1000 + (b * 5 + r) * 10).collect();
        log.append_as_leader(batch_with(&timestamps, "t", 30, codec), 2, 0)
            .unwrap();
    }
    log.set_high_watermark(log.log_end_offset());
    log
}

fn found(timestamp: i64, offset: i64) -> Option<TimestampOffset> {
    Some(TimestampOffset {
        timestamp,
        offset,
        leader_epoch: 2,
    })
}

#[test]
fn offset_for_timestamp_finds_the_record_inside_a_batch_with_every_codec() {
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let log = timed_log(dir.path(), codec, small_config(1200));
        assert!(log.segment_count() > 2);
        assert_eq!(
            log.offset_for_timestamp(0).unwrap(),
            found(1000, 0),
            "{codec:?}"
        );
        assert_eq!(log.offset_for_timestamp(1000).unwrap(), found(1000, 0));
        assert_eq!(log.offset_for_timestamp(1001).unwrap(), found(1010, 1));
        assert_eq!(log.offset_for_timestamp(1230).unwrap(), found(1230, 23));
        assert_eq!(log.offset_for_timestamp(1225).unwrap(), found(1230, 23));
        assert_eq!(log.offset_for_timestamp(2490).unwrap(), found(2490, 149));
        assert_eq!(log.offset_for_timestamp(2491).unwrap(), None);
    }
}

#[test]
fn timestamp_lookups_see_only_below_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let log = timed_log(dir.path(), Compression::None, small_config(1200));
    log.set_high_watermark(100);
    assert_eq!(log.offset_for_timestamp(1990).unwrap(), found(1990, 99));
    assert_eq!(log.offset_for_timestamp(1991).unwrap(), None);
    assert_eq!(log.max_timestamp_offset().unwrap(), found(1990, 99));
}

#[test]
fn timestamps_work_after_a_clean_reopen_and_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let log = timed_log(dir.path(), Compression::Snappy, small_config(1200));
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), small_config(1200));
    assert_eq!(log.offset_for_timestamp(1555).unwrap(), found(1560, 56));
    drop(log);
    let log = open(dir.path(), small_config(1200));
    assert_eq!(log.offset_for_timestamp(1555).unwrap(), found(1560, 56));
}

#[test]
fn out_of_order_timestamps_give_the_first_record_by_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    log.append_as_leader(
        batch_with(&[100, 500, 200], "a", 10, Compression::Gzip),
        0,
        0,
    )
    .unwrap();
    log.append_as_leader(
        batch_with(&[300, 900, 50], "b", 10, Compression::None),
        0,
        0,
    )
    .unwrap();
    log.append_as_leader(batch_with(&[900, 10], "c", 10, Compression::Zstd), 0, 0)
        .unwrap();
    log.set_high_watermark(8);
    let at = |ts| {
        log.offset_for_timestamp(ts)
            .unwrap()
            .map(|t| (t.timestamp, t.offset))
    };
    assert_eq!(at(150), Some((500, 1)));
    assert_eq!(at(600), Some((900, 4)));
    assert_eq!(at(901), None);
    let max = log.max_timestamp_offset().unwrap().unwrap();
    assert_eq!(
        (max.timestamp, max.offset),
        (900, 4),
        "the first record with the largest timestamp"
    );
}

#[test]
fn log_append_time_batches_answer_from_their_header() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let log = open(dir.path(), config);
    for (i, now) in [5000, 6000, 7000].into_iter().enumerate() {
        log.append_as_leader(
            batch_with(&[1, 2, 3], "l", 10, Compression::Lz4),
            i as i32,
            now,
        )
        .unwrap();
    }
    log.set_high_watermark(9);
    assert_eq!(
        log.offset_for_timestamp(5500).unwrap(),
        Some(TimestampOffset {
            timestamp: 6000,
            offset: 3,
            leader_epoch: 1
        })
    );
    assert_eq!(
        log.max_timestamp_offset().unwrap(),
        Some(TimestampOffset {
            timestamp: 7000,
            offset: 6,
            leader_epoch: 2
        })
    );
}

#[test]
fn an_empty_log_has_no_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.offset_for_timestamp(0).unwrap(), None);
    assert_eq!(log.max_timestamp_offset().unwrap(), None);
}
