//! Power loss with unflushed data: past the recovery point the first invalid
//! batch ends the log, even when valid batches follow it (pages written out
//! of order); below it the same damage is [`LogError::Corrupt`].

use std::fs;
use std::path::Path;

use bytes::Bytes;

use super::{fill, open, read_all, segment_files, simple_batch, small_config};
use crate::{BatchHeader, LogConfig, LogError, PartitionLog, ReadBound};

fn batch_size() -> u64 {
    simple_batch(2, 0, 40).len() as u64
}

/// Damage to the batch at `start` that power loss can leave: a byte under
/// the CRC changed, or the whole batch never written (zeros).
fn damaged(original: &[u8], start: u64) -> Vec<(&'static str, Vec<u8>)> {
    let (start, end) = (start as usize, (start + batch_size()) as usize);
    let mut flipped = original.to_vec();
    flipped[start + 70] ^= 0x55;
    let mut zeros = original.to_vec();
    zeros[start..end].fill(0);
    vec![("a flipped byte", flipped), ("zeros", zeros)]
}

/// Twelve batches of two records in one segment, the first six flushed
/// (recovery point 12), then a crash: the segment's bytes and its batches.
fn half_flushed(dir: &Path) -> (Vec<u8>, Vec<(BatchHeader, Bytes)>) {
    let log = open(dir, LogConfig::default());
    fill(&log, 6, 2, 0, 0);
    log.flush().unwrap();
    log.checkpoint().unwrap();
    fill(&log, 6, 2, 100, 0);
    assert_eq!(log.recovery_point(), 12);
    let batches = read_all(&log, 0, ReadBound::LogEnd);
    drop(log);
    (fs::read(&segment_files(dir)[0]).unwrap(), batches)
}

fn expect_corrupt(dir: &Path, config: LogConfig, file: &Path, at: u64, what: &str) {
    match PartitionLog::open(dir, config) {
        Err(LogError::Corrupt {
            file: f, position, ..
        }) => {
            assert_eq!((f.as_path(), position), (file, at), "{what}")
        }
        Err(e) => panic!("{what}: expected Corrupt, got {e}"),
        Ok(_) => panic!("{what}: expected Corrupt, opened fine"),
    }
}

#[test]
fn an_invalid_batch_past_the_recovery_point_ends_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (original, before) = half_flushed(dir.path());
    let seg = segment_files(dir.path())[0].clone();
    let state = dir.path().join("partition.state");
    let saved_state = fs::read(&state).unwrap();
    // Batch 8 holds offsets 16 and 17; three valid batches follow it.
    let at = 8 * batch_size();
    for (what, bytes) in damaged(&original, at) {
        fs::write(&seg, &bytes).unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default())
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(log.log_end_offset(), 16, "{what}");
        assert_eq!(fs::metadata(&seg).unwrap().len(), at, "{what}");
        assert_eq!(read_all(&log, 0, ReadBound::LogEnd), before[..8], "{what}");
        let info = log.append_as_leader(simple_batch(1, 0, 1), 0, 0).unwrap();
        assert_eq!(info.first_offset, 16, "{what}");
        drop(log);
        fs::write(&seg, &original).unwrap();
        fs::write(&state, &saved_state).unwrap();
    }
}

#[test]
fn an_invalid_batch_below_the_recovery_point_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let (original, _) = half_flushed(dir.path());
    let seg = segment_files(dir.path())[0].clone();
    // Batch 3 holds offsets 6 and 7, below the recovery point 12.
    let at = 3 * batch_size();
    for (what, bytes) in damaged(&original, at) {
        fs::write(&seg, &bytes).unwrap();
        expect_corrupt(dir.path(), LogConfig::default(), &seg, at, what);
        assert_eq!(fs::read(&seg).unwrap(), bytes, "{what}: nothing was cut");
    }
}

#[test]
fn an_invalid_batch_in_a_sealed_segment_past_the_recovery_point_ends_the_log() {
    let config = small_config(1000);
    for kind in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config.clone());
        fill(&log, 4, 2, 0, 0);
        log.flush().unwrap();
        log.checkpoint().unwrap();
        fill(&log, 20, 2, 100, 0);
        drop(log);
        let files = segment_files(dir.path());
        assert!(files.len() >= 4, "{files:?}");
        // The second segment is sealed, wholly past the recovery point 8.
        let sealed = files[1].clone();
        let stem = sealed.file_stem().and_then(|s| s.to_str()).unwrap();
        let base: i64 = stem.parse().unwrap();
        assert!(base >= 8);
        let original = fs::read(&sealed).unwrap();
        let (what, bytes) = damaged(&original, batch_size()).swap_remove(kind);
        fs::write(&sealed, &bytes).unwrap();

        let log = PartitionLog::open(dir.path(), config.clone())
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(log.log_end_offset(), base + 2, "{what}");
        assert_eq!(
            segment_files(dir.path()),
            files[..2],
            "{what}: later segments go"
        );
        assert_eq!(fs::metadata(&sealed).unwrap().len(), batch_size(), "{what}");
        let batches = read_all(&log, 0, ReadBound::LogEnd);
        assert_eq!(batches.len() as i64, base / 2 + 1, "{what}");
        let info = log.append_as_leader(simple_batch(1, 0, 1), 0, 0).unwrap();
        assert_eq!(info.first_offset, base + 2, "{what}");
    }
}

#[test]
fn after_a_truncation_the_new_tail_is_past_the_recovery_point() {
    // Flushed up to 12, cut back to 6 by replication, refilled without a
    // flush: the new batches at 6.. are not covered by the old point.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    fill(&log, 6, 2, 0, 0);
    log.flush().unwrap();
    log.checkpoint().unwrap();
    log.truncate_to(6).unwrap();
    fill(&log, 6, 2, 100, 1);
    drop(log);
    let seg = segment_files(dir.path())[0].clone();
    let original = fs::read(&seg).unwrap();
    let state = dir.path().join("partition.state");
    let saved_state = fs::read(&state).unwrap();
    // Batch 4 holds offsets 8 and 9: below the old point 12, past the new 6.
    for (what, bytes) in damaged(&original, 4 * batch_size()) {
        fs::write(&seg, &bytes).unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default())
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(log.log_end_offset(), 8, "{what}");
        assert_eq!(log.epoch_entries(), vec![(0, 0), (1, 6)], "{what}");
        drop(log);
        fs::write(&seg, &original).unwrap();
        fs::write(&state, &saved_state).unwrap();
    }
}
