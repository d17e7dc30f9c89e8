//! Opening a partition directory: find the segments, trust or rebuild their
//! indexes, validate what may not have been flushed, cut an invalid tail
//! past the recovery point, and restore the offsets.
//!
//! In: the directory and its config. Out: a [`Recovered`] log for
//! [`crate::PartitionLog`]. Rules:
//! - After a clean shutdown (flag in the state file) indexes are trusted
//!   after a sanity check, and only the active segment's batches after its
//!   last index entry are read (to find the log end).
//! - Otherwise every segment from the one holding the recovery point on is
//!   scanned batch by batch (header, CRC, increasing offsets) and its
//!   indexes rebuilt; earlier segments keep sanity-checked indexes.
//! - Past the recovery point (everything below it was fsynced), the first
//!   invalid batch (partial, bad header or CRC, zeros, offsets out of
//!   sequence) ends the log, as in Kafka: a power loss can leave unflushed
//!   pages unwritten or garbage while later ones reached the disk, so valid
//!   batches after it prove nothing. The segment is truncated there and the
//!   segments after it removed, each with a warning naming the file,
//!   position and bytes dropped.
//! - An invalid batch that should start below the recovery point is
//!   [`LogError::Corrupt`] naming the file and byte position: the partition
//!   goes offline, nothing is skipped or cut.
//! - The clean-shutdown flag is cleared before the log is used, so a later
//!   crash is detected.

use std::fs::{self, OpenOptions};
use std::path::Path;
use std::sync::Arc;

use crate::config::LogConfig;
use crate::error::{io_err, LogError};
use crate::index::{OffsetIndex, TimeIndex};
use crate::leader_epoch::LeaderEpochCache;
use crate::segment::{Segment, SegmentIndexes};
use crate::state_file::{PartitionState, TMP_SUFFIX};
use crate::txn_index::TXN_INDEX_SUFFIX;
use scan::scan_segment;

mod scan;

use crate::util::{
    parse_segment_name, segment_file, sync_dir, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX,
};

/// A recovered partition log, ready to use.
pub(crate) struct Recovered {
    pub segments: Vec<Arc<Segment>>,
    pub log_start: i64,
    pub log_end: i64,
    pub high_watermark: i64,
    pub recovery_point: i64,
    pub epochs: LeaderEpochCache,
}

