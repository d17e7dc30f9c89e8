//! The log cleaner against crashes and concurrent use: a kill at each step
//! of the swap recovers a consistent log, a truncation during a pass voids
//! it, and readers racing appends and passes never see an offset go
//! backwards nor miss a key's latest record.

use std::sync::atomic::{AtomicBool, Ordering};

use kafka_protocol::records::Compression;

use super::compaction::{active_base, batches, cleaned, contents, no_throttle, put, Contents};
use super::{open, small_config};
use crate::cleaner::SwapStep;
use crate::{CompactionConfig, PartitionLog, ReadBound};

const STEPS: [SwapStep; 6] = [
    SwapStep::Cleaned,
    SwapStep::FirstIndexesSwapped,
    SwapStep::FirstCommitted,
    SwapStep::Committed,
    SwapStep::FirstIndexesInstalled,
    SwapStep::Installed,
];

/// Keys rewritten across several sealed segments.
fn fill_keys(log: &PartitionLog, rounds: usize) {
    for round in 0..rounds {
        for k in 0..6 {
            let key = format!("key{k}");
            let value = format!("r{round}");
            put(
                log,
                &[(key.as_str(), Some(value.as_str()))],
                1_000,
                Compression::None,
            );
        }
    }
}

fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
        .collect()
}

#[test]
fn a_crash_at_each_swap_step_recovers_a_consistent_log() {
    // Flushed, recovery trusts the sealed segments; unflushed, it scans them.
    for (step, flushed) in STEPS.into_iter().flat_map(|s| [(s, true), (s, false)]) {
        let dir = tempfile::tempdir().unwrap();
        let config = small_config(500);
        let log = open(dir.path(), config.clone());
        fill_keys(&log, 8);
        if flushed {
            log.flush().unwrap();
            log.checkpoint().unwrap();
        }
        let segments = log.segment_list();
        assert!(
            segments.len() >= 4,
            "the test needs several sealed segments"
        );
        let until = active_base(&log);
        let before = contents(&log);
        let full = cleaned(&before, until);
        let err = log
            .clean_with(
                &CompactionConfig::default(),
                5_000,
                &mut no_throttle(),
                Some(step),
            )
            .expect_err("the injected crash");
        assert!(
            err.to_string().contains("injected crash"),
            "{step:?}: {err}"
        );
        assert!(
            log.is_offline(),
            "{step:?}: a failed swap takes the log offline"
        );
        let step_kind = step;
        let step = format!("{step:?} flushed={flushed}");
        // Killed: no close.
        drop(log);
        let log = open(dir.path(), config.clone());
        assert_eq!(leftovers(dir.path()), Vec::<String>::new(), "{step}");
        let after = contents(&log);
        let expected: Contents = match step_kind {
            SwapStep::Cleaned | SwapStep::FirstIndexesSwapped => before.clone(),
            SwapStep::FirstCommitted => {
                // Only the first segment is cleaned.
                let second = segments[1].base_offset();
                before
                    .iter()
                    .filter(|r| r.0 >= second || full.contains(r))
                    .cloned()
                    .collect()
            }
            _ => full.clone(),
        };
        assert_eq!(after, expected, "{step}");
        // The recovered log cleans to the same end state (once the high
        // watermark, not checkpointed unflushed, is back at the log end).
        log.set_high_watermark(log.log_end_offset());
        log.clean(&CompactionConfig::default(), 5_000, &mut no_throttle())
            .unwrap();
        assert_eq!(contents(&log), full, "{step}: cleaned after recovery");
        log.close().unwrap();
    }
}

#[test]
fn a_truncation_during_a_pass_voids_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(500));
    fill_keys(&log, 8);
    let before = contents(&log);
    let cut = log.segment_list()[2].base_offset();
    // The truncation comes in while the pass reads (from its throttle hook).
    let mut truncated = false;
    let stats = log
        .clean(&CompactionConfig::default(), 5_000, &mut |_| {
            if !truncated {
                truncated = true;
                log.truncate_to(cut).unwrap();
            }
        })
        .unwrap()
        .expect("a pass ran");
    assert!(stats.aborted, "{stats:?}");
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    let kept: Contents = before.into_iter().filter(|r| r.0 < cut).collect();
    assert_eq!(contents(&log), kept);
    assert!(log.cleaner_checkpoint() <= cut);
}

