//! Opening a partition directory: find the segments, trust or rebuild their
//! indexes, validate what may not have been flushed, cut a torn tail, and
//! restore the offsets.
//!
//! In: the directory and its config. Out: a [`Recovered`] log for
//! [`crate::PartitionLog`]. Rules:
//! - After a clean shutdown (flag in the state file) indexes are trusted
//!   after a sanity check, and only the active segment's batches after its
//!   last index entry are read (to find the log end).
//! - Otherwise every segment from the one holding the recovery point on is
//!   scanned batch by batch (header, CRC, increasing offsets) and its
//!   indexes rebuilt; earlier segments keep sanity-checked indexes.
//! - Invalid or partial bytes at the very end of the last segment are a
//!   torn tail: truncated with a warning. An invalid batch followed by
//!   valid data, or in a sealed segment, is [`LogError::Corrupt`].
//! - The clean-shutdown flag is cleared before the log is used, so a later
//!   crash is detected.

use std::fs::{self, File, OpenOptions};
use std::path::Path;
use std::sync::Arc;

use crate::batch::{self, BatchHeader, HEADER_LEN};
use crate::config::LogConfig;
use crate::error::{io_err, LogError};
use crate::index::{OffsetIndex, TimeIndex};
use crate::leader_epoch::LeaderEpochCache;
use crate::segment::{index_batch, AppendedBatch, Segment, SegmentIndexes};
use crate::state_file::{PartitionState, TMP_SUFFIX};
use crate::util::{
    parse_segment_name, read_at_most, segment_file, sync_dir, INDEX_SUFFIX, LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
};

/// Bytes read at a time when scanning a segment.
const SCAN_CHUNK: u64 = 1 << 20;

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
        let opened = open_segment(dir, base, next_base, trusted, config.index_interval_bytes)?;
        for (epoch, start) in opened.epochs {
            if epochs.latest_epoch().is_none_or(|latest| epoch > latest) {
                epochs_changed |= epochs.assign(epoch, start);
            }
        }
        if opened.changed || !clean && !trusted {
            to_sync.push(opened.segment.clone());
        }
        log_end = opened.next_offset;
        segments.push(opened.segment);
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
            Some((base, INDEX_SUFFIX | TIME_INDEX_SUFFIX)) => indexes.push((base, entry.path())),
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

struct OpenedSegment {
    segment: Arc<Segment>,
    /// The offset after the segment's last batch (the next segment's base for a trusted sealed one).
    next_offset: i64,
    /// Epoch starts seen in scanned batches.
    epochs: Vec<(i32, i64)>,
    /// The file was cut or its indexes rebuilt.
    changed: bool,
}

