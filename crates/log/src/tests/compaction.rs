//! The log cleaner: the latest value of each key at its original offset,
//! tombstones until their delete horizon, the lags and the offset map's
//! budget. Time is the `now_ms` handed to each pass; nothing sleeps.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::records::Compression;

use super::{decode, encode, open, record, small_config, CODECS};
use crate::batch::{self, BatchHeader};
use crate::{CompactionConfig, LogConfig, PartitionLog, ReadBound};

/// `(offset, key, value)` of every record, in order.
pub(crate) type Contents = Vec<(i64, String, Option<String>)>;

/// One batch of keyed records (`None`: a tombstone), timestamps `ts`.
pub(crate) fn keyed(entries: &[(&str, Option<&str>)], ts: i64, codec: Compression) -> Bytes {
    let records: Vec<_> = entries
        .iter()
        .enumerate()
        .map(|(i, (key, value))| {
            let mut r = record(i as i64, ts, Vec::new());
            r.key = Some(Bytes::copy_from_slice(key.as_bytes()));
            r.value = value.map(|v| Bytes::copy_from_slice(v.as_bytes()));
            r
        })
        .collect();
    encode(&records, codec)
}

/// Appends a batch and makes it committed (high watermark at the log end).
pub(crate) fn put(
    log: &PartitionLog,
    entries: &[(&str, Option<&str>)],
    ts: i64,
    codec: Compression,
) -> i64 {
    let info = log
        .append_as_leader(keyed(entries, ts, codec), 0, ts)
        .expect("append");
    log.set_high_watermark(log.log_end_offset());
    info.first_offset
}

/// Every batch up to `bound`, fetch by fetch as a consumer reads:
/// compaction leaves gaps, so each fetch starts after the last batch
/// seen; each must move forward.
pub(crate) fn batches(log: &PartitionLog, bound: ReadBound) -> Vec<(BatchHeader, Bytes)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    loop {
        let result = log.read(offset, 1024, bound, true).expect("read");
        if result.records.is_empty() {
            return out;
        }
        for item in batch::batches(&result.records) {
            let (header, range) = item.expect("whole batch");
            batch::validate_stored(&result.records[range.clone()]).expect("valid batch");
            assert!(header.next_offset() > offset, "a fetch moves forward");
            offset = header.next_offset();
            out.push((header, result.records.slice(range)));
        }
    }
}

pub(crate) fn contents(log: &PartitionLog) -> Contents {
    let text = |b: Option<Bytes>| b.map(|b| String::from_utf8_lossy(&b).into_owned());
    batches(log, ReadBound::LogEnd)
        .into_iter()
        .flat_map(|(_, bytes)| decode(&bytes))
        .map(|r| (r.offset, text(r.key).unwrap_or_default(), text(r.value)))
        .collect()
}

/// What a full clean of everything below `until` leaves: records at or
/// after it, and below it each key's latest record of those below it.
pub(crate) fn cleaned(before: &Contents, until: i64) -> Contents {
    let mut latest = BTreeMap::new();
    for (offset, key, _) in before.iter().filter(|r| r.0 < until) {
        latest.insert(key.clone(), *offset);
    }
    before
        .iter()
        .filter(|(offset, key, _)| *offset >= until || latest.get(key) == Some(offset))
        .cloned()
        .collect()
}

pub(crate) fn no_throttle() -> impl FnMut(u64) {
    |_| {}
}

pub(crate) fn active_base(log: &PartitionLog) -> i64 {
    log.segment_list().last().expect("a segment").base_offset()
}

#[test]
fn keys_written_many_times_keep_their_latest_value_at_its_offset() {
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), small_config(600));
        for round in 0..12 {
            let values: Vec<String> = (0..4).map(|k| format!("v{round}-{k}")).collect();
            let entries: Vec<(String, Option<&str>)> = (0..4)
                .map(|k| (format!("key{}", (round + k) % 5), Some(values[k].as_str())))
                .collect();
            let entries: Vec<(&str, Option<&str>)> =
                entries.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            put(&log, &entries, 1_000 + round as i64, codec);
        }
        assert!(
            log.segment_count() >= 3,
            "{codec:?}: the test needs rolled segments"
        );
        let before = contents(&log);
        let size_before = log.size_in_bytes();
        let stats = log
            .clean(&CompactionConfig::default(), 10_000, &mut no_throttle())
            .expect("clean")
            .expect("something to clean");
        assert_eq!(stats.cleaned_to, active_base(&log), "{codec:?}");
        let after = contents(&log);
        assert_eq!(after, cleaned(&before, active_base(&log)), "{codec:?}");
        assert!(
            log.size_in_bytes() < size_before,
            "{codec:?}: the log shrank"
        );
        for (header, _) in batches(&log, ReadBound::LogEnd) {
            if header.records_count > 0 {
                assert_eq!(header.compression(), codec as u8, "the codec is kept");
            }
        }
        // Nothing new is dirty: a second pass has nothing to do.
        let again = log.clean(&CompactionConfig::default(), 10_000, &mut no_throttle());
        assert_eq!(again.expect("clean"), None);
        // Reopened, the cleaned log reads the same.
        log.close().unwrap();
        drop(log);
        let log = open(dir.path(), small_config(600));
        assert_eq!(contents(&log), after, "{codec:?}: after reopen");
        assert!(log.cleaner_checkpoint() >= stats.cleaned_to);
    }
}

