//! The log cleaner and producers: aborted transactional data goes, markers
//! stay until Kafka's rules let them go, and a producer's last batch keeps
//! an empty header so its sequence state survives.

use bytes::Bytes;
use kafka_protocol::records::Compression;

use super::compaction::{active_base, batches, contents, no_throttle, put};
use super::{encode, open, record, small_config};
use crate::{CompactionConfig, PartitionLog, ReadBound, TxnMarker};

/// A keyed batch from producer `pid` at `seq`, transactional or not.
fn producer_batch(pid: i64, seq: i32, transactional: bool, entries: &[(&str, &str)]) -> Bytes {
    let records: Vec<_> = entries
        .iter()
        .enumerate()
        .map(|(i, (key, value))| {
            let mut r = record(i as i64, 1_000, value.as_bytes().to_vec());
            r.key = Some(Bytes::copy_from_slice(key.as_bytes()));
            r.transactional = transactional;
            r.producer_id = pid;
            r.producer_epoch = 0;
            r.sequence = seq + i as i32;
            r
        })
        .collect();
    encode(&records, Compression::None)
}

fn append(log: &PartitionLog, batch: Bytes) -> i64 {
    let info = log.append_as_leader(batch, 0, 1_000).expect("append");
    log.set_high_watermark(log.log_end_offset());
    info.first_offset
}

fn end_txn(log: &PartitionLog, pid: i64, marker: TxnMarker) -> i64 {
    let info = log
        .append_marker(pid, 0, 1, marker, 0, 1_000)
        .expect("marker");
    log.set_high_watermark(log.log_end_offset());
    info.first_offset
}

/// Appends unique keys until the active segment rolls.
fn roll(log: &PartitionLog, tag: &str) {
    let base = active_base(log);
    let mut i = 0;
    while active_base(log) == base {
        let key = format!("{tag}-{i}");
        put(log, &[(key.as_str(), Some("x"))], 1_000, Compression::None);
        i += 1;
    }
}

fn has_batch_at(log: &PartitionLog, offset: i64) -> Option<crate::BatchHeader> {
    batches(log, ReadBound::LogEnd)
        .into_iter()
        .map(|(h, _)| h)
        .find(|h| h.base_offset == offset)
}

#[test]
fn aborted_data_goes_and_its_marker_goes_once_safe() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(400));
    let config = CompactionConfig {
        delete_retention_ms: 500,
        ..CompactionConfig::default()
    };
    put(&log, &[("a", Some("plain"))], 1_000, Compression::None);
    append(
        &log,
        producer_batch(7, 0, true, &[("a", "aborted-a"), ("b", "aborted-b")]),
    );
    let abort_at = end_txn(&log, 7, TxnMarker::Abort);
    append(&log, producer_batch(8, 0, true, &[("c", "committed")]));
    let commit_at = end_txn(&log, 8, TxnMarker::Commit);
    append(&log, producer_batch(7, 2, true, &[("d", "d7")]));
    end_txn(&log, 7, TxnMarker::Commit);
    roll(&log, "f1");
    let aborted =
        |log: &PartitionLog| log.aborted_transactions(log.log_start_offset(), log.log_end_offset());
    assert_eq!(aborted(&log).len(), 1);

    // Pass 1: the aborted records go (and never shadowed the plain "a");
    // the marker stays, as this pass still found its data.
    log.clean(&config, 1_000, &mut no_throttle())
        .unwrap()
        .unwrap();
    let values: Vec<_> = contents(&log)
        .into_iter()
        .map(|(_, k, v)| (k, v.unwrap_or_default()))
        .collect();
    assert!(values.contains(&("a".into(), "plain".into())), "{values:?}");
    assert!(
        !values.iter().any(|(_, v)| v.starts_with("aborted")),
        "{values:?}"
    );
    assert!(values.contains(&("c".into(), "committed".into())));
    assert!(values.contains(&("d".into(), "d7".into())));
    assert!(has_batch_at(&log, abort_at).is_some_and(|h| h.is_control()));
    assert!(
        has_batch_at(&log, commit_at).is_some(),
        "its data is still there"
    );
    assert_eq!(
        aborted(&log).len(),
        1,
        "a kept marker keeps its index entry"
    );

    // Pass 2: no data left, so the marker gets its delete horizon.
    roll(&log, "f2");
    log.clean(&config, 1_000, &mut no_throttle())
        .unwrap()
        .unwrap();
    let marker = has_batch_at(&log, abort_at).expect("still there before its horizon");
    assert_ne!(marker.attributes & 0x40, 0, "the delete horizon is set");
    assert_eq!(marker.base_timestamp, 1_500);

    // Pass 3, past the horizon: the marker and its index entry go.
    roll(&log, "f3");
    log.clean(&config, 1_500, &mut no_throttle())
        .unwrap()
        .unwrap();
    assert!(has_batch_at(&log, abort_at).is_none());
    assert!(aborted(&log).is_empty());
    assert!(
        has_batch_at(&log, commit_at).is_some(),
        "a commit marker stays while its data does"
    );

    // All of it survives a restart.
    let before = contents(&log);
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), small_config(400));
    assert_eq!(contents(&log), before);
}

