//! Snapshots from the leader, local snapshots with compaction, checkpoint
//! retention and recovery around them.

use std::fs;

use bytes::Bytes;
use raft::eraftpb::{ConfState, Snapshot};
use raft::Storage;

use super::*;
use crate::storage::{checkpoint_file_name, write_checkpoint, StorageError};

pub(super) fn leader_snapshot(index: u64, term: u64, data: &'static [u8]) -> Snapshot {
    let mut snap = Snapshot {
        data: Bytes::from_static(data),
        ..Snapshot::default()
    };
    let meta = snap.mut_metadata();
    meta.index = index;
    meta.term = term;
    meta.set_conf_state(ConfState {
        voters: vec![1, 2, 3],
        ..ConfState::default()
    });
    snap
}

fn take_snapshot(s: &mut RaftStorage, index: u64, term: u64) {
    let data = format!("state at {index}");
    write_checkpoint(s.dir(), index, term, data.as_bytes()).unwrap();
    s.snapshot_taken(index, term, Bytes::from(data)).unwrap();
}

#[test]
fn snapshot_from_leader_replaces_the_log_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_small(dir.path(), 100);
    s.append(&entries(1..=10, 1)).unwrap();
    s.sync().unwrap();
    s.set_hard_state(&hard_state(2, 2, 3)).unwrap();

    s.apply_snapshot(&leader_snapshot(20, 3, b"leader state"))
        .unwrap();
    assert!(segment_files(dir.path()).is_empty());
    assert_eq!(
        (s.first_index().unwrap(), s.last_index().unwrap()),
        (21, 20)
    );
    assert_eq!(s.term(20).unwrap(), 3);
    assert_eq!(s.hard_state(), hard_state(3, 0, 20));
    assert_eq!(
        s.latest_snapshot(),
        Some((20, 3, Bytes::from_static(b"leader state")))
    );
    s.append(&entries(21..=23, 3)).unwrap();
    s.sync().unwrap();
    drop(s);

    let s = open_small(dir.path(), 100);
    assert_eq!(log_of(&s), pairs(21..=23, 3));
    assert_eq!((s.snapshot_index(), s.snapshot_term()), (20, 3));
    assert_eq!(s.hard_state(), hard_state(3, 0, 20));
    assert_eq!(s.conf_state().voters, vec![1, 2, 3]);
    let snap = s.snapshot(0, 2).unwrap();
    assert_eq!(snap.get_metadata().index, 20);
    assert_eq!(snap.get_metadata().term, 3);
    assert_eq!(snap.get_metadata().get_conf_state().voters, vec![1, 2, 3]);
    assert_eq!(&snap.data[..], b"leader state");
}

#[test]
fn snapshot_from_leader_below_the_log_start_is_out_of_date() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    s.apply_snapshot(&leader_snapshot(20, 3, b"x")).unwrap();
    assert!(matches!(
        s.apply_snapshot(&leader_snapshot(15, 3, b"y")),
        Err(StorageError::SnapshotOutOfDate {
            index: 15,
            first_index: 21
        })
    ));
}

#[test]
fn snapshot_taken_compacts_whole_old_segments_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_small(dir.path(), 150);
    s.append(&entries(1..=30, 1)).unwrap();
    s.sync().unwrap();
    s.set_hard_state(&hard_state(1, 1, 30)).unwrap();
    let bases: Vec<u64> = segment_files(dir.path())
        .iter()
        .map(|p| p.file_stem().unwrap().to_str().unwrap().parse().unwrap())
        .collect();
    assert!(bases.len() > 4, "{bases:?}");
    // Snapshot in the middle of a segment (not at its last entry).
    let index = bases[2] + 1;
    assert!(index + 1 < bases[3]);

    take_snapshot(&mut s, index, 1);
    let left: Vec<u64> = segment_files(dir.path())
        .iter()
        .map(|p| p.file_stem().unwrap().to_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(left, bases[2..].to_vec());
    assert_eq!(s.first_index().unwrap(), index + 1);
    assert_eq!(log_of(&s), pairs(index + 1..=30, 1));
    drop(s);

    let mut s = open_small(dir.path(), 150);
    assert_eq!(log_of(&s), pairs(index + 1..=30, 1));
    assert_eq!(s.snapshot_index(), index);
    assert_eq!(s.hard_state().commit, 30);

    // A snapshot at the very last entry keeps the active segment.
    take_snapshot(&mut s, 30, 1);
    assert_eq!(segment_files(dir.path()).len(), 1);
    assert!(log_of(&s).is_empty());
    s.append(&entries(31..=32, 2)).unwrap();
    s.sync().unwrap();
    drop(s);
    let s = open_small(dir.path(), 150);
    assert_eq!(s.first_index().unwrap(), 31);
    assert_eq!(log_of(&s), pairs(31..=32, 2));
}

