//! Small file-system helpers shared by the storage files: error wrapping,
//! big-endian reads, and the durable-write helpers of `kraft-checkpoint`
//! (directory fsync, atomic whole-file replace) with their errors as
//! [`StorageError`]s.

use std::io;
use std::path::{Path, PathBuf};

use kraft_checkpoint::durable;

use super::StorageError;

pub(crate) use kraft_checkpoint::durable::TMP_SUFFIX;

/// Wraps an `io::Error` with the path it happened on.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Makes the directory entries of `dir` (creations, renames, deletions)
/// durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    Ok(durable::sync_dir(dir)?)
}

/// Removes `path`; a file that is already gone is not an error.
pub(crate) fn remove_file(path: &Path) -> Result<(), StorageError> {
    Ok(durable::remove_file(path)?)
}

/// Replaces `dir/name` with `bytes` atomically and durably: once this
/// returns, a crash leaves either the old or the new content, never a mix.
/// Safe to call from several threads at once (each uses its own temporary).
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, StorageError> {
    Ok(durable::write_atomic(dir, name, bytes)?)
}

/// Reads a big-endian u32 from the first four bytes of `b` (callers check
/// the length first).
pub(crate) fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}
