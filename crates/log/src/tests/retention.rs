//! Retention by size and by time.

use super::{fill, open, read_all, segment_files, small_config};
use crate::{LogConfig, LogError, ReadBound};

#[test]
fn retention_bytes_deletes_oldest_segments_and_moves_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: Some(3000),
        retention_ms: None,
        ..small_config(1000)
    };
    let log = open(dir.path(), config);
    fill(&log, 60, 2, 0, 0);
    let before = log.segment_count();
    log.set_high_watermark(log.log_end_offset());
    let deleted = log.enforce_retention(0).unwrap();
    assert!(deleted > 0);
    assert_eq!(log.segment_count(), before - deleted);
    assert!(
        log.size_in_bytes() <= 3000 + 1000,
        "{}",
        log.size_in_bytes()
    );
    let start = log.log_start_offset();
    assert!(start > 0);
    assert_eq!(
        segment_files(dir.path())[0]
            .file_name()
            .unwrap()
            .to_str()
            .unwrap(),
        format!("{start:020}.log")
    );
    assert!(matches!(
        log.read(0, 100, ReadBound::LogEnd, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(
        read_all(&log, start, ReadBound::LogEnd)
            .last()
            .unwrap()
            .0
            .next_offset(),
        120
    );
    assert_eq!(
        log.enforce_retention(0).unwrap(),
        0,
        "nothing more to delete"
    );
    drop(log);
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.log_start_offset(), start);
}

#[test]
fn retention_ms_deletes_segments_whose_newest_record_is_old() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: Some(10_000),
        ..small_config(1000)
    };
    let log = open(dir.path(), config);
    fill(&log, 20, 2, 1_000, 3);
    let old_end = log.log_end_offset();
    fill(&log, 20, 2, 100_000, 4);
    log.set_high_watermark(log.log_end_offset());
    assert_eq!(
        log.enforce_retention(5_000).unwrap(),
        0,
        "nothing older than 10 s at t=5 s"
    );
    let deleted = log.enforce_retention(105_000).unwrap();
    assert!(deleted > 0);
    let start = log.log_start_offset();
    assert!(
        start >= old_end - 12 && start <= old_end,
        "start {start}, old end {old_end}"
    );
    assert_eq!(
        log.epoch_entries().first().map(|e| e.1),
        Some(start),
        "epoch cache trimmed to the start"
    );
}

#[test]
fn retention_keeps_the_active_segment_and_what_is_above_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: Some(0),
        ..small_config(1000)
    };
    let log = open(dir.path(), config);
    fill(&log, 30, 2, 0, 0);
    assert_eq!(
        log.enforce_retention(0).unwrap(),
        0,
        "the high watermark is 0"
    );
    log.set_high_watermark(log.log_end_offset());
    let count = log.segment_count();
    assert_eq!(log.enforce_retention(0).unwrap(), count - 1);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.high_watermark(), 60);
}