#[test]
fn only_the_newest_two_checkpoints_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    s.append(&entries(1..=40, 1)).unwrap();
    s.set_commit(40);
    for index in [10, 20, 30] {
        take_snapshot(&mut s, index, 1);
    }
    assert_eq!(
        checkpoint_files(dir.path()),
        vec![checkpoint_file_name(20, 1), checkpoint_file_name(30, 1)]
    );
    s.apply_snapshot(&leader_snapshot(50, 2, b"from leader"))
        .unwrap();
    assert_eq!(
        checkpoint_files(dir.path()),
        vec![checkpoint_file_name(30, 1), checkpoint_file_name(50, 2)]
    );
    drop(s);
    let s = open(dir.path());
    assert_eq!(
        s.latest_snapshot(),
        Some((50, 2, Bytes::from_static(b"from leader")))
    );
}

#[test]
fn snapshot_taken_checks_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    s.append(&entries(1..=10, 2)).unwrap();
    s.set_commit(5);
    let rejected =
        |r: Result<(), StorageError>| matches!(r, Err(StorageError::SnapshotRejected { .. }));
    // No checkpoint file.
    assert!(rejected(s.snapshot_taken(4, 2, Bytes::new())));
    // Beyond the commit index.
    write_checkpoint(dir.path(), 7, 2, b"x").unwrap();
    assert!(rejected(s.snapshot_taken(7, 2, Bytes::new())));
    // Wrong term.
    write_checkpoint(dir.path(), 4, 1, b"x").unwrap();
    assert!(rejected(s.snapshot_taken(4, 1, Bytes::new())));
    assert_eq!(s.first_index().unwrap(), 1);
    // Stale ones are no-ops.
    take_snapshot(&mut s, 5, 2);
    s.snapshot_taken(3, 2, Bytes::new()).unwrap();
    assert_eq!(s.snapshot_index(), 5);
}

#[test]
fn log_left_behind_by_an_interrupted_leader_snapshot_is_dropped() {
    // The checkpoint became durable but the segments were not deleted yet.
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    s.append(&entries(1..=10, 1)).unwrap();
    s.sync().unwrap();
    drop(s);

    // Snapshot beyond the end of the log.
    write_checkpoint(dir.path(), 20, 3, b"x").unwrap();
    let s = open(dir.path());
    assert_eq!(
        (s.first_index().unwrap(), s.last_index().unwrap()),
        (21, 20)
    );
    assert!(segment_files(dir.path()).is_empty());
    assert_eq!(s.hard_state().term, 3);
}

#[test]
fn log_disagreeing_with_the_snapshot_term_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    s.append(&entries(1..=10, 1)).unwrap();
    s.sync().unwrap();
    drop(s);
    write_checkpoint(dir.path(), 5, 2, b"x").unwrap();
    let s = open(dir.path());
    assert_eq!((s.first_index().unwrap(), s.last_index().unwrap()), (6, 5));
    assert!(log_of(&s).is_empty());
}

#[test]
fn log_agreeing_with_the_snapshot_is_kept_and_commit_is_at_least_the_snapshot() {
    // A local snapshot was written but the Raft thread stopped before
    // `snapshot_taken` (and before the commit index was persisted).
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    s.append(&entries(1..=10, 1)).unwrap();
    s.sync().unwrap();
    drop(s);
    write_checkpoint(dir.path(), 5, 1, b"x").unwrap();
    let s = open(dir.path());
    assert_eq!(log_of(&s), pairs(6..=10, 1));
    assert_eq!(s.hard_state().commit, 5);
    assert_eq!(s.latest_snapshot(), Some((5, 1, Bytes::from_static(b"x"))));
}

#[test]
fn corrupt_quorum_state_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let path = dir.path().join("quorum-state");
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x10;
    fs::write(&path, &bytes).unwrap();
    match RaftStorage::open(dir.path(), &[1], StorageOptions::default()) {
        Err(StorageError::Corrupt { file, .. }) => assert_eq!(file, path),
        Err(e) => panic!("expected Corrupt, got {e}"),
        Ok(_) => panic!("expected Corrupt"),
    }
}
