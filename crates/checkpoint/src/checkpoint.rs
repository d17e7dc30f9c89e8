//! Snapshot files: `<index:020>-<term:020>.checkpoint`.
//!
//! Their bytes are opaque here: the state machine defines (and validates)
//! the format. This module names, writes, lists, reads and retires them.
//! A checkpoint is written whole and atomically (temporary file, fsync,
//! rename, directory fsync), so a file with the final name is always
//! complete; the newest two are kept.

use std::fs;
use std::path::{Path, PathBuf};

use crate::durable::{remove_file, sync_dir, write_atomic};
use crate::error::io_err;
use crate::CheckpointError;

const SUFFIX: &str = ".checkpoint";

/// How many checkpoints stay on disk after a newer one is durable.
pub const CHECKPOINTS_KEPT: usize = 2;

/// A checkpoint file found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointFile {
    pub index: u64,
    pub term: u64,
    pub path: PathBuf,
}

/// The file name of the checkpoint at `index` written in `term`.
pub fn checkpoint_file_name(index: u64, term: u64) -> String {
    format!("{index:020}-{term:020}{SUFFIX}")
}

/// Parses `<index:020>-<term:020>.checkpoint`.
pub fn parse_file_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(SUFFIX)?;
    let (index, term) = stem.split_once('-')?;
    Some((parse_20_digits(index)?, parse_20_digits(term)?))
}

fn parse_20_digits(s: &str) -> Option<u64> {
    if s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// Writes the checkpoint at (`index`, `term`) durably into `dir` and returns
/// its path. Callable from any thread (for example `spawn_blocking`) while
/// the Raft thread runs; a controller then hands it to the Raft storage
/// (`RaftStorage::snapshot_taken`).
pub fn write_checkpoint(
    dir: &Path,
    index: u64,
    term: u64,
    data: &[u8],
) -> Result<PathBuf, CheckpointError> {
    write_atomic(dir, &checkpoint_file_name(index, term), data)
}

/// Every checkpoint in `dir`, oldest first.
pub fn list(dir: &Path) -> Result<Vec<CheckpointFile>, CheckpointError> {
    let mut found = Vec::new();
    for dirent in fs::read_dir(dir).map_err(io_err(dir))? {
        let dirent = dirent.map_err(io_err(dir))?;
        let name = dirent.file_name();
        if let Some((index, term)) = name.to_str().and_then(parse_file_name) {
            found.push(CheckpointFile {
                index,
                term,
                path: dirent.path(),
            });
        }
    }
    found.sort_by_key(|c| (c.index, c.term));
    Ok(found)
}

/// Reads a whole checkpoint file.
pub fn read(file: &CheckpointFile) -> Result<Vec<u8>, CheckpointError> {
    fs::read(&file.path).map_err(io_err(&file.path))
}

/// The newest checkpoint in `dir` as (index, term, bytes), if any. For nodes
/// that keep snapshots without a Raft log (brokers).
pub fn read_latest_checkpoint(dir: &Path) -> Result<Option<(u64, u64, Vec<u8>)>, CheckpointError> {
    if !dir.is_dir() {
        return Ok(None);
    }
    match list(dir)?.pop() {
        Some(file) => Ok(Some((file.index, file.term, read(&file)?))),
        None => Ok(None),
    }
}

/// Whether the checkpoint at (`index`, `term`) exists in `dir`.
pub fn exists(dir: &Path, index: u64, term: u64) -> bool {
    dir.join(checkpoint_file_name(index, term)).is_file()
}

/// Deletes all but the newest [`CHECKPOINTS_KEPT`] checkpoints, never the one
/// at `current` (the snapshot the storage serves). Returns how many it
/// removed.
pub fn retire_old(dir: &Path, current: (u64, u64)) -> Result<usize, CheckpointError> {
    let all = list(dir)?;
    let old = all.len().saturating_sub(CHECKPOINTS_KEPT);
    let mut removed = 0;
    for file in &all[..old] {
        if (file.index, file.term) == current {
            continue;
        }
        remove_file(&file.path)?;
        removed += 1;
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let name = checkpoint_file_name(100, 3);
        assert_eq!(name, "00000000000000000100-00000000000000000003.checkpoint");
        assert_eq!(parse_file_name(&name), Some((100, 3)));
        assert_eq!(parse_file_name("100-3.checkpoint"), None);
        assert_eq!(parse_file_name(&format!("{name}.1-0.tmp")), None);
        assert_eq!(parse_file_name("00000000000000000001.log"), None);
    }

    #[test]
    fn write_list_read_and_retire() {
        let dir = tempfile::tempdir().unwrap();
        for (i, t) in [(10, 1), (20, 1), (30, 2), (40, 2)] {
            write_checkpoint(dir.path(), i, t, format!("snap {i}").as_bytes()).unwrap();
        }
        let all = list(dir.path()).unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(read(&all[0]).unwrap(), b"snap 10");

        // The served snapshot survives even when it is not among the newest two.
        assert_eq!(retire_old(dir.path(), (20, 1)).unwrap(), 1);
        let left: Vec<_> = list(dir.path()).unwrap().iter().map(|c| c.index).collect();
        assert_eq!(left, vec![20, 30, 40]);
        assert_eq!(retire_old(dir.path(), (40, 2)).unwrap(), 1);
        let left: Vec<_> = list(dir.path()).unwrap().iter().map(|c| c.index).collect();
        assert_eq!(left, vec![30, 40]);
    }

    #[test]
    fn read_latest_is_the_newest_and_none_without_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_latest_checkpoint(&dir.path().join("absent"))
            .unwrap()
            .is_none());
        assert!(read_latest_checkpoint(dir.path()).unwrap().is_none());
        write_checkpoint(dir.path(), 30, 2, b"thirty").unwrap();
        write_checkpoint(dir.path(), 10, 1, b"ten").unwrap();
        assert_eq!(
            read_latest_checkpoint(dir.path()).unwrap(),
            Some((30, 2, b"thirty".to_vec()))
        );
        assert!(exists(dir.path(), 10, 1));
        assert!(!exists(dir.path(), 10, 2));
    }
}
