//! Idempotent producers through the log: duplicates answered with their
//! original offsets and written nowhere, sequence gaps and stale epochs
//! refused with the log unchanged, and the producer state carried by
//! follower appends, recovery and truncation.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

use super::{idempotence_batch, open, read_all, small_config};
use crate::{LogConfig, LogError, PartitionLog, ReadBound};

fn append(log: &PartitionLog, records: Bytes) -> Result<(i64, i64), LogError> {
    log.append_as_leader(records, 0, 1_000)
        .map(|info| (info.first_offset, info.last_offset))
}

fn code(result: Result<(i64, i64), LogError>) -> i16 {
    result.map_or_else(|e| e.kafka_error_code(), |_| 0)
}

#[test]
fn a_duplicate_batch_gets_its_original_offsets_and_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(append(&log, idempotence_batch(5, 0, 0, 3)).unwrap(), (0, 2));
    assert_eq!(append(&log, idempotence_batch(5, 0, 3, 2)).unwrap(), (3, 4));
    assert_eq!(append(&log, idempotence_batch(5, 0, 0, 3)).unwrap(), (0, 2));
    assert_eq!(append(&log, idempotence_batch(5, 0, 3, 2)).unwrap(), (3, 4));
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(read_all(&log, 0, ReadBound::LogEnd).len(), 2);
}

#[test]
fn a_sequence_gap_and_a_stale_epoch_leave_the_log_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    append(&log, idempotence_batch(5, 1, 0, 3)).unwrap();
    assert_eq!(
        code(append(&log, idempotence_batch(5, 1, 4, 1))),
        ResponseError::OutOfOrderSequenceNumber.code()
    );
    assert_eq!(
        code(append(&log, idempotence_batch(5, 0, 3, 1))),
        ResponseError::InvalidProducerEpoch.code()
    );
    assert_eq!(
        code(append(&log, idempotence_batch(5, 2, 3, 1))),
        ResponseError::OutOfOrderSequenceNumber.code()
    );
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(append(&log, idempotence_batch(5, 1, 3, 1)).unwrap(), (3, 3));
    assert_eq!(append(&log, idempotence_batch(5, 2, 0, 1)).unwrap(), (4, 4));
}

#[test]
fn a_follower_deduplicates_retries_once_it_leads() {
    let leader_dir = tempfile::tempdir().unwrap();
    let leader = open(leader_dir.path(), LogConfig::default());
    for seq in (0..12).step_by(2) {
        append(&leader, idempotence_batch(5, 0, seq, 2)).unwrap();
    }
    let follower_dir = tempfile::tempdir().unwrap();
    let follower = open(follower_dir.path(), LogConfig::default());
    let fetched = leader.read(0, 1 << 20, ReadBound::LogEnd, true).unwrap();
    follower.append_as_follower(fetched.records).unwrap();
    // The follower now leads; the producer retries its last batches.
    assert_eq!(
        append(&follower, idempotence_batch(5, 0, 10, 2)).unwrap(),
        (10, 11)
    );
    assert_eq!(
        append(&follower, idempotence_batch(5, 0, 4, 2)).unwrap(),
        (4, 5)
    );
    assert_eq!(
        code(append(&follower, idempotence_batch(5, 0, 13, 1))),
        ResponseError::OutOfOrderSequenceNumber.code()
    );
    assert_eq!(follower.log_end_offset(), 12);
}

#[test]
fn recovery_rebuilds_the_producer_state_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path(), small_config(300));
        for seq in (0..10).step_by(2) {
            append(&log, idempotence_batch(5, 0, seq, 2)).unwrap();
        }
        append(&log, idempotence_batch(6, 3, 0, 1)).unwrap();
        assert!(log.segment_count() > 1);
        log.close().unwrap();
    }
    let log = open(dir.path(), small_config(300));
    assert_eq!(append(&log, idempotence_batch(5, 0, 8, 2)).unwrap(), (8, 9));
    assert_eq!(
        append(&log, idempotence_batch(6, 3, 0, 1)).unwrap(),
        (10, 10)
    );
    assert_eq!(
        code(append(&log, idempotence_batch(6, 2, 1, 1))),
        ResponseError::InvalidProducerEpoch.code()
    );
    assert_eq!(
        append(&log, idempotence_batch(5, 0, 10, 1)).unwrap(),
        (11, 11)
    );
}

#[test]
fn truncation_forgets_the_cut_batches() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    for seq in (0..8).step_by(2) {
        append(&log, idempotence_batch(5, 0, seq, 2)).unwrap();
    }
    log.truncate_to(4).unwrap();
    // The batch at 4 is gone: its retry is written again, where the log now ends.
    assert_eq!(append(&log, idempotence_batch(5, 0, 4, 2)).unwrap(), (4, 5));
    assert_eq!(append(&log, idempotence_batch(5, 0, 2, 2)).unwrap(), (2, 3));
}

