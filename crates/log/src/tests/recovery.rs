//! Reopening: after a clean close, after a crash (a dropped log that was
//! never closed, as after kill -9), with torn tails and corrupt middles
//! below the recovery point.

use std::fs::OpenOptions;
use std::io::Write;

use super::{fill, open, read_all, segment_files, small_config};
use crate::state_file::PartitionState;
use crate::{LogConfig, LogError, PartitionLog, ReadBound};

fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

#[test]
fn reopen_after_close_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(1500);
    let log = open(dir.path(), config.clone());
    fill(&log, 20, 3, 1000, 2);
    fill(&log, 20, 3, 2000, 4);
    log.set_high_watermark(90);
    let before = read_all(&log, 0, ReadBound::LogEnd);
    let segments = log.segment_count();
    log.close().unwrap();
    assert!(
        PartitionState::read(dir.path())
            .unwrap()
            .unwrap()
            .clean_shutdown
    );
    assert!(matches!(
        log.append_as_leader(super::simple_batch(1, 0, 1), 4, 0),
        Err(LogError::Closed { .. })
    ));
    drop(log);

    let log = open(dir.path(), config);
    assert!(
        !PartitionState::read(dir.path())
            .unwrap()
            .unwrap()
            .clean_shutdown,
        "the marker goes at open"
    );
    assert_eq!(log.log_end_offset(), 120);
    assert_eq!(log.high_watermark(), 90);
    assert_eq!(log.segment_count(), segments);
    assert_eq!(log.epoch_entries(), vec![(2, 0), (4, 60)]);
    assert_eq!(read_all(&log, 0, ReadBound::LogEnd), before);
    // Appends continue where the log ended.
    let info = log
        .append_as_leader(super::simple_batch(2, 5000, 10), 4, 5000)
        .unwrap();
    assert_eq!(info.first_offset, 120);
    // Index files were written at close and are still in use.
    let first_index = segment_files(dir.path())[0].with_extension("index");
    assert!(file_len(&first_index) > 0);
}

#[test]
fn high_watermark_comes_back_from_the_last_checkpoint_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    fill(&log, 10, 1, 0, 0);
    log.set_high_watermark(6);
    log.checkpoint().unwrap();
    log.set_high_watermark(9);
    drop(log);
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.high_watermark(), 6);
    assert_eq!(log.log_end_offset(), 10);
}

#[test]
fn a_crash_keeps_every_acknowledged_append() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1000));
    fill(&log, 30, 2, 0, 3);
    let before = read_all(&log, 0, ReadBound::LogEnd);
    drop(log);
    let log = open(dir.path(), small_config(1000));
    assert_eq!(log.log_end_offset(), 60);
    assert_eq!(read_all(&log, 0, ReadBound::LogEnd), before);
    assert_eq!(log.epoch_entries(), vec![(3, 0)]);
}

#[test]
fn garbage_after_the_last_batch_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1000));
    fill(&log, 12, 2, 0, 0);
    drop(log);
    let last = segment_files(dir.path()).pop().unwrap();
    let len = file_len(&last);
    let mut file = OpenOptions::new().append(true).open(&last).unwrap();
    file.write_all(&[0u8; 700]).unwrap();
    file.write_all(b"\x00\x00\x00\x00\x00\x00\x00\x18\x00\x00\x10\x00 partial batch")
        .unwrap();
    drop(file);

    let log = open(dir.path(), small_config(1000));
    assert_eq!(log.log_end_offset(), 24);
    assert_eq!(file_len(&last), len, "only the tail was cut");
    assert_eq!(read_all(&log, 0, ReadBound::LogEnd).len(), 12);
    let info = log
        .append_as_leader(super::simple_batch(1, 0, 1), 0, 0)
        .unwrap();
    assert_eq!(info.first_offset, 24);
}

#[test]
fn a_batch_cut_short_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    fill(&log, 5, 3, 0, 0);
    drop(log);
    let last = segment_files(dir.path()).pop().unwrap();
    let len = file_len(&last);
    OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 30)
        .unwrap();

    let log = open(dir.path(), LogConfig::default());
    assert_eq!(
        log.log_end_offset(),
        12,
        "the cut batch is gone, the rest stays"
    );
    assert_eq!(file_len(&last), len / 5 * 4);
}

