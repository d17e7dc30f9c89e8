//! Replacing cleaned segments on disk so that a crash at any point leaves
//! either the old segment or the cleaned one, whole, for each base offset.
//!
//! In: [`Group`]s: the base offset of a cleaned segment whose
//! `<base>.<suffix>.cleaned` files ([`super::clean`]) are complete and
//! fsynced, and the bases of the later segments it replaces too (merged
//! into it, named in its `<base>.merged.cleaned`). Out: the files under
//! their final names, the merged segments' files gone. Steps, each group
//! oldest first:
//! 1. [`commit`]: rename the index and merged files `.cleaned` -> `.swap`,
//!    then the `.log`; fsync the directory. A `<base>.log.swap` is the
//!    commit point of its group: from then on recovery completes that
//!    swap, before it recovery rolls it back. Oldest first, with the
//!    directory fsynced between groups, so after a crash the cleaned
//!    segments are always a prefix of the cleaned range: a tombstone or
//!    marker dropped from a cleaned segment never leaves older data behind
//!    it uncleaned.
//! 2. [`install`]: delete the merged segments' files, rename the `.swap`
//!    files over the old ones (indexes before the log), remove the merged
//!    list, and fsync the directory.
//!
//! [`recover`] runs before a partition is opened: `.cleaned` files go; for
//! each base with a `.log.swap` the merged segments it names are deleted
//! and the remaining `.swap` files renamed into place; other `.swap` files
//! (an uncommitted group, or the merged list of an installed one) go.
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

/// The list of the later segments a cleaned segment replaces too.
pub(crate) const MERGED_SUFFIX: &str = "merged";

/// A segment's files in the order they are renamed: the log last.
const FILES: [&str; 4] = [
    INDEX_SUFFIX,
    TIME_INDEX_SUFFIX,
    TXN_INDEX_SUFFIX,
    LOG_SUFFIX,
];
/// The files a swap renames, in order: the merged list before the log.
const SWAPPED: [&str; 5] = [
    INDEX_SUFFIX,
    TIME_INDEX_SUFFIX,
    TXN_INDEX_SUFFIX,
    MERGED_SUFFIX,
    LOG_SUFFIX,
];
/// At most this many segments merge into one (a bound on the list's size).
const MAX_MEMBERS: usize = 1 << 16;

/// One cleaned segment and the later segments it replaces too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Group {
    pub base: i64,
    pub merged: Vec<i64>,
}

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
    /// The first group's first merged segment deleted, the rest not.
    FirstMemberDeleted,
    /// The first group's indexes installed, its log still `.swap`.
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

/// Step 1: `.cleaned` -> `.swap`, group by group, oldest first.
pub(crate) fn commit(
    dir: &Path,
    groups: &[Group],
    crash: Option<SwapStep>,
) -> Result<(), LogError> {
    for (i, group) in groups.iter().enumerate() {
        for file in SWAPPED {
            if file == MERGED_SUFFIX && group.merged.is_empty() {
                continue;
            }
            if file == LOG_SUFFIX && i == 0 {
                crash_point(crash, SwapStep::FirstIndexesSwapped)?;
            }
            rename(
                &with_suffix(dir, group.base, file, CLEANED_SUFFIX),
                &with_suffix(dir, group.base, file, SWAP_SUFFIX),
            )?;
        }
        sync_dir(dir).map_err(io_err(dir))?;
        if i == 0 {
            crash_point(crash, SwapStep::FirstCommitted)?;
        }
    }
    crash_point(crash, SwapStep::Committed)
}

/// Step 2: the merged segments go, `.swap` -> the segment's own names.
pub(crate) fn install(
    dir: &Path,
    groups: &[Group],
    crash: Option<SwapStep>,
) -> Result<(), LogError> {
    for (i, group) in groups.iter().enumerate() {
        install_group(dir, group, crash.filter(|_| i == 0), false)?;
    }
    sync_dir(dir).map_err(io_err(dir))?;
    crash_point(crash, SwapStep::Installed)
}