fn open_segment(
    dir: &Path,
    base: i64,
    next_base: Option<i64>,
    trusted: bool,
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
        let min_offset = scan.next_offset.unwrap_or(base);
        let later =
            find_valid_batch_after(&file, position, len, min_offset).map_err(io_err(&path))?;
        match (next_base, later) {
            (None, None) => {
                tracing::warn!(
                    file = %path.display(), position, dropped = len - position, reason,
                    "truncating a torn tail"
                );
                file.set_len(position).map_err(io_err(&path))?;
                end = position;
            }
            (None, Some(valid)) => {
                return Err(LogError::corrupt(
                    &path,
                    position,
                    format!("{reason}; a valid batch follows at byte {valid}"),
                ));
            }
            (Some(_), _) => {
                return Err(LogError::corrupt(
                    &path,
                    position,
                    format!("{reason} (in a sealed segment)"),
                ));
            }
        }
    }
    let next_offset = scan.next_offset.unwrap_or(base);
    if next_base.is_some_and(|next| next_offset > next) {
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
    if next_base.is_some() {
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
        changed: rebuilt || end != len,
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

/// The outcome of reading a segment's batches.
struct Scan {
    indexes: SegmentIndexes,
    /// The offset after the last valid batch, if any was read.
    next_offset: Option<i64>,
    /// `(epoch, base offset)` where the leader epoch changes.
    epochs: Vec<(i32, i64)>,
    /// The first invalid batch: position and why.
    invalid: Option<(u64, String)>,
}

/// Validates every batch from `from` to `len` (header, length, CRC,
/// increasing offsets) and indexes it into `indexes` as appends do.
fn scan_segment(
    file: &File,
    base: i64,
    from: u64,
    len: u64,
    interval: u32,
    mut indexes: SegmentIndexes,
) -> std::io::Result<Scan> {
    let mut position = from;
    let mut min_offset = base;
    let mut next_offset = None;
    let mut bytes_since_index = 0;
    let mut epochs: Vec<(i32, i64)> = Vec::new();
    let mut buf = Vec::new();
    let mut buf_position = from;
    let mut invalid = None;
    while position < len {
        let remaining = len - position;
        if remaining < HEADER_LEN as u64 {
            invalid = Some((
                position,
                format!("partial batch header ({remaining} bytes)"),
            ));
            break;
        }
        if position + HEADER_LEN as u64 > buf_position + buf.len() as u64 {
            buf = read_at_most(file, position, SCAN_CHUNK.min(remaining) as usize)?;
            buf_position = position;
        }
        let header = match BatchHeader::parse(&buf[(position - buf_position) as usize..]) {
            Ok(header) => header,
            Err(e) => {
                invalid = Some((position, e.to_string()));
                break;
            }
        };
        let size = header.size() as u64;
        if size > remaining {
            invalid = Some((
                position,
                format!(
                    "batch of {size} bytes runs past the end of the file ({remaining} bytes left)"
                ),
            ));
            break;
        }
        if position + size > buf_position + buf.len() as u64 {
            buf = read_at_most(file, position, SCAN_CHUNK.max(size).min(remaining) as usize)?;
            buf_position = position;
        }
        let at = (position - buf_position) as usize;
        let Some(bytes) = buf.get(at..at + size as usize) else {
            invalid = Some((position, "the file ended while it was read".to_string()));
            break;
        };
        let problem = match batch::validate_stored(bytes) {
            Err(e) => Some(e.to_string()),
            Ok(h) if h.base_offset < min_offset => Some(format!(
                "base offset {} is below {min_offset}",
                h.base_offset
            )),
            Ok(h) if h.last_offset() - base > i64::from(i32::MAX) => Some(format!(
                "offset {} is too far from the segment base",
                h.last_offset()
            )),
            Ok(_) => None,
        };
        if let Some(reason) = problem {
            invalid = Some((position, reason));
            break;
        }
        let appended = AppendedBatch {
            last_offset: header.last_offset(),
            max_timestamp: header.max_timestamp,
            size,
        };
        index_batch(
            &mut indexes,
            base,
            &appended,
            position,
            &mut bytes_since_index,
            interval,
        );
        let epoch = header.partition_leader_epoch;
        if epoch >= 0 && epochs.last().is_none_or(|&(last, _)| last != epoch) {
            epochs.push((epoch, header.base_offset));
        }
        min_offset = header.next_offset();
        next_offset = Some(min_offset);
        position += size;
    }
    Ok(Scan {
        indexes,
        next_offset,
        epochs,
        invalid,
    })
}

/// The position of a valid batch (magic 2, CRC correct, base offset at
/// least `min_offset`) starting after `from`, if any: what tells a corrupt
/// middle from a torn tail.
fn find_valid_batch_after(
    file: &File,
    from: u64,
    len: u64,
    min_offset: i64,
) -> std::io::Result<Option<u64>> {
    let mut start = from + 1;
    while start + HEADER_LEN as u64 <= len {
        let window = read_at_most(
            file,
            start,
            (SCAN_CHUNK + HEADER_LEN as u64).min(len - start) as usize,
        )?;
        let Some(last) = window.len().checked_sub(HEADER_LEN) else {
            break;
        };
        for i in 0..=last {
            if window[i + 16] != 2 {
                continue;
            }
            let Ok(header) = BatchHeader::parse(&window[i..]) else {
                continue;
            };
            let position = start + i as u64;
            let size = header.size();
            if header.base_offset < min_offset || position + size as u64 > len {
                continue;
            }
            let valid = match window.get(i..i + size) {
                Some(bytes) => batch::validate_stored(bytes).is_ok(),
                None => batch::validate_stored(&read_at_most(file, position, size)?).is_ok(),
            };
            if valid {
                return Ok(Some(position));
            }
        }
        start += last as u64 + 1;
    }
    Ok(None)
}
