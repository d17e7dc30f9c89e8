//! Appending, reopening, segment rolls, conflicting suffixes, torn tails and
//! corruption.

use std::fs;

use raft::Storage;

use super::*;
use crate::storage::StorageError;

#[test]
fn new_directory_starts_empty_with_the_configured_voters() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let rs = s.initial_state().unwrap();
    assert!(rs.initialized());
    assert_eq!(rs.conf_state.voters, vec![1, 2, 3]);
    assert_eq!(rs.hard_state, HardState::default());
    assert_eq!((s.first_index().unwrap(), s.last_index().unwrap()), (1, 0));
    assert!(dir.path().join("quorum-state").is_file());
}

#[test]
fn append_then_reopen_returns_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    s.append(&entries(1..=10, 1)).unwrap();
    s.append(&entries(11..=12, 2)).unwrap();
    s.sync().unwrap();
    s.set_hard_state(&hard_state(2, 3, 7)).unwrap();
    let before = log_of(&s);
    drop(s);

    // The stored voters win over what the caller passes on a later open.
    let s = RaftStorage::open(dir.path(), &[], StorageOptions::default()).unwrap();
    assert_eq!(log_of(&s), before);
    let mut expected = pairs(1..=10, 1);
    expected.extend(pairs(11..=12, 2));
    assert_eq!(before, expected);
    assert_eq!(s.hard_state(), hard_state(2, 3, 7));
    assert_eq!(s.conf_state().voters, vec![1, 2, 3]);
    let e = s
        .entries(5, 6, None, GetEntriesContext::empty(false))
        .unwrap();
    assert_eq!(e[0], entry(5, 1));
}

#[test]
fn set_commit_is_persisted_with_the_next_hard_state_and_clamped_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    s.append(&entries(1..=5, 1)).unwrap();
    s.sync().unwrap();
    s.set_hard_state(&hard_state(1, 1, 2)).unwrap();
    s.set_commit(4);
    assert_eq!(s.hard_state().commit, 4);
    // A crash: nothing runs on the way out (a clean drop would persist it).
    std::mem::forget(s);
    let mut s = open(dir.path());
    assert_eq!(s.hard_state().commit, 2);

    // A commit index beyond the durable log is clamped to its end.
    s.set_hard_state(&hard_state(1, 1, 9)).unwrap();
    drop(s);
    assert_eq!(open(dir.path()).hard_state().commit, 5);
}

#[test]
fn conflicting_suffix_is_replaced_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_small(dir.path(), 150);
    s.append(&entries(1..=20, 1)).unwrap();
    s.sync().unwrap();
    let segments_before = segment_files(dir.path()).len();
    assert!(segments_before > 3, "{segments_before} segments");

    s.append(&entries(8..=12, 2)).unwrap();
    s.sync().unwrap();
    let mut expected = pairs(1..=7, 1);
    expected.extend(pairs(8..=12, 2));
    assert_eq!(log_of(&s), expected);
    assert!(segment_files(dir.path()).len() < segments_before);
    drop(s);

    let mut s = open_small(dir.path(), 150);
    assert_eq!(log_of(&s), expected);
    s.append(&entries(13..=14, 3)).unwrap();
    // Overwrite starting exactly at a segment's first entry.
    let base_of_last = segment_files(dir.path())
        .last()
        .and_then(|p| p.file_stem()?.to_str()?.parse::<u64>().ok())
        .unwrap();
    s.append(&[entry(base_of_last, 4)]).unwrap();
    s.sync().unwrap();
    expected.truncate((base_of_last - 1) as usize);
    expected.extend(
        [(13, 3), (14, 3)]
            .into_iter()
            .filter(|(i, _)| *i < base_of_last),
    );
    expected.push((base_of_last, 4));
    assert_eq!(log_of(&s), expected);
    drop(s);
    assert_eq!(log_of(&open_small(dir.path(), 150)), expected);
}

#[test]
fn appends_that_skip_or_rewrite_compacted_entries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    s.append(&entries(1..=3, 1)).unwrap();
    assert!(matches!(
        s.append(&entries(5..=6, 1)),
        Err(StorageError::NotContiguous {
            expected: 4,
            got: 5
        })
    ));
    assert!(matches!(
        s.append(&[entry(4, 1), entry(6, 1)]),
        Err(StorageError::NotContiguous {
            expected: 5,
            got: 6
        })
    ));
    assert!(matches!(
        s.append(&entries(0..=1, 1)),
        Err(StorageError::Compacted {
            index: 0,
            first_index: 1
        })
    ));
    assert_eq!(log_of(&s), pairs(1..=3, 1));
}

#[test]
fn tiny_segments_roll_one_entry_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_small(dir.path(), 1);
    s.append(&entries(1..=6, 1)).unwrap();
    s.append(&entries(7..=10, 1)).unwrap();
    s.sync().unwrap();
    let names: Vec<_> = segment_files(dir.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    let expected: Vec<_> = (1..=10).map(crate::storage::segment_file_name).collect();
    assert_eq!(names, expected);
    drop(s);
    assert_eq!(log_of(&open_small(dir.path(), 1)), pairs(1..=10, 1));
}

