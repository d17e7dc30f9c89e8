//! Replacing cleaned segments on disk so that a crash at any point leaves
//! either the old segment or the cleaned one, whole, for each base offset.
//!
//! In: the base offsets of segments whose `<base>.<suffix>.cleaned` files
//! ([`super::clean`]) are complete and fsynced. Out: the files under their
//! final names. Steps, each segment oldest first:
//! 1. [`commit`]: rename the index files `.cleaned` -> `.swap`, then the
//!    `.log`; fsync the directory. A `<base>.log.swap` is the commit point
//!    of its segment: from then on recovery completes that segment's swap,
//!    before it recovery rolls it back. Oldest first, with the directory
//!    fsynced between segments, so after a crash the cleaned segments are
//!    always a prefix of the cleaned range: a tombstone or marker dropped
//!    from a cleaned segment never leaves older data behind it uncleaned.
//! 2. [`install`]: rename the `.swap` files over the old ones, indexes
//!    before the log, and fsync the directory.
//!
//! [`recover`] runs before a partition is opened: `.cleaned` files go; for
//! each base with a `.log.swap` the remaining `.swap` files are renamed
//! into place; other `.swap` files (an uncommitted segment) go.
//! [`SwapStep`] names the points where tests inject a crash.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use super::CLEANED_SUFFIX;
use crate::error::{io_err, LogError};
use crate::txn_index::TXN_INDEX_SUFFIX;
use crate::util::{
    parse_segment_name, segment_file, sync_dir, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX,
};

pub(crate) const SWAP_SUFFIX: &str = ".swap";

/// A segment's files in the order they are renamed: the log last.
const FILES: [&str; 4] = [
    INDEX_SUFFIX,
    TIME_INDEX_SUFFIX,
    TXN_INDEX_SUFFIX,
    LOG_SUFFIX,
];

/// Points of the swap where a test can make the cleaner stop as if killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SwapStep {
    /// Every `.cleaned` file written, nothing renamed.
    Cleaned,
    /// The first segment's index files are `.swap`, its log still `.cleaned`.
    FirstIndexesSwapped,
    /// The first segment committed (`.log.swap`), the others not.
    FirstCommitted,
    /// Every segment committed, nothing installed.
    Committed,
    /// The first segment's indexes installed, its log still `.swap`.
    FirstIndexesInstalled,
    /// Every file installed; the in-memory swap not done.
    Installed,
}

fn with_suffix(dir: &Path, base: i64, file: &str, extra: &str) -> PathBuf {
    let mut path = segment_file(dir, base, file).into_os_string();
    path.push(extra);
    PathBuf::from(path)
}

/// The injected crash at `step`, if the test asked for it there.
pub(crate) fn crash_point(crash: Option<SwapStep>, step: SwapStep) -> Result<(), LogError> {
    if crash == Some(step) {
        return Err(LogError::Io {
            file: PathBuf::from(format!("<crash point {step:?}>")),
            source: std::io::Error::other("injected crash"),
        });
    }
    Ok(())
}

fn rename(from: &Path, to: &Path) -> Result<(), LogError> {
    fs::rename(from, to).map_err(io_err(from))
}

/// Step 1: `.cleaned` -> `.swap`, segment by segment, oldest first.
pub(crate) fn commit(dir: &Path, bases: &[i64], crash: Option<SwapStep>) -> Result<(), LogError> {
    for (i, &base) in bases.iter().enumerate() {
        for file in FILES {
            if file == LOG_SUFFIX && i == 0 {
                crash_point(crash, SwapStep::FirstIndexesSwapped)?;
            }
            rename(
                &with_suffix(dir, base, file, CLEANED_SUFFIX),
                &with_suffix(dir, base, file, SWAP_SUFFIX),
            )?;
        }
        sync_dir(dir).map_err(io_err(dir))?;
        if i == 0 {
            crash_point(crash, SwapStep::FirstCommitted)?;
        }
    }
    crash_point(crash, SwapStep::Committed)
}

/// Step 2: `.swap` -> the segment's own names.
pub(crate) fn install(dir: &Path, bases: &[i64], crash: Option<SwapStep>) -> Result<(), LogError> {
    for (i, &base) in bases.iter().enumerate() {
        for file in FILES {
            if file == LOG_SUFFIX && i == 0 {
                crash_point(crash, SwapStep::FirstIndexesInstalled)?;
            }
            rename(
                &with_suffix(dir, base, file, SWAP_SUFFIX),
                &segment_file(dir, base, file),
            )?;
        }
    }
    sync_dir(dir).map_err(io_err(dir))?;
    crash_point(crash, SwapStep::Installed)
}

/// Removes the `.cleaned` files of `bases` (a pass that will not swap).
pub(crate) fn discard(dir: &Path, bases: &[i64]) {
    for &base in bases {
        for file in FILES {
            let path = with_suffix(dir, base, file, CLEANED_SUFFIX);
            if let Err(e) = fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(file = %path.display(), error = %e, "cannot remove a cleaned file");
                }
            }
        }
    }
}

/// Completes committed swaps and rolls back the rest; see the module docs.
pub(crate) fn recover(dir: &Path) -> Result<(), LogError> {
    let mut leftovers = Vec::new();
    let mut swaps = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(CLEANED_SUFFIX) {
            leftovers.push(entry.path());
        } else if let Some(stem) = name.strip_suffix(SWAP_SUFFIX) {
            match parse_segment_name(stem) {
                Some((base, file)) if FILES.contains(&file) => {
                    swaps.push((base, FILES.iter().position(|f| *f == file).unwrap_or(0)))
                }
                _ => leftovers.push(entry.path()),
            }
        }
    }
    if leftovers.is_empty() && swaps.is_empty() {
        return Ok(());
    }
    let log_at = FILES.len() - 1;
    let committed: BTreeSet<i64> = swaps
        .iter()
        .filter(|(_, f)| *f == log_at)
        .map(|(base, _)| *base)
        .collect();
    for path in &leftovers {
        tracing::info!(file = %path.display(), "removing the output of an interrupted cleaning");
        fs::remove_file(path).map_err(io_err(path))?;
    }
    // Indexes before logs, so that a crash here leaves the log's `.swap`.
    swaps.sort_by_key(|&(base, file)| (base, file));
    for (base, file) in swaps {
        let swap = with_suffix(dir, base, FILES[file], SWAP_SUFFIX);
        if committed.contains(&base) {
            tracing::info!(file = %swap.display(), "completing an interrupted swap of a cleaned segment");
            rename(&swap, &segment_file(dir, base, FILES[file]))?;
        } else {
            tracing::info!(file = %swap.display(), "rolling back an uncommitted swap of a cleaned segment");
            fs::remove_file(&swap).map_err(io_err(&swap))?;
        }
    }
    sync_dir(dir).map_err(io_err(dir))
}