pub(crate) fn recover(dir: &Path, config: &LogConfig) -> Result<Recovered, LogError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    // An interrupted cleaning's swap, completed or rolled back first.
    crate::cleaner::recover_swaps(dir)?;
    let bases = list_segments(dir)?;
    let state = PartitionState::read(dir)?;
    let clean = state.is_some_and(|s| s.clean_shutdown);
    let recovery_point = state.map_or(i64::MIN, |s| s.recovery_point);
    let mut epochs = LeaderEpochCache::load(dir)?;
    let mut epochs_changed = false;

    let mut segments = Vec::with_capacity(bases.len().max(1));
    let mut to_sync = Vec::new();
    let mut log_end = state.map_or(0, |s| s.log_start_offset.max(0));
    for (i, &base) in bases.iter().enumerate() {
        let next_base = bases.get(i + 1).copied();
        let trusted = clean || next_base.is_some_and(|next| next <= recovery_point);
        let opened = open_segment(
            dir,
            base,
            next_base,
            trusted,
            recovery_point,
            config.index_interval_bytes,
        )?;
        for (epoch, start) in opened.epochs {
            if epochs.latest_epoch().is_none_or(|latest| epoch > latest) {
                epochs_changed |= epochs.assign(epoch, start);
            }
        }
        if opened.changed || (!clean && !trusted) {
            to_sync.push(opened.segment.clone());
        }
        if opened.scanned {
            // Not known fsynced: its aborted transactions are read again
            // from its markers (`producer_state::load`).
            opened.segment.mark_txn_index_stale();
        }
        log_end = opened.next_offset;
        segments.push(opened.segment);
        if opened.truncated && next_base.is_some() {
            // The log ended in this segment: later ones are past its end.
            for &later in &bases[i + 1..] {
                let path = segment_file(dir, later, LOG_SUFFIX);
                let dropped = fs::metadata(&path).map_err(io_err(&path))?.len();
                tracing::warn!(file = %path.display(), dropped, "removing a segment after the end of the log");
                for suffix in [
                    LOG_SUFFIX,
                    INDEX_SUFFIX,
                    TIME_INDEX_SUFFIX,
                    TXN_INDEX_SUFFIX,
                ] {
                    remove_if_present(&segment_file(dir, later, suffix))?;
                }
            }
            break;
        }
    }
    if segments.is_empty() {
        let segment = Arc::new(Segment::create(dir, log_end)?);
        to_sync.push(segment.clone());
        segments.push(segment);
    }

    let first_base = segments[0].base_offset();
    let log_start = state
        .map_or(first_base, |s| s.log_start_offset.max(first_base))
        .min(log_end);
    epochs_changed |= epochs.truncate_from_end(log_end);
    epochs_changed |= epochs.truncate_from_start(log_start);
    if epochs_changed {
        epochs.persist()?;
    }
    for segment in &to_sync {
        segment.persist_indexes()?;
        segment.sync()?;
    }
    if !to_sync.is_empty() {
        sync_dir(dir).map_err(io_err(dir))?;
    }
    let high_watermark = state
        .map_or(log_start, |s| s.high_watermark)
        .clamp(log_start, log_end);
    // Everything is now either trusted (flushed before) or just fsynced.
    let recovered = Recovered {
        segments,
        log_start,
        log_end,
        high_watermark,
        recovery_point: log_end,
        epochs,
    };
    PartitionState {
        high_watermark,
        log_start_offset: log_start,
        recovery_point: log_end,
        clean_shutdown: false,
    }
    .write(dir)?;
    Ok(recovered)
}

/// The base offsets of the `.log` files in `dir`, sorted. Removes leftovers
/// of interrupted atomic writes and index files without a log.
fn list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut logs = Vec::new();
    let mut indexes = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(TMP_SUFFIX) {
            tracing::info!(file = %entry.path().display(), "removing an interrupted write");
            fs::remove_file(entry.path()).map_err(io_err(&entry.path()))?;
            continue;
        }
        match parse_segment_name(name) {
            Some((base, LOG_SUFFIX)) => logs.push(base),
            Some((base, INDEX_SUFFIX | TIME_INDEX_SUFFIX | TXN_INDEX_SUFFIX)) => {
                indexes.push((base, entry.path()))
            }
            _ => {}
        }
    }
    logs.sort_unstable();
    for (base, path) in indexes {
        if logs.binary_search(&base).is_err() {
            tracing::warn!(file = %path.display(), "removing an index without its segment");
            fs::remove_file(&path).map_err(io_err(&path))?;
        }
    }
    Ok(logs)
}

fn remove_if_present(path: &Path) -> Result<(), LogError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(path)(e)),
        _ => Ok(()),
    }
}

struct OpenedSegment {
    segment: Arc<Segment>,
    /// The offset after the segment's last batch (the next segment's base for a trusted sealed one).
    next_offset: i64,
    /// Epoch starts seen in scanned batches.
    epochs: Vec<(i32, i64)>,
    /// The file was cut or its indexes rebuilt.
    changed: bool,
    /// An invalid tail (past the recovery point) was cut off.
    truncated: bool,
    /// Batches were read from the file past the recovery point, or its
    /// indexes rebuilt: what it holds was not known fsynced.
    scanned: bool,
}