#[test]
fn a_tombstone_goes_after_delete_retention_ms() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(300));
    let config = CompactionConfig {
        delete_retention_ms: 500,
        ..CompactionConfig::default()
    };
    put(&log, &[("gone", Some("old"))], 1_000, Compression::None);
    put(&log, &[("gone", None)], 1_000, Compression::None);
    let mut filler = 0;
    let mut roll = |log: &PartitionLog| {
        let base = active_base(log);
        while active_base(log) == base {
            let key = format!("filler{filler}");
            put(log, &[(key.as_str(), Some("x"))], 1_000, Compression::None);
            filler += 1;
        }
    };
    roll(&log);
    let has = |log: &PartitionLog, value: Option<&str>| {
        contents(log)
            .iter()
            .any(|(_, k, v)| k == "gone" && v.as_deref() == value)
    };
    // First pass at t=1000: the old value goes, the tombstone stays and
    // its batch gets the delete horizon 1500.
    log.clean(&config, 1_000, &mut no_throttle())
        .unwrap()
        .unwrap();
    assert!(!has(&log, Some("old")));
    assert!(
        has(&log, None),
        "the tombstone stays for delete.retention.ms"
    );
    // Before the horizon, another pass keeps it.
    roll(&log);
    log.clean(&config, 1_499, &mut no_throttle())
        .unwrap()
        .unwrap();
    assert!(has(&log, None), "still before the horizon");
    // At the horizon it goes.
    roll(&log);
    log.clean(&config, 1_500, &mut no_throttle())
        .unwrap()
        .unwrap();
    assert!(
        !contents(&log).iter().any(|(_, k, _)| k == "gone"),
        "the key is gone"
    );
}

#[test]
fn records_younger_than_min_compaction_lag_are_not_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(300));
    // Old segments (t=1000), then young ones (t=9000), all rewriting one key.
    let mut young_from = None;
    for i in 0..30 {
        let ts = if i < 15 { 1_000 } else { 9_000 };
        let value = format!("v{i}");
        let offset = put(&log, &[("k", Some(value.as_str()))], ts, Compression::None);
        if i == 15 {
            young_from = Some(offset);
        }
    }
    let young_from = young_from.unwrap();
    let config = CompactionConfig {
        min_compaction_lag_ms: 5_000,
        ..CompactionConfig::default()
    };
    let now = 10_000;
    let cleanable = log.cleanable(&config, now).unwrap();
    assert!(cleanable.first_uncleanable <= young_from, "{cleanable:?}");
    assert!(cleanable.due(&config));
    let before = contents(&log);
    log.clean(&config, now, &mut no_throttle())
        .unwrap()
        .unwrap();
    let after = contents(&log);
    assert_eq!(after, cleaned(&before, cleanable.first_uncleanable));
    let young: Vec<_> = before.iter().filter(|r| r.0 >= young_from).collect();
    assert!(
        young.iter().all(|r| after.contains(r)),
        "young records all stay"
    );
}

#[test]
fn the_offset_map_stays_within_its_budget_and_cleans_in_several_passes() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(400));
    for round in 0..3 {
        for k in 0..40 {
            let key = format!("key{k}");
            let value = format!("r{round}");
            put(
                &log,
                &[(key.as_str(), Some(value.as_str()))],
                1_000,
                Compression::None,
            );
        }
    }
    put(&log, &[("last", Some("x"))], 1_000, Compression::None);
    let budget = 24 * 20;
    let config = CompactionConfig {
        dedupe_buffer_bytes: budget,
        ..CompactionConfig::default()
    };
    let before = contents(&log);
    let until = active_base(&log);
    let mut passes = 0;
    while let Some(stats) = log.clean(&config, 5_000, &mut no_throttle()).unwrap() {
        assert!(stats.map_bytes <= budget, "{stats:?}");
        assert!(stats.keys <= 18, "{stats:?}");
        passes += 1;
        assert!(passes < 50, "passes make progress");
    }
    assert!(passes > 1, "a small map takes several passes");
    let after = contents(&log);
    // Each key's latest value is there, at its offset.
    let expected = cleaned(&before, until);
    for record in &expected {
        assert!(after.contains(record), "missing {record:?}");
    }
    assert!(after.iter().all(|r| before.contains(r)));
    // A budget too small for one key is an error, not a panic.
    put(&log, &[("more", Some("y"))], 1_000, Compression::None);
    let tiny = CompactionConfig {
        dedupe_buffer_bytes: 10,
        ..CompactionConfig::default()
    };
    while active_base(&log) == until {
        put(&log, &[("more", Some("y"))], 1_000, Compression::None);
    }
    assert!(log.clean(&tiny, 5_000, &mut no_throttle()).is_err());
}