#[test]
fn torn_last_frame_is_truncated_at_every_cut() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    s.append(&entries(1..=5, 1)).unwrap();
    s.sync().unwrap();
    drop(s);
    let seg = segment_files(dir.path()).pop().unwrap();
    let original = fs::read(&seg).unwrap();
    let (start, end) = *frames(&original).last().unwrap();
    assert_eq!(end, original.len());

    for cut in start + 1..end {
        fs::write(&seg, &original[..cut]).unwrap();
        let mut s = open(dir.path());
        assert_eq!(log_of(&s), pairs(1..=4, 1), "cut at {cut}");
        assert_eq!(fs::metadata(&seg).unwrap().len(), start as u64);
        s.append(&[entry(5, 2), entry(6, 2)]).unwrap();
        s.sync().unwrap();
        drop(s);
        let mut expected = pairs(1..=4, 1);
        expected.extend([(5, 2), (6, 2)]);
        assert_eq!(log_of(&open(dir.path())), expected, "cut at {cut}");
    }
}

#[test]
fn bad_checksum_in_the_very_last_frame_and_zero_tail_are_torn() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    s.append(&entries(1..=5, 1)).unwrap();
    s.sync().unwrap();
    drop(s);
    let seg = segment_files(dir.path()).pop().unwrap();
    let original = fs::read(&seg).unwrap();

    let mut zero_tail = original.clone();
    zero_tail.extend_from_slice(&[0u8; 4096]);
    fs::write(&seg, &zero_tail).unwrap();
    assert_eq!(log_of(&open(dir.path())), pairs(1..=5, 1));
    assert_eq!(fs::read(&seg).unwrap(), original);

    let mut bad = original.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    fs::write(&seg, &bad).unwrap();
    assert_eq!(log_of(&open(dir.path())), pairs(1..=4, 1));
}

#[test]
fn half_written_segment_header_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_small(dir.path(), 1);
    s.append(&entries(1..=3, 1)).unwrap();
    s.sync().unwrap();
    drop(s);
    let last = segment_files(dir.path()).pop().unwrap();
    fs::write(&last, b"KRAF").unwrap();
    let mut s = open_small(dir.path(), 1);
    assert_eq!(log_of(&s), pairs(1..=2, 1));
    s.append(&entries(3..=4, 2)).unwrap();
    s.sync().unwrap();
    drop(s);
    let mut expected = pairs(1..=2, 1);
    expected.extend(pairs(3..=4, 2));
    assert_eq!(log_of(&open_small(dir.path(), 1)), expected);
}

fn expect_corrupt(dir: &Path, file: &Path, offset: usize) {
    match RaftStorage::open(dir, &[1, 2, 3], StorageOptions { segment_bytes: 200 }) {
        Err(StorageError::Corrupt {
            file: f, offset: o, ..
        }) => {
            assert_eq!((f.as_path(), o), (file, offset as u64));
        }
        Err(e) => panic!("expected Corrupt, got {e}"),
        Ok(_) => panic!("expected Corrupt, opened fine"),
    }
}

#[test]
fn corrupt_frame_followed_by_valid_frames_names_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    s.append(&entries(1..=5, 1)).unwrap();
    s.sync().unwrap();
    // Committed, so below the recovery point (past it, see `unsynced_tail`).
    s.set_hard_state(&hard_state(1, 1, 5)).unwrap();
    drop(s);
    let seg = segment_files(dir.path()).pop().unwrap();
    let original = fs::read(&seg).unwrap();
    let (start, end) = frames(&original)[2];
    // A payload byte, the checksum, and the length made shorter.
    for pos in [end - 1, start + 5] {
        let mut bad = original.clone();
        bad[pos] ^= 0x01;
        fs::write(&seg, &bad).unwrap();
        expect_corrupt(dir.path(), &seg, start);
    }
    let mut bad = original.clone();
    bad[start + 3] = bad[start + 3].wrapping_sub(1);
    fs::write(&seg, &bad).unwrap();
    expect_corrupt(dir.path(), &seg, start);
}

#[test]
fn damage_in_a_non_last_segment_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_small(dir.path(), 200);
    s.append(&entries(1..=20, 1)).unwrap();
    s.sync().unwrap();
    drop(s);
    let segs = segment_files(dir.path());
    assert!(segs.len() >= 3);
    let first = &segs[0];
    let original = fs::read(first).unwrap();
    let (start, end) = *frames(&original).last().unwrap();

    // Its last frame with a bad checksum: not a torn tail, since segments roll only when full.
    let mut bad = original.clone();
    bad[end - 1] ^= 0x01;
    fs::write(first, &bad).unwrap();
    expect_corrupt(dir.path(), first, start);

    // Cut inside its last frame.
    fs::write(first, &original[..end - 3]).unwrap();
    expect_corrupt(dir.path(), first, start);

    // A missing middle segment leaves a hole in the indexes.
    fs::write(first, &original).unwrap();
    fs::remove_file(&segs[1]).unwrap();
    expect_corrupt(dir.path(), &segs[2], 0);
}

#[test]
fn wrong_magic_or_missing_start_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_small(dir.path(), 200);
    s.append(&entries(1..=20, 1)).unwrap();
    s.sync().unwrap();
    drop(s);
    let segs = segment_files(dir.path());
    let original = fs::read(&segs[1]).unwrap();
    let mut bad = original.clone();
    bad[0] = b'X';
    fs::write(&segs[1], &bad).unwrap();
    expect_corrupt(dir.path(), &segs[1], 0);
    fs::write(&segs[1], &original).unwrap();

    fs::remove_file(&segs[0]).unwrap();
    expect_corrupt(dir.path(), &segs[1], 0);
}

#[test]
fn leftover_temporary_files_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let tmp = dir.path().join("quorum-state.1-0.tmp");
    fs::write(&tmp, b"half").unwrap();
    drop(open(dir.path()));
    assert!(!tmp.exists());
}