fn open_segment(
    dir: &Path,
    base: i64,
    next_base: Option<i64>,
    trusted: bool,
    recovery_point: i64,
    interval: u32,
) -> Result<OpenedSegment, LogError> {
    let path = segment_file(dir, base, LOG_SUFFIX);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    let len = file.metadata().map_err(io_err(&path))?.len();
    if len > u64::from(u32::MAX) {
        return Err(LogError::corrupt(
            &path,
            u64::from(u32::MAX),
            "a segment cannot exceed 4 GiB",
        ));
    }
    let loaded = if trusted {
        load_indexes(dir, base, len, next_base)
    } else {
        None
    };
    let (from, indexes) = match (loaded, next_base) {
        (Some(indexes), Some(next)) => {
            let segment = Arc::new(Segment::with_file(dir, base, file, len, indexes));
            return Ok(OpenedSegment {
                segment,
                next_offset: next,
                epochs: Vec::new(),
                changed: false,
                truncated: false,
                scanned: false,
            });
        }
        // The active segment: read the batches after its last index entry.
        (Some(indexes), None) => (
            indexes.offsets.last().map_or(0, |e| u64::from(e.position)),
            indexes,
        ),
        (None, _) => (0, SegmentIndexes::empty()),
    };
    let rebuilt = from == 0 && len > 0;
    let mut scan =
        scan_segment(&file, base, from, len, interval, indexes).map_err(io_err(&path))?;
    let mut end = len;
    if let Some((position, reason)) = scan.invalid.take() {
        // The offset the invalid batch should start at.
        let offset = scan.next_offset.unwrap_or(base);
        if offset < recovery_point {
            return Err(LogError::corrupt(
                &path,
                position,
                format!("{reason} (offset {offset}, below the recovery point {recovery_point})"),
            ));
        }
        tracing::warn!(
            file = %path.display(), position, dropped = len - position, offset, recovery_point, reason,
            "truncating the log at an invalid batch past the recovery point"
        );
        file.set_len(position).map_err(io_err(&path))?;
        end = position;
    }
    let truncated = end != len;
    let next_offset = scan.next_offset.unwrap_or(base);
    if !truncated && next_base.is_some_and(|next| next_offset > next) {
        return Err(LogError::corrupt(
            &path,
            end,
            format!(
                "the segment holds offsets up to {} but the next one starts at {}",
                next_offset - 1,
                next_base.unwrap_or(0)
            ),
        ));
    }
    if next_base.is_some() && !truncated {
        // A sealed segment gets the final time-index entry it got at roll.
        let (ts, at) = (
            scan.indexes.max_timestamp,
            scan.indexes.max_timestamp_offset,
        );
        scan.indexes
            .times
            .maybe_append(ts, u32::try_from(at - base).unwrap_or(0));
    }
    let segment = Arc::new(Segment::with_file(dir, base, file, end, scan.indexes));
    segment.seek_to_end()?;
    Ok(OpenedSegment {
        segment,
        next_offset,
        epochs: scan.epochs,
        changed: rebuilt || truncated,
        truncated,
        scanned: !trusted,
    })
}

/// Both index files of a segment, if they pass the sanity check.
fn load_indexes(dir: &Path, base: i64, len: u64, next_base: Option<i64>) -> Option<SegmentIndexes> {
    let max_relative = next_base.map(|next| u32::try_from(next - 1 - base).unwrap_or(u32::MAX));
    let index_path = segment_file(dir, base, INDEX_SUFFIX);
    let time_path = segment_file(dir, base, TIME_INDEX_SUFFIX);
    let loaded = OffsetIndex::load(&index_path, len, max_relative)
        .map_err(|reason| (index_path, reason))
        .and_then(|offsets| {
            TimeIndex::load(&time_path, max_relative)
                .map(|times| (offsets, times))
                .map_err(|reason| (time_path, reason))
        });
    match loaded {
        Ok((offsets, times)) => {
            let (max_timestamp, max_timestamp_offset) = times.last().map_or((-1, -1), |e| {
                (e.timestamp, base + i64::from(e.relative_offset))
            });
            Some(SegmentIndexes {
                offsets,
                times,
                max_timestamp,
                max_timestamp_offset,
            })
        }
        Err((file, reason)) => {
            tracing::warn!(file = %file.display(), reason, "index fails its sanity check; rebuilding it");
            None
        }
    }
}