#[test]
fn retention_during_a_pass_leaves_its_segments_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(500);
    config.retention_bytes = Some(1);
    let log = open(dir.path(), config);
    fill_keys(&log, 8);
    let mut deleted = 0;
    log.clean(&CompactionConfig::default(), 5_000, &mut |_| {
        if deleted == 0 {
            deleted = log.enforce_retention(5_000).unwrap();
        }
    })
    .unwrap()
    .expect("a pass ran");
    assert!(deleted > 0);
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    assert_eq!(log.segment_count(), 1, "retention's deletions stand");
}

/// The offsets of every record up to the high watermark, as a consumer reads them.
fn scan(log: &PartitionLog) -> Vec<i64> {
    batches(log, ReadBound::HighWatermark)
        .into_iter()
        .flat_map(|(_, bytes)| super::decode(&bytes))
        .map(|r| r.offset)
        .collect()
}

#[test]
fn readers_never_see_offsets_go_back_nor_miss_a_latest_value() {
    const KEYS: i64 = 7;
    const BATCHES: i64 = 600;
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(400));
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..BATCHES {
                // Key and value follow from the offset: key i % KEYS, value i.
                let key = format!("k{}", i % KEYS);
                let value = i.to_string();
                let offset = put(
                    &log,
                    &[(key.as_str(), Some(value.as_str()))],
                    1_000,
                    Compression::None,
                );
                assert_eq!(offset, i);
            }
            done.store(true, Ordering::Release);
        });
        s.spawn(|| {
            while !done.load(Ordering::Acquire) {
                log.clean(&CompactionConfig::default(), 5_000, &mut no_throttle())
                    .expect("clean");
            }
        });
        s.spawn(|| {
            let mut scans = 0;
            while !done.load(Ordering::Acquire) || scans < 3 {
                let end = log.high_watermark();
                let seen = scan(&log);
                assert!(
                    seen.windows(2).all(|w| w[0] < w[1]),
                    "offsets only go forward"
                );
                for k in 0..KEYS {
                    let latest = (0..end).rev().find(|o| o % KEYS == k);
                    // That record, or a later one of the key (which may
                    // have superseded it before the scan got there).
                    if let Some(latest) = latest {
                        assert!(
                            seen.iter().any(|&o| o >= latest && o % KEYS == k),
                            "the latest record of k{k} ({latest}) or a later one is read"
                        );
                    }
                }
                scans += 1;
            }
        });
    });
    let passes_cleaned = log.cleaner_checkpoint();
    assert!(passes_cleaned > 0, "the cleaner ran while the others did");
}

#[test]
fn a_corrupt_segment_is_a_clear_error_and_leaves_the_log_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(500));
    fill_keys(&log, 8);
    let before = contents(&log);
    let first = log.segment_list()[0].log_path().to_path_buf();
    let mut bytes = std::fs::read(&first).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff; // a record byte: the CRC no longer matches
    std::fs::write(&first, &bytes).unwrap();
    let err = log
        .clean(&CompactionConfig::default(), 5_000, &mut no_throttle())
        .expect_err("corrupt");
    let text = err.to_string();
    assert!(
        text.contains("CRC") && text.contains(&*first.to_string_lossy()),
        "{text}"
    );
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    assert!(!log.is_offline(), "reading failed, nothing was swapped");
    bytes[last] ^= 0xff;
    std::fs::write(&first, &bytes).unwrap();
    assert_eq!(contents(&log), before);
}

/// A log cleaned once (small cleaned segments), then dirtied again.
fn twice_dirty(dir: &std::path::Path) -> PartitionLog {
    let log = open(dir, small_config(500));
    fill_keys(&log, 8);
    log.clean(&CompactionConfig::default(), 5_000, &mut no_throttle())
        .unwrap()
        .unwrap();
    fill_keys(&log, 4);
    log
}