#[test]
fn a_follower_replicates_a_cleaned_leader() {
    let leader_dir = tempfile::tempdir().unwrap();
    let leader = open(leader_dir.path(), small_config(300));
    for i in 0..40 {
        let key = format!("k{}", i % 3);
        let value = format!("v{i}");
        put(
            &leader,
            &[(key.as_str(), Some(value.as_str()))],
            1_000,
            Compression::None,
        );
    }
    leader
        .clean(&CompactionConfig::default(), 5_000, &mut no_throttle())
        .unwrap()
        .unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let follower = open(follower_dir.path(), small_config(300));
    while follower.log_end_offset() < leader.log_end_offset() {
        let fetched = leader
            .read(follower.log_end_offset(), 500, ReadBound::LogEnd, true)
            .unwrap();
        follower.append_as_follower(fetched.records).unwrap();
    }
    follower.set_high_watermark(follower.log_end_offset());
    assert_eq!(contents(&follower), contents(&leader));
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
}

#[test]
fn the_batch_at_the_log_end_is_never_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(300));
    for i in 0..30 {
        let value = format!("v{i}");
        put(
            &log,
            &[("k", Some(value.as_str()))],
            1_000,
            Compression::None,
        );
    }
    // Truncated to a segment boundary, the active segment is empty and the
    // last batch sits in a sealed one.
    let cut = active_base(&log);
    log.truncate_to(cut).unwrap();
    log.set_high_watermark(cut);
    assert_eq!(log.segment_list().last().unwrap().size(), 0);
    log.clean(&CompactionConfig::default(), 5_000, &mut no_throttle())
        .unwrap()
        .unwrap();
    let last = contents(&log).last().cloned().expect("a record");
    assert_eq!(last.0, cut - 1, "the last batch stays");
    // A reader reaches the log end.
    let last = batches(&log, ReadBound::LogEnd).pop().expect("a batch").0;
    assert_eq!(last.next_offset(), log.log_end_offset());
}

#[test]
fn a_compacted_log_refuses_records_without_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        compaction: Some(CompactionConfig::default()),
        ..small_config(300)
    };
    let log = open(dir.path(), config);
    let keyless = super::simple_batch(2, 1_000, 10);
    let err = log.append_as_leader(keyless.clone(), 0, 1_000).unwrap_err();
    assert_eq!(err.kafka_error_code(), 87, "INVALID_RECORD: {err}");
    put(&log, &[("k", Some("v"))], 1_000, Compression::Zstd);
    // Not compacted any more: accepted.
    log.update_config(small_config(300));
    log.append_as_leader(keyless, 0, 1_000).unwrap();
}

#[test]
fn a_log_of_few_keys_stays_bounded_however_much_is_written() {
    const KEYS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let segment_bytes = 4096;
    let log = open(dir.path(), small_config(segment_bytes));
    let config = CompactionConfig::default();
    let mut max_size = 0;
    let mut max_segments = 0;
    for i in 0..20_000 {
        let key = format!("group-{}", i % KEYS);
        let value = format!("offset-{i}");
        put(
            &log,
            &[(key.as_str(), Some(value.as_str()))],
            1_000,
            Compression::None,
        );
        if i % 500 == 499 {
            if log.cleanable(&config, 5_000).unwrap().due(&config) {
                log.clean(&config, 5_000, &mut no_throttle()).unwrap();
            }
            max_size = max_size.max(log.size_in_bytes());
            max_segments = max_segments.max(log.segment_count());
        }
    }
    // Measured after each pass: about 5.7 KB in 13 segments, the segments
    // rolled since the last pass emptied (they merge at the next one, as
    // Kafka groups by size before cleaning) and the latest of each key.
    assert!(max_size < 12 * segment_bytes, "{max_size} bytes");
    assert!(max_segments < 16, "{max_segments} segments");
    let latest: BTreeMap<String, String> = contents(&log)
        .into_iter()
        .map(|(_, k, v)| (k, v.unwrap_or_default()))
        .collect();
    assert_eq!(latest.len(), KEYS);
    assert_eq!(latest["group-19"], "offset-19999");
}
