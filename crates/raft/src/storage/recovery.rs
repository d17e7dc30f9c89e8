//! Opening a storage directory: rebuild the in-memory state from the files.
//!
//! 1. Remove temporary files left by a crash mid-write.
//! 2. Load `quorum-state` (term, vote, commit, voters).
//! 3. Load the newest checkpoint; its name gives the snapshot index `S` and term.
//! 4. Delete segments that end before `S` (compaction a crash cut short),
//!    then scan the rest in order. Past the recovery point (in the last
//!    segment, after the persisted commit index or `S`, whichever is
//!    higher) the first invalid frame ends the log: it and everything after
//!    it is cut off with a warning naming the file, position and bytes
//!    dropped. At or below the point any damage is
//!    [`StorageError::Corrupt`] (see the crate-level storage docs for why
//!    that point is safe).
//! 5. A log that ends before `S`, or disagrees with the snapshot's term at
//!    `S`, is what remains of a log a leader's snapshot replaced: deleted.
//!    Since segments are deleted newest first (see `segment_log`), a crash
//!    inside a snapshot install leaves a prefix of the old log, which is
//!    always one of these two (or, if it agrees with the snapshot at `S`, a
//!    valid log). The segment holding `S` is scanned for that check, then
//!    deleted if it holds nothing after `S`.
//! 6. Clamp the commit index to `[S, last index]` and write `quorum-state`
//!    when the directory is new.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};

use kraft_proto::raft::QuorumState;
use raft::eraftpb::{ConfState, HardState};

use super::checkpoint;
use super::fsutil::{io_err, remove_file, sync_dir, TMP_SUFFIX};
use super::log_state::{LogState, SnapshotInfo};
use super::quorum_state;
use super::segment::{self, SEALED};
use super::segment_log::{SegmentFile, SegmentLog};
use super::{StorageError, StorageOptions};

/// Everything [`RaftStorage::open`](super::RaftStorage::open) needs.
pub(crate) struct Recovered {
    pub state: LogState,
    pub segments: SegmentLog,
    pub persisted: QuorumState,
}

