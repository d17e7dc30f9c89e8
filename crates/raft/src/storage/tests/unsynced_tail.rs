//! Power loss with an unsynced tail: past the recovery point (the persisted
//! commit index, in the last segment) the first invalid frame ends the log,
//! even when well-formed frames follow; below it, or in a sealed segment,
//! the same damage is [`StorageError::Corrupt`].

use std::fs;

use super::*;
use crate::storage::StorageError;

/// Ten entries of term 1 in one segment with `commit` persisted; returns
/// the segment and its original bytes.
fn one_segment_log(dir: &Path, commit: u64) -> (PathBuf, Vec<u8>) {
    let mut s = open(dir);
    s.append(&entries(1..=10, 1)).unwrap();
    s.sync().unwrap();
    s.set_hard_state(&hard_state(1, 1, commit)).unwrap();
    drop(s);
    let seg = segment_files(dir).pop().unwrap();
    let bytes = fs::read(&seg).unwrap();
    (seg, bytes)
}

/// Ways unsynced pages come back after a power loss, each damaging the
/// frame at `start..end` (of a bigger file) and leaving later frames intact.
fn damaged(original: &[u8], (start, end): (usize, usize)) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let mut b = original.to_vec();
    b[end - 1] ^= 0x01;
    out.push(("a payload byte", b));
    let mut b = original.to_vec();
    b[start + 5] ^= 0x80;
    out.push(("the checksum", b));
    let mut b = original.to_vec();
    b[start + 3] = b[start + 3].wrapping_sub(1);
    out.push(("a shorter length", b));
    let mut b = original.to_vec();
    b[start + 3] = b[start + 3].wrapping_add(7);
    out.push(("a longer length", b));
    let mut b = original.to_vec();
    b[start] = 0xff;
    out.push(("a length past the end of the file", b));
    let mut b = original.to_vec();
    b[start..end].fill(0);
    out.push(("zeros", b));
    let mut b = original.to_vec();
    for (i, byte) in b[start..end].iter_mut().enumerate() {
        *byte = (i * 37 % 251) as u8;
    }
    out.push(("garbage", b));
    out
}

#[test]
fn garbage_past_the_commit_index_followed_by_valid_frames_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, original) = one_segment_log(dir.path(), 4);
    let frames = frames(&original);
    // Entry 6: past the commit index, with entries 7..=10 well formed after it.
    let (start, end) = frames[5];
    for (what, bytes) in damaged(&original, (start, end)) {
        fs::write(&seg, &bytes).unwrap();
        let mut s = RaftStorage::open(dir.path(), &[1, 2, 3], StorageOptions::default())
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(log_of(&s), pairs(1..=5, 1), "{what}");
        assert_eq!(s.hard_state().commit, 4, "{what}");
        assert_eq!(fs::metadata(&seg).unwrap().len(), start as u64, "{what}");
        s.append(&entries(6..=7, 2)).unwrap();
        s.sync().unwrap();
        drop(s);
        let mut expected = pairs(1..=5, 1);
        expected.extend(pairs(6..=7, 2));
        assert_eq!(log_of(&open(dir.path())), expected, "{what}");
        fs::write(&seg, &original).unwrap();
    }
}

#[test]
fn the_first_frame_past_the_commit_index_can_be_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, original) = one_segment_log(dir.path(), 5);
    let (start, end) = frames(&original)[5];
    let mut bytes = original.clone();
    bytes[start..end].fill(0);
    fs::write(&seg, &bytes).unwrap();
    assert_eq!(log_of(&open(dir.path())), pairs(1..=5, 1));
}

fn expect_corrupt(dir: &Path, file: &Path, offset: usize, what: &str) {
    match RaftStorage::open(dir, &[1, 2, 3], StorageOptions { segment_bytes: 200 }) {
        Err(StorageError::Corrupt {
            file: f, offset: o, ..
        }) => assert_eq!((f.as_path(), o), (file, offset as u64), "{what}"),
        Err(e) => panic!("{what}: expected Corrupt, got {e}"),
        Ok(_) => panic!("{what}: expected Corrupt, opened fine"),
    }
}

#[test]
fn the_same_damage_at_or_below_the_commit_index_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, original) = one_segment_log(dir.path(), 6);
    let (start, end) = frames(&original)[5];
    for (what, bytes) in damaged(&original, (start, end)) {
        fs::write(&seg, &bytes).unwrap();
        expect_corrupt(dir.path(), &seg, start, what);
        assert_eq!(fs::read(&seg).unwrap(), bytes, "{what}: nothing was cut");
    }
}

#[test]
fn the_same_damage_in_a_sealed_segment_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_small(dir.path(), 200);
    s.append(&entries(1..=20, 1)).unwrap();
    s.sync().unwrap();
    drop(s);
    let segs = segment_files(dir.path());
    assert!(segs.len() >= 3);
    // Nothing is committed: only the last segment is past the recovery point.
    let original = fs::read(&segs[1]).unwrap();
    let frames = frames(&original);
    assert!(frames.len() >= 3);
    for (what, bytes) in damaged(&original, frames[1]) {
        fs::write(&segs[1], &bytes).unwrap();
        expect_corrupt(dir.path(), &segs[1], frames[1].0, what);
    }
}

#[test]
fn an_unwritten_last_segment_past_the_commit_index_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_small(dir.path(), 1);
    s.append(&entries(1..=4, 1)).unwrap();
    s.sync().unwrap();
    s.set_hard_state(&hard_state(1, 1, 3)).unwrap();
    drop(s);
    // The file grew but its page never reached the disk.
    let last = segment_files(dir.path()).pop().unwrap();
    let len = fs::metadata(&last).unwrap().len() as usize;
    fs::write(&last, vec![0u8; len]).unwrap();
    let s = open_small(dir.path(), 1);
    assert_eq!(log_of(&s), pairs(1..=3, 1));
    assert!(!last.exists());

    // The same segment holding the committed entry is corrupt.
    drop(s);
    let mut s = open_small(dir.path(), 1);
    s.append(&entries(4..=4, 1)).unwrap();
    s.sync().unwrap();
    s.set_hard_state(&hard_state(1, 1, 4)).unwrap();
    drop(s);
    fs::write(&last, vec![0u8; len]).unwrap();
    expect_corrupt(dir.path(), &last, 0, "zeroed committed segment");
}

#[test]
fn a_clean_close_moves_the_recovery_point_to_the_commit_index() {
    for crash in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path());
        s.append(&entries(1..=10, 1)).unwrap();
        s.sync().unwrap();
        s.set_hard_state(&hard_state(1, 1, 2)).unwrap();
        s.set_commit(8);
        if crash {
            std::mem::forget(s);
        } else {
            drop(s);
        }
        let seg = segment_files(dir.path()).pop().unwrap();
        let mut bytes = fs::read(&seg).unwrap();
        let (start, end) = frames(&bytes)[5];
        bytes[end - 1] ^= 0x01;
        fs::write(&seg, &bytes).unwrap();
        if crash {
            // Entry 6 is past the persisted commit index 2.
            assert_eq!(log_of(&open(dir.path())), pairs(1..=5, 1));
        } else {
            expect_corrupt(dir.path(), &seg, start, "after a clean close");
        }
    }
}