/// `resuming`: recovery finishing an interrupted install, where files
/// already installed have no `.swap` left.
fn install_group(
    dir: &Path,
    group: &Group,
    crash: Option<SwapStep>,
    resuming: bool,
) -> Result<(), LogError> {
    for &member in &group.merged {
        for file in FILES {
            remove_if_present(&segment_file(dir, member, file))?;
        }
        crash_point(crash, SwapStep::FirstMemberDeleted)?;
    }
    for file in FILES {
        if file == LOG_SUFFIX {
            crash_point(crash, SwapStep::FirstIndexesInstalled)?;
        }
        let swap = with_suffix(dir, group.base, file, SWAP_SUFFIX);
        if resuming && !swap.exists() {
            continue;
        }
        rename(&swap, &segment_file(dir, group.base, file))?;
    }
    remove_if_present(&with_suffix(dir, group.base, MERGED_SUFFIX, SWAP_SUFFIX))
}

fn remove_if_present(path: &Path) -> Result<(), LogError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(path)(e)),
        _ => Ok(()),
    }
}

/// Writes the list of merged segments' bases (8 bytes each, big-endian).
pub(crate) fn write_members(path: &Path, members: &[i64]) -> std::io::Result<()> {
    let bytes: Vec<u8> = members.iter().flat_map(|m| m.to_be_bytes()).collect();
    fs::write(path, bytes)
}

/// Reads a list [`write_members`] wrote for the segment at `base`.
fn read_members(path: &Path, base: i64) -> Result<Vec<i64>, LogError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    if bytes.len() % 8 != 0 || bytes.len() / 8 > MAX_MEMBERS {
        return Err(LogError::corrupt(
            path,
            0,
            format!("{} bytes is no list of segments", bytes.len()),
        ));
    }
    let members: Vec<i64> = bytes
        .chunks_exact(8)
        .map(|c| i64::from_be_bytes(c.try_into().unwrap_or_default()))
        .collect();
    if members.iter().any(|&m| m <= base) {
        return Err(LogError::corrupt(
            path,
            0,
            "a merged segment at or below the cleaned one",
        ));
    }
    Ok(members)
}

/// Removes the `.cleaned` files of `bases` (a pass that will not swap).
pub(crate) fn discard(dir: &Path, bases: &[i64]) {
    for &base in bases {
        for file in SWAPPED {
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
            let swapped = parse_segment_name(stem)
                .and_then(|(base, file)| Some((base, *SWAPPED.iter().find(|f| **f == file)?)));
            match swapped {
                Some(swap) => swaps.push(swap),
                None => leftovers.push(entry.path()),
            }
        }
    }
    if leftovers.is_empty() && swaps.is_empty() {
        return Ok(());
    }
    for path in &leftovers {
        tracing::info!(file = %path.display(), "removing the output of an interrupted cleaning");
        fs::remove_file(path).map_err(io_err(path))?;
    }
    let committed: BTreeSet<i64> = swaps
        .iter()
        .filter(|(_, f)| *f == LOG_SUFFIX)
        .map(|(base, _)| *base)
        .collect();
    for &(base, file) in &swaps {
        let swap = with_suffix(dir, base, file, SWAP_SUFFIX);
        if !committed.contains(&base) {
            tracing::info!(file = %swap.display(), "rolling back an uncommitted swap of a cleaned segment");
            fs::remove_file(&swap).map_err(io_err(&swap))?;
        }
    }
    for base in committed {
        tracing::info!(base, dir = %dir.display(), "completing an interrupted swap of a cleaned segment");
        let list = with_suffix(dir, base, MERGED_SUFFIX, SWAP_SUFFIX);
        let merged = if list.exists() {
            read_members(&list, base)?
        } else {
            Vec::new()
        };
        let group = Group { base, merged };
        install_group(dir, &group, None, true)?;
    }
    sync_dir(dir).map_err(io_err(dir))
}