pub(crate) fn recover(
    dir: &Path,
    voters: &[u64],
    opts: &StorageOptions,
) -> Result<Recovered, StorageError> {
    if !dir.is_dir() {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    let mut segment_files = list_segments_and_clean(dir)?;

    let stored = quorum_state::read(dir)?;
    let snapshot = match checkpoint::list(dir)?.last() {
        Some(file) => Some(SnapshotInfo {
            index: file.index,
            term: file.term,
            data: checkpoint::read(file)?,
        }),
        None => None,
    };
    let (snap_index, snap_term) = snapshot.as_ref().map_or((0, 0), |s| (s.index, s.term));

    // Segments wholly at or below the snapshot are compaction leftovers, but
    // the one holding the snapshot's index is scanned too: its term there
    // tells a log that agrees with the snapshot from one it replaced.
    let start = match segment_files
        .iter()
        .rposition(|(base, _)| *base <= snap_index.max(1))
        .or_else(|| {
            segment_files
                .iter()
                .rposition(|(base, _)| *base <= snap_index + 1)
        }) {
        Some(start) => start,
        None => match segment_files.first() {
            Some((base, path)) => {
                return Err(StorageError::Corrupt {
                    file: path.clone(),
                    offset: 0,
                    reason: format!(
                        "log starts at index {base} but the newest snapshot ends at {snap_index}: \
                         entries are missing"
                    ),
                })
            }
            None => 0,
        },
    };
    let obsolete: Vec<_> = segment_files.drain(..start).collect();
    for (_, path) in &obsolete {
        tracing::warn!(file = %path.display(), snapshot = snap_index, "deleting a segment the snapshot covers");
        remove_file(path)?;
    }

    // Everything up to the persisted commit index (or the snapshot) was
    // fsynced before it was recorded: the recovery point of the last segment.
    let synced_through = stored.as_ref().map_or(0, |qs| qs.commit).max(snap_index);
    let mut scan = scan_segments(&segment_files, snap_index, synced_through)?;
    let stale_term = scan.term_at_snapshot.is_some_and(|t| t != snap_term);
    if !scan.segments.is_empty() && (scan.next_index <= snap_index || stale_term) {
        tracing::warn!(
            snapshot_index = snap_index,
            snapshot_term = snap_term,
            log_end = scan.next_index - 1,
            "the log predates the snapshot that replaced it; deleting it"
        );
        for seg in scan.segments.drain(..) {
            remove_file(&seg.path)?;
        }
        scan.entries.clear();
        scan.positions.clear();
    }
    // The segment scanned only for its term at the snapshot's index.
    while scan.segments.len() > 1 && scan.segments[1].base <= snap_index + 1 {
        let seg = scan.segments.remove(0);
        tracing::warn!(file = %seg.path.display(), snapshot = snap_index, "deleting a segment the snapshot covers");
        remove_file(&seg.path)?;
        scan.dir_changed = true;
    }
    if !obsolete.is_empty() || scan.dir_changed {
        sync_dir(dir)?;
    }

    let mut state = LogState {
        entries: scan.entries,
        snapshot,
        ..LogState::default()
    };
    let last_index = state.last_index();
    state.conf_state = conf_state(stored.as_ref(), voters);
    state.hard_state = hard_state(stored.as_ref(), snap_index, snap_term, last_index);
    let persisted = match stored {
        Some(qs) => qs,
        None => {
            let qs = super::to_quorum_state(&state.hard_state, &state.conf_state);
            quorum_state::write(dir, &qs)?;
            qs
        }
    };
    let segments = SegmentLog::new(
        dir,
        opts.segment_bytes,
        scan.segments,
        snap_index + 1,
        scan.positions,
    )?;
    if let Some(s) = &state.snapshot {
        if let Err(e) = checkpoint::retire_old(dir, (s.index, s.term)) {
            tracing::warn!(error = %e, "could not delete old checkpoints");
        }
    }
    Ok(Recovered {
        state,
        segments,
        persisted,
    })
}

/// Segment files sorted by base index; removes `*.tmp` debris on the way.
fn list_segments_and_clean(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StorageError> {
    let mut segments = Vec::new();
    let mut removed_tmp = false;
    for dirent in fs::read_dir(dir).map_err(io_err(dir))? {
        let dirent = dirent.map_err(io_err(dir))?;
        let name = dirent.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(TMP_SUFFIX) {
            tracing::warn!(file = %dirent.path().display(), "removing a file left by an interrupted write");
            remove_file(&dirent.path())?;
            removed_tmp = true;
        } else if let Some(base) = segment::parse_file_name(name) {
            segments.push((base, dirent.path()));
        }
    }
    if removed_tmp {
        sync_dir(dir)?;
    }
    segments.sort();
    Ok(segments)
}

struct ScannedLog {
    segments: Vec<SegmentFile>,
    /// Entries after the snapshot.
    entries: Vec<raft::eraftpb::Entry>,
    /// Frame offset of each of `entries`.
    positions: VecDeque<u64>,
    /// One past the last index found (the first segment's base if none).
    next_index: u64,
    /// The term of the log's entry at the snapshot index, if it has one.
    term_at_snapshot: Option<u64>,
    /// A file was truncated or deleted.
    dir_changed: bool,
}

/// Scans `files` in order. Sealed segments must be intact; the last one may
/// end in an unsynced tail after the entry at `synced_through`, cut here.
fn scan_segments(
    files: &[(u64, PathBuf)],
    snap_index: u64,
    synced_through: u64,
) -> Result<ScannedLog, StorageError> {
    let mut log = ScannedLog {
        segments: Vec::new(),
        entries: Vec::new(),
        positions: VecDeque::new(),
        next_index: files.first().map_or(snap_index + 1, |(base, _)| *base),
        term_at_snapshot: None,
        dir_changed: false,
    };
    for (k, (base, path)) in files.iter().enumerate() {
        let is_last = k + 1 == files.len();
        if *base != log.next_index {
            return Err(StorageError::Corrupt {
                file: path.clone(),
                offset: 0,
                reason: format!(
                    "segment starts at index {base} but the previous one ends at {}",
                    log.next_index - 1
                ),
            });
        }
        let data = fs::read(path).map_err(io_err(path))?;
        let recovery_point = if is_last { synced_through } else { SEALED };
        let scanned = segment::scan(path, &data, *base, recovery_point)?;
        if let Some(reason) = &scanned.torn {
            tracing::warn!(
                file = %path.display(),
                position = scanned.valid_len,
                dropped = data.len() as u64 - scanned.valid_len,
                synced_through,
                reason = %reason,
                "truncating the log at an invalid frame past its recovery point"
            );
            log.dir_changed = true;
            if scanned.valid_len == 0 {
                remove_file(path)?;
                continue;
            }
            let file = fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io_err(path))?;
            file.set_len(scanned.valid_len)
                .and_then(|()| file.sync_all())
                .map_err(io_err(path))?;
        }
        for (entry, offset) in scanned.entries {
            log.next_index = entry.index + 1;
            if entry.index == snap_index {
                log.term_at_snapshot = Some(entry.term);
            }
            if entry.index > snap_index {
                log.entries.push(entry);
                log.positions.push_back(offset);
            }
        }
        log.segments.push(SegmentFile {
            base: *base,
            path: path.clone(),
            len: scanned.valid_len,
        });
    }
    Ok(log)
}

/// The stored conf state, or `voters` for a new directory.
fn conf_state(stored: Option<&QuorumState>, voters: &[u64]) -> ConfState {
    let mut cs = ConfState::default();
    match stored {
        Some(qs) if !qs.voters.is_empty() => {
            let (mut a, mut b) = (qs.voters.clone(), voters.to_vec());
            a.sort_unstable();
            b.sort_unstable();
            if !voters.is_empty() && a != b {
                tracing::warn!(stored = ?a, configured = ?b, "configured voters differ from the stored ones; keeping the stored");
            }
            cs.voters = qs.voters.clone();
            cs.learners = qs.learners.clone();
        }
        _ => cs.voters = voters.to_vec(),
    }
    cs
}

/// The stored hard state with the commit index clamped to what is held, and
/// the term raised to the snapshot's (with the vote, which belonged to an
/// older term, cleared).
fn hard_state(
    stored: Option<&QuorumState>,
    snap_index: u64,
    snap_term: u64,
    last: u64,
) -> HardState {
    let mut hs = HardState::default();
    if let Some(qs) = stored {
        hs.term = qs.term;
        hs.vote = qs.vote;
        hs.commit = qs.commit;
    }
    if hs.term < snap_term {
        hs.term = snap_term;
        hs.vote = 0;
    }
    hs.commit = hs.commit.clamp(snap_index, last.max(snap_index));
    hs
}
