//! Storage tests, all in temporary directories: log append/recovery
//! ([`log`]), snapshots and compaction ([`snapshots`]), crashes part way
//! through deleting segments ([`interrupted_deletions`]), damage in the
//! unsynced tail after a power loss ([`unsynced_tail`]), the `raft::Storage`
//! contract and the committed-log reader ([`contract`]).

mod contract;
mod interrupted_deletions;
mod log;
mod snapshots;
mod unsynced_tail;

use std::fs;
use std::path::{Path, PathBuf};

use raft::eraftpb::{Entry, HardState};
use raft::{GetEntriesContext, Storage};

use super::{RaftStorage, StorageOptions};

pub(super) fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: format!("entry {index} of term {term}").into_bytes().into(),
        ..Entry::default()
    }
}

pub(super) fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
    range.map(|i| entry(i, term)).collect()
}

pub(super) fn hard_state(term: u64, vote: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote,
        commit,
        ..HardState::default()
    }
}

pub(super) fn open(dir: &Path) -> RaftStorage {
    RaftStorage::open(dir, &[1, 2, 3], StorageOptions::default()).unwrap()
}

pub(super) fn open_small(dir: &Path, segment_bytes: u64) -> RaftStorage {
    RaftStorage::open(dir, &[1, 2, 3], StorageOptions { segment_bytes }).unwrap()
}

/// (index, term) of every entry the storage serves.
pub(super) fn log_of(s: &RaftStorage) -> Vec<(u64, u64)> {
    let (first, last) = (s.first_index().unwrap(), s.last_index().unwrap());
    s.entries(first, last + 1, None, GetEntriesContext::empty(false))
        .unwrap()
        .iter()
        .map(|e| (e.index, e.term))
        .collect()
}

pub(super) fn pairs(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<(u64, u64)> {
    range.map(|i| (i, term)).collect()
}

/// Segment files in `dir`, sorted.
pub(super) fn segment_files(dir: &Path) -> Vec<PathBuf> {
    files_ending(dir, ".log")
}

pub(super) fn checkpoint_files(dir: &Path) -> Vec<String> {
    files_ending(dir, ".checkpoint")
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
        .collect()
}

fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|d| d.unwrap().path())
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(suffix)))
        .collect();
    v.sort();
    v
}

/// (start, end) byte range of each frame of a segment file's content.
pub(super) fn frames(data: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 12;
    while pos + 8 <= data.len() {
        let len = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        out.push((pos, pos + 8 + len));
        pos += 8 + len;
    }
    out
}
