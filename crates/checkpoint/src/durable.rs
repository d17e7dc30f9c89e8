//! Durable file-system helpers: directory fsync, removal that tolerates a
//! missing file, and the "write a temporary file, fsync, rename, fsync the
//! directory" dance that makes a whole-file replace atomic and durable.
//!
//! Checkpoints are written with them; the Raft storage uses them for its
//! other whole-file state too (the quorum state), and removes files ending
//! in [`TMP_SUFFIX`] left over by a crash.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::io_err;
use crate::CheckpointError;

/// Suffix of files being written; any left over at open time are debris of a
/// crash and are removed.
pub const TMP_SUFFIX: &str = ".tmp";

/// Makes the directory entries of `dir` (creations, renames, deletions)
/// durable.
pub fn sync_dir(dir: &Path) -> Result<(), CheckpointError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Removes `path`; a file that is already gone is not an error.
pub fn remove_file(path: &Path) -> Result<(), CheckpointError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(path)(e)),
        _ => Ok(()),
    }
}

/// Replaces `dir/name` with `bytes` atomically and durably: once this
/// returns, a crash leaves either the old or the new content, never a mix.
/// Safe to call from several threads at once (each uses its own temporary).
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, CheckpointError> {
    static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);
    let unique = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(name);
    let tmp = dir.join(format!(
        "{name}.{}-{unique}{TMP_SUFFIX}",
        std::process::id()
    ));
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(&tmp)(e));
    }
    if let Err(e) = fs::rename(&tmp, &path) {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(&path)(e));
    }
    sync_dir(dir)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "state", b"first").unwrap();
        let path = write_atomic(dir.path(), "state", b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["state".to_string()]);
    }

    #[test]
    fn removing_a_missing_file_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        remove_file(&dir.path().join("gone")).unwrap();
    }
}
