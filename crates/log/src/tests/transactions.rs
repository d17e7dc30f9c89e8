//! Transactions through the log: the ongoing transaction of each producer,
//! the last stable offset moved by COMMIT and ABORT markers, the aborted
//! transactions index (`.txnindex`), and all of it rebuilt by recovery,
//! truncation and followers, and deleted with its segment by retention.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::records::Compression;

use super::{encode, open, record, small_config};
use crate::{AbortedTxn, LogConfig, PartitionLog, ReadBound, TxnMarker};

/// One transactional batch of `count` records from `pid`/`epoch` at `seq`.
fn txn_batch(pid: i64, epoch: i16, seq: i32, count: i32) -> Bytes {
    let records: Vec<_> = (0..count)
        .map(|i| {
            let mut r = record(
                i64::from(i),
                1_000,
                format!("t{pid}-{}", seq + i).into_bytes(),
            );
            r.transactional = true;
            r.producer_id = pid;
            r.producer_epoch = epoch;
            r.sequence = seq + i;
            r
        })
        .collect();
    encode(&records, Compression::None)
}

fn write(log: &PartitionLog, pid: i64, seq: i32, count: i32) -> i64 {
    let info = log
        .append_as_leader(txn_batch(pid, 0, seq, count), 0, 1_000)
        .expect("transactional append");
    log.set_high_watermark(log.log_end_offset());
    info.first_offset
}

fn marker(log: &PartitionLog, pid: i64, marker: TxnMarker) -> i64 {
    let info = log
        .append_marker(pid, 0, 7, marker, 0, 1_000)
        .expect("marker append");
    log.set_high_watermark(log.log_end_offset());
    info.first_offset
}

fn aborted(log: &PartitionLog) -> Vec<AbortedTxn> {
    log.aborted_transactions(log.log_start_offset(), log.log_end_offset())
}

fn txn_index_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".txnindex"))
        .collect();
    names.sort();
    names
}

fn remove_files(dir: &std::path::Path, extensions: &[&str]) {
    for name in std::fs::read_dir(dir).unwrap() {
        let path = name.unwrap().path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if extensions.contains(&ext) {
            std::fs::remove_file(path).unwrap();
        }
    }
}

#[test]
fn an_open_transaction_holds_the_last_stable_offset_until_its_marker() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    log.append_as_leader(super::simple_batch(2, 1_000, 10), 0, 1_000)
        .unwrap();
    log.set_high_watermark(2);
    assert_eq!(log.last_stable_offset(), 2);
    assert_eq!(write(&log, 5, 0, 3), 2);
    assert_eq!(write(&log, 6, 0, 2), 5);
    assert_eq!(write(&log, 5, 3, 1), 7);
    assert_eq!(log.ongoing_transactions(), vec![(5, 2), (6, 5)]);
    assert_eq!(log.high_watermark(), 8);
    assert_eq!(log.last_stable_offset(), 2);
    let read = log.read(0, 1 << 20, ReadBound::LastStable, true).unwrap();
    assert_eq!(read.last_stable_offset, 2);
    assert_eq!(super::decode(&read.records).len(), 2, "only below the LSO");

    assert_eq!(marker(&log, 5, TxnMarker::Commit), 8);
    assert_eq!(log.ongoing_transactions(), vec![(6, 5)]);
    assert_eq!(log.last_stable_offset(), 5);
    assert_eq!(marker(&log, 6, TxnMarker::Abort), 9);
    assert!(log.ongoing_transactions().is_empty());
    assert_eq!(log.last_stable_offset(), 10);
    assert_eq!(
        aborted(&log),
        vec![AbortedTxn {
            producer_id: 6,
            first_offset: 5,
            last_offset: 9,
            last_stable_offset: 10,
        }]
    );
    // Only the aborted transaction is indexed; ranges that miss it see none.
    assert!(log.aborted_transactions(10, 10).is_empty());
    assert!(log.aborted_transactions(0, 5).is_empty());
    assert_eq!(log.aborted_transactions(6, 7).len(), 1);
}