#[test]
fn producers_expire_after_producer_id_expiration_ms() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    append(&log, idempotence_batch(5, 0, 0, 2)).unwrap();
    assert_eq!(log.remove_expired_producers(1_000 + 10, 100), 0);
    assert_eq!(log.producer_count(), 1);
    assert_eq!(log.remove_expired_producers(1_000 + 100, 100), 1);
    // Unknown again: any sequence is accepted (Kafka 3.x).
    assert_eq!(append(&log, idempotence_batch(5, 0, 7, 1)).unwrap(), (2, 2));
}

fn snapshot_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".snapshot"))
        .collect();
    names.sort();
    names
}

#[test]
fn snapshots_are_written_at_roll_and_close_and_read_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path(), small_config(300));
        for seq in (0..10).step_by(2) {
            append(&log, idempotence_batch(5, 0, seq, 2)).unwrap();
        }
        let rolls = log.segment_count() - 1;
        assert!(rolls > 0);
        assert_eq!(snapshot_files(dir.path()).len(), rolls);
        // Dropped without close: the next open reads the active segment
        // after the last roll's snapshot.
    }
    let log = open(dir.path(), small_config(300));
    assert_eq!(append(&log, idempotence_batch(5, 0, 8, 2)).unwrap(), (8, 9));
    assert_eq!(
        append(&log, idempotence_batch(5, 0, 10, 1)).unwrap(),
        (10, 10)
    );
    log.close().unwrap();
    let end = format!("{:020}.snapshot", 11);
    assert!(
        snapshot_files(dir.path()).contains(&end),
        "{:?}",
        snapshot_files(dir.path())
    );
    // A damaged snapshot is skipped: an older one and the batches after it serve.
    std::fs::write(dir.path().join(&end), b"garbage").unwrap();
    let log = open(dir.path(), small_config(300));
    assert_eq!(
        append(&log, idempotence_batch(5, 0, 10, 1)).unwrap(),
        (10, 10)
    );
    assert_eq!(
        code(append(&log, idempotence_batch(5, 0, 12, 1))),
        ResponseError::OutOfOrderSequenceNumber.code()
    );
}

#[test]
fn a_producer_outlives_the_deletion_of_its_segments_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: Some(600),
        ..small_config(300)
    };
    {
        let log = open(dir.path(), config.clone());
        append(&log, idempotence_batch(6, 3, 0, 1)).unwrap();
        for seq in 0..20 {
            append(&log, idempotence_batch(5, 0, seq, 1)).unwrap();
        }
        log.set_high_watermark(log.log_end_offset());
        assert!(log.enforce_retention(1_000).unwrap() > 0);
        assert!(log.log_start_offset() > 0, "producer 6's batch is gone");
        log.close().unwrap();
    }
    let log = open(dir.path(), config);
    // Still known (KIP-360: state outlives retention): its old epoch is stale.
    assert_eq!(
        code(append(&log, idempotence_batch(6, 2, 1, 1))),
        ResponseError::InvalidProducerEpoch.code()
    );
}

#[test]
fn truncation_below_a_snapshot_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(300));
    for seq in (0..10).step_by(2) {
        append(&log, idempotence_batch(5, 0, seq, 2)).unwrap();
    }
    let before = snapshot_files(dir.path()).len();
    log.truncate_to(2).unwrap();
    assert!(snapshot_files(dir.path()).len() < before);
    log.close().unwrap();
    let log = open(dir.path(), small_config(300));
    assert_eq!(append(&log, idempotence_batch(5, 0, 2, 2)).unwrap(), (2, 3));
}

#[test]
fn truncation_restores_the_state_from_before_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    append(&log, idempotence_batch(5, 0, 0, 2)).unwrap();
    append(&log, idempotence_batch(5, 0, 2, 2)).unwrap();
    append(&log, idempotence_batch(5, 1, 0, 1)).unwrap();
    log.truncate_to(4).unwrap();
    // Epoch 1's only batch is gone: the producer is back at epoch 0, seq 3.
    assert_eq!(
        code(append(&log, idempotence_batch(5, 0, 6, 1))),
        ResponseError::OutOfOrderSequenceNumber.code()
    );
    assert_eq!(append(&log, idempotence_batch(5, 0, 0, 2)).unwrap(), (0, 1));
    assert_eq!(append(&log, idempotence_batch(5, 0, 4, 1)).unwrap(), (4, 4));
}
