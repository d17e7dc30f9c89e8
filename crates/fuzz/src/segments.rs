//! The `partition_segment` and `raft_segment` targets: a segment file as
//! found on disk after a crash (or a bad disk), opened by the partition
//! log and by the Raft log, whose recovery must truncate or refuse it,
//! never panic; then everything left is read back. The
//! `producer_snapshot` target: a producer-state snapshot file beside a
//! valid segment, which the partition log must read or skip at open, then
//! check an idempotent producer's batch against.
//!
//! In: any bytes, written as the only segment (or snapshot) of a fresh
//! directory. Out: nothing.

use kraft_log::{LogConfig, PartitionLog, ReadBound};
use kraft_raft::storage::RaftStorage;
use raft::Storage as _;

use crate::batches::{encoded_batch, producer_batch};

const FIRST_SEGMENT: &str = "00000000000000000000.log";

/// A fresh directory, in memory where the machine has one: the targets
/// fsync, which on a disk would bound them to a few dozen runs a second.
pub(crate) fn scratch_dir() -> Option<tempfile::TempDir> {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return Some(dir);
        }
    }
    tempfile::tempdir().ok()
}

pub fn partition_segment(data: &[u8]) {
    let Some(dir) = scratch_dir() else { return };
    if std::fs::write(dir.path().join(FIRST_SEGMENT), data).is_err() {
        return;
    }
    let Ok(log) = PartitionLog::open(dir.path(), LogConfig::default()) else {
        return;
    };
    let _ = log.read(log.log_start_offset(), 1 << 20, ReadBound::LogEnd, true);
}

pub fn producer_snapshot(data: &[u8]) {
    let Some(dir) = scratch_dir() else { return };
    let Some(segment) = partition_seeds().pop() else {
        return;
    };
    let written = std::fs::write(dir.path().join(FIRST_SEGMENT), segment)
        .and_then(|()| std::fs::write(dir.path().join(FIRST_SNAPSHOT), data));
    if written.is_err() {
        return;
    }
    let Ok(log) = PartitionLog::open(dir.path(), LogConfig::default()) else {
        return;
    };
    for (pid, epoch, seq) in [(1, 0, 0), (1, 0, 3), (7, 2, 5)] {
        let _ = log.append_as_leader(producer_batch(3, pid, epoch, seq).into(), 0, 0);
    }
}

const FIRST_SNAPSHOT: &str = "00000000000000000000.snapshot";

/// A snapshot of two idempotent producers, as a log's close writes it.
pub fn snapshot_seeds() -> Vec<Vec<u8>> {
    let Ok(dir) = tempfile::tempdir() else {
        return Vec::new();
    };
    let Ok(log) = PartitionLog::open(dir.path(), LogConfig::default()) else {
        return Vec::new();
    };
    for (pid, epoch, seq) in [(1, 0, 0), (1, 0, 3), (7, 2, 0)] {
        if log
            .append_as_leader(producer_batch(3, pid, epoch, seq).into(), 0, 0)
            .is_err()
        {
            return Vec::new();
        }
    }
    let end = log.log_end_offset();
    if log.close().is_err() {
        return Vec::new();
    }
    std::fs::read(dir.path().join(format!("{end:020}.snapshot")))
        .map(|b| vec![b])
        .unwrap_or_default()
}

pub fn raft_segment(data: &[u8]) {
    let Some(dir) = scratch_dir() else { return };
    if std::fs::write(dir.path().join("00000000000000000001.log"), data).is_err() {
        return;
    }
    let Ok(storage) = RaftStorage::open(dir.path(), &[1], Default::default()) else {
        return;
    };
    let (Ok(first), Ok(last)) = (storage.first_index(), storage.last_index()) else {
        return;
    };
    if first <= last {
        let _ = storage.entries(
            first,
            last + 1,
            1u64 << 20,
            raft::GetEntriesContext::empty(false),
        );
    }
}

pub fn partition_seeds() -> Vec<Vec<u8>> {
    let Ok(dir) = tempfile::tempdir() else {
        return Vec::new();
    };
    let Ok(log) = PartitionLog::open(dir.path(), LogConfig::default()) else {
        return Vec::new();
    };
    for count in [1, 3, 2] {
        let batch = encoded_batch(count, kafka_protocol::records::Compression::None);
        if log.append_as_leader(batch.into(), 0, 0).is_err() {
            break;
        }
    }
    let _ = log.flush();
    std::fs::read(dir.path().join(FIRST_SEGMENT))
        .map(|b| vec![b])
        .unwrap_or_default()
}

pub fn raft_seeds() -> Vec<Vec<u8>> {
    let Ok(dir) = tempfile::tempdir() else {
        return Vec::new();
    };
    let Ok(mut storage) = RaftStorage::open(dir.path(), &[1], Default::default()) else {
        return Vec::new();
    };
    let entries: Vec<kraft_raft::Entry> = (1..=3)
        .map(|index| kraft_raft::Entry {
            index,
            term: 1,
            data: vec![b'e'; index as usize * 10].into(),
            ..Default::default()
        })
        .collect();
    if storage.append(&entries).is_err() || storage.sync().is_err() {
        return Vec::new();
    }
    drop(storage);
    std::fs::read(dir.path().join("00000000000000000001.log"))
        .map(|b| vec![b])
        .unwrap_or_default()
}