#[test]
fn a_torn_tail_just_before_a_roll_is_cut_and_the_empty_segment_goes() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1000));
    fill(&log, 14, 2, 0, 0);
    drop(log);
    // Power lost soon after a roll: the new segment got no data, the
    // sealed one lost the end of its last batch.
    let files = segment_files(dir.path());
    assert!(files.len() >= 3);
    let (sealed, last) = (&files[files.len() - 2], &files[files.len() - 1]);
    let sealed_len = file_len(sealed);
    OpenOptions::new()
        .write(true)
        .open(last)
        .unwrap()
        .set_len(0)
        .unwrap();
    OpenOptions::new()
        .write(true)
        .open(sealed)
        .unwrap()
        .set_len(sealed_len - 20)
        .unwrap();
    let batch_size = super::simple_batch(2, 0, 40).len() as u64;

    let log = open(dir.path(), small_config(1000));
    assert_eq!(segment_files(dir.path()).len(), files.len() - 1);
    assert!(!last.exists() && !last.with_extension("index").exists());
    assert_eq!(file_len(sealed), sealed_len - batch_size);
    let end = log.log_end_offset();
    assert_eq!(
        read_all(&log, 0, ReadBound::LogEnd)
            .last()
            .unwrap()
            .0
            .next_offset(),
        end
    );
    let info = log
        .append_as_leader(super::simple_batch(1, 0, 1), 0, 0)
        .unwrap();
    assert_eq!(info.first_offset, end);
}

fn flip_byte(path: &std::path::Path, at: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at as usize] ^= 0x55;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_corrupt_sealed_segment_is_an_error_naming_file_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1000));
    // Flushed up to offset 4: the damage (offsets 2 and 3) is below the
    // recovery point, in the segment holding it (past it, see `unflushed_tail`).
    fill(&log, 2, 2, 0, 0);
    log.flush().unwrap();
    log.checkpoint().unwrap();
    fill(&log, 18, 2, 2, 0);
    let batch_size = super::simple_batch(2, 0, 40).len() as u64;
    drop(log);
    let first = segment_files(dir.path())[0].clone();
    flip_byte(&first, batch_size + 70);

    let err = PartitionLog::open(dir.path(), small_config(1000))
        .err()
        .expect("corrupt");
    match &err {
        LogError::Corrupt {
            file,
            position,
            reason,
        } => {
            assert_eq!(file, &first);
            assert_eq!(*position, batch_size);
            assert!(reason.contains("CRC"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    assert_eq!(err.kafka_error_code(), 56);
    assert_eq!(file_len(&first) % batch_size, 0, "nothing was truncated");
}

#[test]
fn a_corrupt_batch_followed_by_valid_ones_is_not_a_tail() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    fill(&log, 6, 2, 0, 0);
    // Flushed: the damage is below the recovery point (past it, see `unflushed_tail`).
    log.flush().unwrap();
    log.checkpoint().unwrap();
    let batch_size = super::simple_batch(2, 0, 40).len() as u64;
    drop(log);
    let only = segment_files(dir.path())[0].clone();
    flip_byte(&only, 3 * batch_size + 65);
    let err = PartitionLog::open(dir.path(), LogConfig::default())
        .err()
        .expect("corrupt");
    assert!(
        matches!(&err, LogError::Corrupt { position, .. } if *position == 3 * batch_size),
        "{err}"
    );
}

#[test]
fn a_bad_index_is_rebuilt_after_a_clean_close() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(4000));
    fill(&log, 40, 2, 0, 0);
    log.close().unwrap();
    drop(log);
    let index = segment_files(dir.path())[0].with_extension("index");
    std::fs::write(&index, [0xffu8; 13]).unwrap();
    let time_index = segment_files(dir.path())[0].with_extension("timeindex");
    std::fs::write(&time_index, [0u8; 24]).unwrap();

    let log = open(dir.path(), small_config(4000));
    assert_eq!(read_all(&log, 0, ReadBound::LogEnd).len(), 40);
    let read = log.read(31, 1, ReadBound::LogEnd, true).unwrap();
    assert_eq!(
        crate::batch::BatchHeader::parse(&read.records)
            .unwrap()
            .base_offset,
        30
    );
    assert_eq!(file_len(&index) % 8, 0);
    assert!(file_len(&index) > 0, "rewritten");
}

#[test]
fn leftovers_of_interrupted_writes_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("partition.state.tmp"), b"half").unwrap();
    std::fs::write(dir.path().join("00000000000000000042.index"), [0u8; 8]).unwrap();
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.log_end_offset(), 0);
    assert!(!dir.path().join("partition.state.tmp").exists());
    assert!(!dir.path().join("00000000000000000042.index").exists());
}

#[test]
fn a_corrupt_state_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    fill(&log, 1, 1, 0, 0);
    log.close().unwrap();
    drop(log);
    let state = dir.path().join("partition.state");
    let len = file_len(&state);
    flip_byte(&state, len - 6);
    let err = PartitionLog::open(dir.path(), LogConfig::default())
        .err()
        .expect("corrupt");
    assert!(
        matches!(&err, LogError::Corrupt { file, .. } if file == &state),
        "{err}"
    );
}

#[test]
fn epochs_are_rebuilt_from_batches_when_the_checkpoint_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1000));
    fill(&log, 5, 1, 0, 1);
    fill(&log, 5, 1, 0, 7);
    drop(log);
    std::fs::remove_file(dir.path().join("leader-epoch-checkpoint")).unwrap();
    let log = open(dir.path(), small_config(1000));
    assert_eq!(log.epoch_entries(), vec![(1, 0), (7, 5)]);
}
