//! Follower appends, truncation and the leader-epoch cache.

use bytes::Bytes;

use super::{fill, open, read_all, segment_files, simple_batch, small_config};
use crate::{LogConfig, LogError, ReadBound};

#[test]
fn a_follower_copies_the_leader_byte_for_byte() {
    let leader_dir = tempfile::tempdir().unwrap();
    let leader = open(leader_dir.path(), small_config(1500));
    fill(&leader, 10, 2, 0, 1);
    fill(&leader, 25, 3, 100, 3);
    let follower_dir = tempfile::tempdir().unwrap();
    let follower = open(follower_dir.path(), small_config(1500));
    let mut offset = 0;
    while offset < leader.log_end_offset() {
        let fetched = leader.read(offset, 700, ReadBound::LogEnd, true).unwrap();
        // A leader may cut a batch short; the follower ignores the partial tail.
        let mut records = fetched.records.to_vec();
        records.extend_from_slice(&simple_batch(1, 0, 10)[..30]);
        let info = follower.append_as_follower(Bytes::from(records)).unwrap();
        assert_eq!(info.first_offset, offset);
        offset = info.last_offset + 1;
    }
    assert_eq!(follower.log_end_offset(), 95);
    assert_eq!(
        read_all(&follower, 0, ReadBound::LogEnd),
        read_all(&leader, 0, ReadBound::LogEnd)
    );
    assert_eq!(follower.epoch_entries(), vec![(1, 0), (3, 20)]);
    assert!(follower.segment_count() > 2);
}

#[test]
fn follower_batches_must_continue_the_log() {
    let leader_dir = tempfile::tempdir().unwrap();
    let leader = open(leader_dir.path(), LogConfig::default());
    fill(&leader, 3, 2, 0, 0);
    let all = leader
        .read(0, 1 << 20, ReadBound::LogEnd, true)
        .unwrap()
        .records;
    let follower_dir = tempfile::tempdir().unwrap();
    let follower = open(follower_dir.path(), LogConfig::default());
    let second = simple_batch(2, 0, 40).len();
    let mut corrupt = all.to_vec();
    corrupt[100] ^= 1;
    assert_eq!(
        follower
            .append_as_follower(corrupt.into())
            .unwrap_err()
            .kafka_error_code(),
        2
    );
    assert_eq!(follower.log_end_offset(), 0);
    // A gap is where a compacted leader removed records: accepted.
    follower.append_as_follower(all.slice(second..)).unwrap();
    assert_eq!(follower.log_end_offset(), 6);
    // Going back is not.
    let err = follower.append_as_follower(all.clone()).unwrap_err();
    assert!(
        matches!(
            err,
            LogError::NonContiguous {
                expected: 6,
                found: 0
            }
        ),
        "{err}"
    );
    assert_eq!(follower.log_end_offset(), 6);
}

#[test]
fn truncate_to_cuts_whole_batches_segments_and_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1000));
    fill(&log, 12, 2, 0, 1);
    fill(&log, 12, 2, 0, 2);
    fill(&log, 12, 2, 0, 5);
    log.set_high_watermark(70);
    let segments = segment_files(dir.path()).len();
    // Offset 31 is inside the batch [30, 31]: the batch goes.
    log.truncate_to(31).unwrap();
    assert_eq!(log.log_end_offset(), 30);
    assert_eq!(log.high_watermark(), 30);
    assert_eq!(log.epoch_entries(), vec![(1, 0), (2, 24)]);
    assert!(segment_files(dir.path()).len() < segments);
    assert_eq!(
        read_all(&log, 0, ReadBound::LogEnd)
            .last()
            .unwrap()
            .0
            .next_offset(),
        30
    );
    let info = log.append_as_leader(simple_batch(2, 0, 40), 6, 0).unwrap();
    assert_eq!(info.first_offset, 30);
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 30)));
    drop(log);
    let log = open(dir.path(), small_config(1000));
    assert_eq!(log.log_end_offset(), 32);
    assert_eq!(log.epoch_entries(), vec![(1, 0), (2, 24), (6, 30)]);
    assert_eq!(read_all(&log, 0, ReadBound::LogEnd).len(), 16);
}

#[test]
fn truncate_below_the_start_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1000));
    fill(&log, 20, 2, 0, 1);
    log.truncate_fully_and_start_at(500).unwrap();
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.high_watermark()
        ),
        (500, 500, 500)
    );
    assert_eq!(log.latest_epoch(), None);
    assert_eq!(segment_files(dir.path()).len(), 1);
    let info = log.append_as_leader(simple_batch(1, 0, 1), 2, 0).unwrap();
    assert_eq!(info.first_offset, 500);
    drop(log);
    let log = open(dir.path(), LogConfig::default());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 501));
}

#[test]
fn end_offset_for_epoch_follows_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.end_offset_for_epoch(0), None, "empty cache");
    fill(&log, 10, 1, 0, 1);
    fill(&log, 10, 1, 0, 3);
    fill(&log, 10, 1, 0, 5);
    assert_eq!(
        log.end_offset_for_epoch(5),
        Some((5, 30)),
        "latest: the log end"
    );
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 20)));
    assert_eq!(
        log.end_offset_for_epoch(4),
        Some((3, 20)),
        "unknown epoch: the one below"
    );
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 10)));
    assert_eq!(
        log.end_offset_for_epoch(0),
        Some((0, 0)),
        "below every epoch"
    );
    assert_eq!(log.end_offset_for_epoch(6), None);
    assert_eq!(log.end_offset_for_epoch(-1), None);
    drop(log);
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(
        log.end_offset_for_epoch(3),
        Some((3, 20)),
        "survives reopen"
    );
    assert_eq!(log.latest_epoch(), Some(5));
}