#[test]
fn a_second_pass_merges_small_cleaned_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = twice_dirty(dir.path());
    let before = contents(&log);
    let segments_before = log.segment_count();
    let until = active_base(&log);
    log.clean(&CompactionConfig::default(), 5_000, &mut no_throttle())
        .unwrap()
        .unwrap();
    assert!(
        log.segment_count() < segments_before,
        "small segments merged"
    );
    assert_eq!(contents(&log), cleaned(&before, until));
    let after = contents(&log);
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), small_config(500));
    assert_eq!(contents(&log), after, "after reopen");
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
}

#[test]
fn a_crash_at_each_step_of_a_merging_swap_recovers_a_consistent_log() {
    let steps = STEPS.into_iter().chain([SwapStep::FirstMemberDeleted]);
    for step in steps {
        let dir = tempfile::tempdir().unwrap();
        let log = twice_dirty(dir.path());
        log.flush().unwrap();
        log.checkpoint().unwrap();
        let before = contents(&log);
        let until = active_base(&log);
        let full = cleaned(&before, until);
        let segments_before = log.segment_count();
        log.clean_with(
            &CompactionConfig::default(),
            5_000,
            &mut no_throttle(),
            Some(step),
        )
        .expect_err("the injected crash");
        drop(log);
        let log = open(dir.path(), small_config(500));
        assert_eq!(leftovers(dir.path()), Vec::<String>::new(), "{step:?}");
        let after = contents(&log);
        assert!(
            full.iter().all(|r| after.contains(r)),
            "{step:?}: a latest record lost"
        );
        assert!(
            after.iter().all(|r| before.contains(r)),
            "{step:?}: a record appeared"
        );
        match step {
            SwapStep::Cleaned | SwapStep::FirstIndexesSwapped => {
                assert_eq!(after, before, "{step:?}")
            }
            SwapStep::Committed | SwapStep::Installed => {
                assert_eq!(after, full, "{step:?}");
                assert!(log.segment_count() < segments_before, "{step:?}");
            }
            _ => assert_ne!(after, before, "{step:?}: the first group is in"),
        }
        log.set_high_watermark(log.log_end_offset());
        log.clean(&CompactionConfig::default(), 5_000, &mut no_throttle())
            .unwrap();
        assert_eq!(contents(&log), full, "{step:?}: cleaned after recovery");
    }
}

#[test]
fn a_corrupt_cleaner_checkpoint_only_makes_the_cleaner_start_over() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(500));
    fill_keys(&log, 8);
    log.clean(&CompactionConfig::default(), 5_000, &mut no_throttle())
        .unwrap()
        .unwrap();
    let after = contents(&log);
    log.close().unwrap();
    drop(log);
    std::fs::write(dir.path().join("cleaner.checkpoint"), b"garbage").unwrap();
    let log = open(dir.path(), small_config(500));
    assert_eq!(log.cleaner_checkpoint(), 0);
    assert_eq!(contents(&log), after);
    log.set_high_watermark(log.log_end_offset());
    log.clean(&CompactionConfig::default(), 5_000, &mut no_throttle())
        .unwrap();
    assert_eq!(contents(&log), after, "cleaning again changes nothing");
}

/// Every file of `dir`, to put back with [`restore`].
fn snapshot_dir(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect()
}

fn restore(dir: &std::path::Path, files: &[(std::path::PathBuf, Vec<u8>)]) {
    for entry in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    for (path, bytes) in files {
        std::fs::write(path, bytes).unwrap();
    }
}

#[test]
fn a_damaged_sealed_segment_never_makes_the_cleaner_panic() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(500));
    fill_keys(&log, 3);
    log.close().unwrap();
    drop(log);
    // Closed cleanly: recovery trusts the segments, the cleaner reads them.
    let pristine = snapshot_dir(dir.path());
    let first = super::segment_files(dir.path())[0].clone();
    let len = std::fs::metadata(&first).unwrap().len() as usize;
    for at in (0..len).step_by(3) {
        restore(dir.path(), &pristine);
        let mut bytes = std::fs::read(&first).unwrap();
        bytes[at] ^= 0x5a;
        std::fs::write(&first, &bytes).unwrap();
        let Ok(log) = PartitionLog::open(dir.path(), small_config(500)) else {
            continue;
        };
        log.set_high_watermark(log.log_end_offset());
        let _ = log.clean(&CompactionConfig::default(), 5_000, &mut no_throttle());
        assert!(leftovers(dir.path()).is_empty(), "byte {at}");
    }
}