#[test]
fn a_marker_not_yet_replicated_keeps_its_transaction_unstable() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    write(&log, 5, 0, 2);
    log.append_marker(5, 0, 7, TxnMarker::Commit, 0, 1_000)
        .unwrap();
    // The high watermark is still below the marker: nothing is stable yet.
    assert_eq!(log.high_watermark(), 2);
    assert_eq!(log.last_stable_offset(), 0);
    log.set_high_watermark(3);
    assert_eq!(log.last_stable_offset(), 3);
}

#[test]
fn a_marker_from_an_older_producer_epoch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    log.append_as_leader(txn_batch(5, 3, 0, 1), 0, 1_000)
        .unwrap();
    let stale = log.append_marker(5, 2, 7, TxnMarker::Abort, 0, 1_000);
    assert_eq!(
        stale.unwrap_err().kafka_error_code(),
        ResponseError::InvalidProducerEpoch.code()
    );
    assert_eq!(log.log_end_offset(), 1);
    assert_eq!(log.ongoing_transactions(), vec![(5, 0)]);
    // An older coordinator is fenced by the one that wrote a marker already.
    log.append_marker(5, 3, 7, TxnMarker::Commit, 0, 1_000)
        .unwrap();
    let fenced = log.append_marker(5, 3, 6, TxnMarker::Commit, 0, 1_000);
    assert_eq!(
        fenced.unwrap_err().kafka_error_code(),
        ResponseError::TransactionCoordinatorFenced.code()
    );
}

#[test]
fn a_client_cannot_produce_a_control_batch() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), LogConfig::default());
    let batch = crate::batch::control_batch(5, 0, 7, TxnMarker::Commit, 1_000);
    let refused = leader.append_as_leader(batch, 0, 1_000).unwrap_err();
    assert_eq!(
        refused.kafka_error_code(),
        ResponseError::InvalidRecord.code()
    );
    // Nor a transactional batch without a producer id.
    let refused = leader
        .append_as_leader(txn_batch(-1, -1, -1, 1), 0, 1_000)
        .unwrap_err();
    assert_eq!(
        refused.kafka_error_code(),
        ResponseError::InvalidRecord.code()
    );
    assert_eq!(leader.log_end_offset(), 0);
}

#[test]
fn recovery_rebuilds_the_ongoing_transactions_and_the_txn_index() {
    let dir = tempfile::tempdir().unwrap();
    let expected;
    {
        let log = open(dir.path(), small_config(400));
        for seq in 0..4 {
            write(&log, 5, seq, 1);
        }
        marker(&log, 5, TxnMarker::Abort);
        write(&log, 6, 0, 2);
        for seq in 4..8 {
            write(&log, 5, seq, 1);
        }
        marker(&log, 5, TxnMarker::Abort);
        write(&log, 7, 0, 1);
        assert!(log.segment_count() > 2);
        expected = aborted(&log);
        assert_eq!(expected.len(), 2);
        assert_eq!(log.ongoing_transactions(), vec![(6, 5), (7, 12)]);
        log.close().unwrap();
    }
    // A clean reopen: the snapshot and the index files serve.
    {
        let log = open(dir.path(), small_config(400));
        assert_eq!(aborted(&log), expected);
        assert_eq!(log.ongoing_transactions(), vec![(6, 5), (7, 12)]);
        assert_eq!(log.last_stable_offset(), 5);
    }
    // Without the index files (the snapshots stay), they are rebuilt.
    remove_files(dir.path(), &["txnindex"]);
    {
        let log = open(dir.path(), small_config(400));
        assert_eq!(aborted(&log), expected);
        assert_eq!(log.ongoing_transactions(), vec![(6, 5), (7, 12)]);
        log.close().unwrap();
    }
    // Without any index file nor snapshot, the log rebuilds both.
    remove_files(dir.path(), &["txnindex", "snapshot"]);
    let log = open(dir.path(), small_config(400));
    assert_eq!(aborted(&log), expected);
    assert_eq!(log.ongoing_transactions(), vec![(6, 5), (7, 12)]);
    assert!(!txn_index_files(dir.path()).is_empty());
}