#[test]
fn a_producers_last_batch_keeps_an_empty_header() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(300));
    let first = append(
        &log,
        producer_batch(9, 0, false, &[("e", "e1"), ("e", "e2")]),
    );
    put(&log, &[("e", Some("e3"))], 1_000, Compression::None);
    // Producer 10's first batch is superseded, its second is not its last.
    let gone = append(&log, producer_batch(10, 0, false, &[("g", "g1")]));
    append(&log, producer_batch(10, 1, false, &[("g", "g2")]));
    roll(&log, "f");
    log.clean(&CompactionConfig::default(), 1_000, &mut no_throttle())
        .unwrap()
        .unwrap();
    let header = has_batch_at(&log, first).expect("the empty batch stays");
    assert_eq!(header.records_count, 0);
    assert_eq!(
        (
            header.producer_id,
            header.base_sequence,
            header.last_offset_delta
        ),
        (9, 0, 1)
    );
    assert!(
        has_batch_at(&log, gone).is_none(),
        "not the producer's last: gone"
    );
    // The producer carries on from its sequence after a restart.
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), small_config(300));
    append(&log, producer_batch(9, 2, false, &[("e", "e4")]));
    let dup = log.append_as_leader(
        producer_batch(9, 0, false, &[("e", "e1"), ("e", "e2")]),
        0,
        1_000,
    );
    assert!(
        dup.is_ok_and(|info| info.first_offset == first),
        "a retried batch is a duplicate"
    );
}

#[test]
fn an_open_transaction_bounds_the_cleaning_and_then_nothing_is_due() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(400));
    for i in 0..10 {
        let value = format!("v{i}");
        put(
            &log,
            &[("k", Some(value.as_str()))],
            1_000,
            Compression::None,
        );
    }
    let open_at = append(&log, producer_batch(5, 0, true, &[("k", "in-txn")]));
    for i in 10..30 {
        let value = format!("v{i}");
        put(
            &log,
            &[("k", Some(value.as_str()))],
            1_000,
            Compression::None,
        );
    }
    let config = CompactionConfig::default();
    let cleanable = log.cleanable(&config, 5_000).unwrap();
    assert_eq!(
        cleanable.first_uncleanable, open_at,
        "the last stable offset bounds it"
    );
    log.clean(&config, 5_000, &mut no_throttle())
        .unwrap()
        .unwrap();
    let after = log.cleanable(&config, 5_000).unwrap();
    assert_eq!(after.dirty_bytes, 0, "{after:?}");
    assert!(!after.due(&config));
    let kept: Vec<_> = contents(&log)
        .into_iter()
        .filter(|r| r.0 < open_at)
        .collect();
    assert_eq!(
        kept.len(),
        1,
        "one value of k below the open transaction: {kept:?}"
    );
    // The transaction ends: the rest becomes cleanable.
    end_txn(&log, 5, TxnMarker::Commit);
    roll(&log, "f");
    assert!(log.cleanable(&config, 5_000).unwrap().due(&config));
}
