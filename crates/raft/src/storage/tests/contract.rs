//! The `raft::Storage` contract around snapshot boundaries, and the
//! committed-only [`LogReader`](crate::storage::LogReader).

use bytes::Bytes;
use protobuf::Message as _;
use raft::{Error, Storage, StorageError as RaftStorageError};

use super::*;
use crate::storage::{write_checkpoint, ReadCommitted};

fn ctx() -> GetEntriesContext {
    GetEntriesContext::empty(false)
}

fn compacted<T: std::fmt::Debug>(r: raft::Result<T>) -> bool {
    matches!(r, Err(Error::Store(RaftStorageError::Compacted)))
}

fn unavailable<T: std::fmt::Debug>(r: raft::Result<T>) -> bool {
    matches!(r, Err(Error::Store(RaftStorageError::Unavailable)))
}

/// Entries 6..=10 (term 2) after a snapshot at 5 (term 2).
fn storage_with_snapshot_at_5(dir: &Path) -> RaftStorage {
    let mut s = open(dir);
    s.append(&entries(1..=3, 1)).unwrap();
    s.append(&entries(4..=10, 2)).unwrap();
    s.set_commit(8);
    write_checkpoint(dir, 5, 2, b"five").unwrap();
    s.snapshot_taken(5, 2, Bytes::from_static(b"five")).unwrap();
    s
}

#[test]
fn empty_storage_follows_mem_storage() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    assert_eq!(s.first_index().unwrap(), 1);
    assert_eq!(s.last_index().unwrap(), 0);
    assert_eq!(s.term(0).unwrap(), 0);
    assert!(unavailable(s.term(1)));
    assert_eq!(s.entries(1, 1, None, ctx()).unwrap(), vec![]);
    assert!(compacted(s.entries(0, 1, None, ctx())));
    assert!(matches!(
        s.snapshot(0, 2),
        Err(Error::Store(
            RaftStorageError::SnapshotTemporarilyUnavailable
        ))
    ));
}

#[test]
fn term_and_indexes_around_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let s = storage_with_snapshot_at_5(dir.path());
    assert_eq!(s.first_index().unwrap(), 6);
    assert_eq!(s.last_index().unwrap(), 10);
    assert_eq!(s.term(5).unwrap(), 2);
    assert_eq!(s.term(6).unwrap(), 2);
    assert_eq!(s.term(10).unwrap(), 2);
    assert!(compacted(s.term(4)));
    assert!(compacted(s.term(0)));
    assert!(unavailable(s.term(11)));
}

#[test]
fn entries_bounds_and_max_size() {
    let dir = tempfile::tempdir().unwrap();
    let s = storage_with_snapshot_at_5(dir.path());
    assert!(compacted(s.entries(5, 7, None, ctx())));
    assert!(compacted(s.entries(2, 3, None, ctx())));
    assert!(unavailable(s.entries(6, 12, None, ctx())));
    let all = s.entries(6, 11, None, ctx()).unwrap();
    assert_eq!(all, entries(6..=10, 2));
    assert_eq!(s.entries(6, 11, raft::NO_LIMIT, ctx()).unwrap().len(), 5);
    assert_eq!(s.entries(8, 9, None, ctx()).unwrap(), vec![entry(8, 2)]);

    // At least one entry, however small the limit.
    assert_eq!(s.entries(6, 11, Some(0), ctx()).unwrap(), vec![entry(6, 2)]);
    let one = u64::from(entry(6, 2).compute_size());
    let two = one + u64::from(entry(7, 2).compute_size());
    assert_eq!(s.entries(6, 11, Some(two), ctx()).unwrap().len(), 2);
    assert_eq!(s.entries(6, 11, Some(two - 1), ctx()).unwrap().len(), 1);
}

#[test]
fn snapshot_is_served_with_its_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let s = storage_with_snapshot_at_5(dir.path());
    let snap = s.snapshot(0, 2).unwrap();
    assert_eq!(
        (snap.get_metadata().index, snap.get_metadata().term),
        (5, 2)
    );
    assert_eq!(&snap.data[..], b"five");
    assert!(matches!(
        s.snapshot(6, 2),
        Err(Error::Store(
            RaftStorageError::SnapshotTemporarilyUnavailable
        ))
    ));
    let rs = s.initial_state().unwrap();
    assert_eq!(rs.hard_state.commit, 8);
}

#[test]
fn reader_sees_only_committed_entries() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    let reader = s.reader();
    s.append(&entries(1..=10, 1)).unwrap();
    assert_eq!(
        reader.read_committed(1, u64::MAX),
        ReadCommitted::Entries(vec![])
    );
    s.set_commit(4);
    let r = reader.clone();
    assert_eq!(r.commit_index(), 4);
    assert_eq!((r.first_index(), r.last_index()), (1, 10));
    assert_eq!(
        r.read_committed(1, u64::MAX),
        ReadCommitted::Entries(entries(1..=4, 1))
    );
    assert_eq!(
        r.read_committed(0, u64::MAX),
        ReadCommitted::Entries(entries(1..=4, 1))
    );
    assert_eq!(
        r.read_committed(5, u64::MAX),
        ReadCommitted::Entries(vec![])
    );
    assert_eq!(
        r.read_committed(2, 0),
        ReadCommitted::Entries(vec![entry(2, 1)])
    );
    let two = u64::from(entry(2, 1).compute_size() + entry(3, 1).compute_size());
    assert_eq!(
        r.read_committed(2, two),
        ReadCommitted::Entries(entries(2..=3, 1))
    );

    // A commit index past the stored log is not past what is readable.
    s.set_commit(50);
    assert_eq!(r.commit_index(), 10);
    assert_eq!(
        r.read_committed(9, u64::MAX),
        ReadCommitted::Entries(entries(9..=10, 1))
    );
}

#[test]
fn reader_asks_for_the_snapshot_below_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let s = storage_with_snapshot_at_5(dir.path());
    let r = s.reader();
    for from in [0, 1, 5] {
        assert_eq!(
            r.read_committed(from, u64::MAX),
            ReadCommitted::SnapshotRequired { index: 5, term: 2 }
        );
    }
    assert_eq!(
        r.read_committed(6, u64::MAX),
        ReadCommitted::Entries(entries(6..=8, 2))
    );
    assert_eq!(r.first_index(), 6);
    assert_eq!(
        r.latest_snapshot(),
        Some((5, 2, Bytes::from_static(b"five")))
    );
}
