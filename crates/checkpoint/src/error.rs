//! [`CheckpointError`]: what can go wrong reading, writing or deleting
//! checkpoint files. Every error names the file or directory it happened on.

use std::path::{Path, PathBuf};

/// Errors of checkpoint files and the durable-write helpers.
#[derive(thiserror::Error, Debug)]
pub enum CheckpointError {
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Wraps an `io::Error` with the path it happened on.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}