#[test]
fn truncation_below_a_marker_reopens_its_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    write(&log, 5, 0, 2);
    let at = marker(&log, 5, TxnMarker::Abort);
    assert_eq!(aborted(&log).len(), 1);
    assert!(log.ongoing_transactions().is_empty());
    log.truncate_to(at).unwrap();
    assert_eq!(log.ongoing_transactions(), vec![(5, 0)]);
    assert!(aborted(&log).is_empty());
    assert_eq!(log.last_stable_offset(), 0);
    log.close().unwrap();
    let log = open(dir.path(), LogConfig::default());
    assert!(aborted(&log).is_empty());
    assert_eq!(log.ongoing_transactions(), vec![(5, 0)]);
}

#[test]
fn a_follower_rebuilds_transactions_from_fetched_batches() {
    let leader_dir = tempfile::tempdir().unwrap();
    let leader = open(leader_dir.path(), small_config(400));
    write(&leader, 5, 0, 2);
    write(&leader, 6, 0, 2);
    marker(&leader, 5, TxnMarker::Abort);
    write(&leader, 6, 2, 2);
    let follower_dir = tempfile::tempdir().unwrap();
    let follower = open(follower_dir.path(), small_config(400));
    let mut offset = 0;
    while offset < leader.log_end_offset() {
        let fetched = leader
            .read(offset, 1 << 20, ReadBound::LogEnd, true)
            .unwrap();
        offset = follower
            .append_as_follower(fetched.records)
            .unwrap()
            .last_offset
            + 1;
    }
    follower.set_high_watermark(follower.log_end_offset());
    assert_eq!(follower.ongoing_transactions(), vec![(6, 2)]);
    assert_eq!(aborted(&follower), aborted(&leader));
    assert_eq!(follower.last_stable_offset(), leader.last_stable_offset());
}

#[test]
fn retention_deletes_the_txn_index_with_its_segment() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: Some(500),
        ..small_config(300)
    };
    let log = open(dir.path(), config);
    write(&log, 5, 0, 2);
    marker(&log, 5, TxnMarker::Abort);
    for seq in 0..12 {
        write(&log, 6, seq, 1);
        marker(&log, 6, TxnMarker::Commit);
    }
    let before = txn_index_files(dir.path());
    assert_eq!(before.len(), log.segment_count());
    assert!(log.enforce_retention(1_000).unwrap() > 0);
    let after = txn_index_files(dir.path());
    assert_eq!(after.len(), log.segment_count());
    assert!(!after.contains(&before[0]));
    assert!(aborted(&log).is_empty());
}

#[test]
fn after_a_crash_the_scanned_segments_indexes_are_rebuilt_from_their_markers() {
    let dir = tempfile::tempdir().unwrap();
    let expected;
    {
        let log = open(dir.path(), small_config(300));
        write(&log, 5, 0, 2);
        marker(&log, 5, TxnMarker::Abort);
        let mut seq = 0;
        while log.segment_count() < 3 {
            write(&log, 6, seq, 1);
            seq += 1;
        }
        marker(&log, 6, TxnMarker::Abort);
        expected = aborted(&log);
        assert_eq!(expected.len(), 2);
        // Dropped without close or flush, as a crash: a later segment's
        // snapshot is on disk, but the first index's write never was.
    }
    let index = dir.path().join(format!("{:020}.txnindex", 0));
    let bytes = std::fs::read(&index).unwrap();
    assert_eq!(bytes.len(), 34);
    std::fs::write(&index, b"").unwrap();
    let log = open(dir.path(), small_config(300));
    assert_eq!(aborted(&log), expected);
    assert_eq!(std::fs::read(&index).unwrap(), bytes);
    // A torn entry is not trusted either.
    drop(log);
    std::fs::write(&index, &bytes[..20]).unwrap();
    let log = open(dir.path(), small_config(300));
    assert_eq!(aborted(&log), expected);
}

#[test]
fn a_plain_batch_from_a_producer_with_an_open_transaction_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    write(&log, 5, 0, 2);
    let plain = super::idempotence_batch(5, 0, 2, 1);
    let refused = log.append_as_leader(plain.clone(), 0, 1_000).unwrap_err();
    assert_eq!(
        refused.kafka_error_code(),
        ResponseError::InvalidTxnState.code()
    );
    assert_eq!(log.log_end_offset(), 2);
    // Once the transaction ends, the producer may write outside one.
    marker(&log, 5, TxnMarker::Commit);
    assert_eq!(
        log.append_as_leader(plain, 0, 1_000).unwrap().first_offset,
        3
    );
}
