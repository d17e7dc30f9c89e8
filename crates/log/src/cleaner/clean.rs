//! The heavy part of a cleaning pass, done without the log's writer lock:
//! mapping the dirty section's keys, then rewriting each group of
//! cleanable segments into one `<base>.log.cleaned` (and its indexes)
//! beside them.
//!
//! In: a [`Pass`], a snapshot of the log taken under the lock (sealed
//! segments only; the active one is never touched), and the segments to
//! read. Out: a full [`OffsetMap`] and where mapping stopped
//! ([`Pass::build_map`]); per group a [`Cleaned`]: the fsynced new files
//! and the in-memory indexes the swap installs ([`Pass::rewrite`]).
//! Every batch read is checked (header, CRC, offsets in order, size under
//! the cap); a bad one is [`LogError::Corrupt`] naming the file and
//! position.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use super::offset_map::OffsetMap;
use super::records::{self, delete_horizon, RawRecord};
use super::txn::TxnTracker;
use super::CLEANED_SUFFIX;
use crate::batch::{self, BatchHeader, TxnMarker, HEADER_LEN};
use crate::error::{io_err, BatchError, LogError};
use crate::segment::{index_batch, AppendedBatch, Segment, SegmentIndexes};
use crate::txn_index::{self, AbortedTxn};
use crate::util::{segment_file, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};

/// What one pass knows, fixed when it starts.
pub(crate) struct Pass<'a> {
    pub dir: &'a Path,
    pub now_ms: i64,
    pub delete_retention_ms: i64,
    /// Cap on one batch's bytes, stored or decompressed.
    pub limit: u64,
    pub index_interval: u32,
    /// Each producer's last data batch (its last offset): kept as an empty
    /// batch when all its records go, so its sequence state survives.
    pub last_of_producer: HashMap<i64, i64>,
    /// The aborted transactions overlapping the cleaned range.
    pub aborted: Vec<AbortedTxn>,
    /// Called with the bytes read or written, for I/O throttling.
    pub throttle: &'a mut dyn FnMut(u64),
}

/// Consecutive segments rewritten into one, in `.cleaned` files under the
/// first one's base offset, fsynced, not yet swapped in.
pub(crate) struct Cleaned {
    /// The segments it replaces, oldest first.
    pub originals: Vec<Arc<Segment>>,
    pub file: File,
    pub len: u64,
    pub indexes: SegmentIndexes,
}

impl Cleaned {
    /// Its base offset: the first original's.
    pub fn base(&self) -> i64 {
        self.originals[0].base_offset()
    }
}

/// What happens to one batch.
enum Verdict {
    Keep,
    Drop,
    Replace(Vec<u8>),
}

/// One stored batch, read whole and checked.
fn batch_at(
    segment: &Segment,
    position: u64,
    header: &BatchHeader,
    limit: u64,
) -> Result<Vec<u8>, LogError> {
    let path = segment.log_path();
    if header.size() as u64 > limit {
        return Err(LogError::corrupt(
            path,
            position,
            format!(
                "a batch of {} bytes is over the cap of {limit}",
                header.size()
            ),
        ));
    }
    let bytes = segment.read_batch(position, header)?;
    batch::validate_stored(&bytes).map_err(|e| LogError::corrupt(path, position, e.to_string()))?;
    Ok(bytes.to_vec())
}

fn corrupt_at(segment: &Segment, position: u64) -> impl Fn(BatchError) -> LogError + '_ {
    move |e| LogError::corrupt(segment.log_path(), position, e.to_string())
}

impl Pass<'_> {
    /// Maps the keys of the batches in `[from, until)` of `segments` to
    /// their latest offsets, skipping control batches and aborted data,
    /// until the map is full. Returns where mapping stopped (a batch
    /// boundary, `until` if it got there).
    pub fn build_map(
        &mut self,
        segments: &[Arc<Segment>],
        from: i64,
        until: i64,
        map: &mut OffsetMap,
    ) -> Result<i64, LogError> {
        let mut txns = TxnTracker::new(self.aborted.clone());
        for segment in segments {
            let end = segment.size();
            let mut scan = segment.headers(0, end);
            while let Some((position, header)) = scan.next_header()? {
                if header.base_offset >= until {
                    return Ok(until);
                }
                if header.last_offset() < from {
                    // Still fed to the tracker: a transaction may span `from`.
                    self.track(&mut txns, segment, position, &header)?;
                    continue;
                }
                // Control batches and aborted data stay out of the map.
                if self.track(&mut txns, segment, position, &header)? {
                    continue;
                }
                // Checked (CRC) before its record count is believed.
                let bytes = batch_at(segment, position, &header, self.limit)?;
                if map.len() as u64 + u64::try_from(header.records_count).unwrap_or(0)
                    > map.capacity() as u64
                {
                    if map.len() == 0 {
                        return Err(LogError::Batch(BatchError::invalid(format!(
                            "log.cleaner.dedupe.buffer.size holds {} keys, too few for a batch of {} records",
                            map.capacity(),
                            header.records_count
                        ))));
                    }
                    return Ok(header.base_offset);
                }
                (self.throttle)(bytes.len() as u64);
                let (payload, records) = records::split(&header, &bytes, self.limit)
                    .map_err(corrupt_at(segment, position))?;
                for r in &records {
                    if let Some(key) = &r.key {
                        map.put(&payload[key.clone()], r.offset);
                    }
                }
            }
        }
        Ok(until)
    }

    /// Feeds a batch to the transaction tracker; `true` if the map must
    /// skip it (a control batch, or data of an aborted transaction).
    fn track(
        &self,
        txns: &mut TxnTracker,
        segment: &Segment,
        position: u64,
        header: &BatchHeader,
    ) -> Result<bool, LogError> {
        if header.is_control() {
            let marker = crate::producer_state::stored_marker(segment, position, header)?;
            txns.on_marker(header, marker.map(|m| m.marker));
            return Ok(true);
        }
        Ok(txns.on_data(header))
    }

    /// Rewrites `group` (consecutive segments) into one segment of
    /// `.cleaned` files at the first one's base: the batches below `end`
    /// filtered by `map`, the rest copied. `txns` runs across the segments
    /// of the pass in order. A group of several also gets a
    /// `.merged.cleaned` file naming the other members, which the swap
    /// deletes.
    pub fn rewrite(
        &mut self,
        group: &[Arc<Segment>],
        end: i64,
        map: &OffsetMap,
        txns: &mut TxnTracker,
    ) -> Result<Cleaned, LogError> {
        let base = group[0].base_offset();
        let cleaned = |suffix: &str| {
            let mut path = segment_file(self.dir, base, suffix).into_os_string();
            path.push(CLEANED_SUFFIX);
            std::path::PathBuf::from(path)
        };
        let log_path = cleaned(LOG_SUFFIX);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .map_err(io_err(&log_path))?;
        let mut out = BufWriter::with_capacity(64 * 1024, &file);
        let mut indexes = SegmentIndexes::empty();
        let mut bytes_since_index = 0;
        let mut len = 0u64;
        let mut kept_markers = HashSet::new();
        // Offsets sit outside the CRC: a damaged one must not be copied.
        let mut next_offset = base;
        for segment in group {
            let mut scan = segment.headers(0, segment.size());
            while let Some((position, header)) = scan.next_header()? {
                if header.base_offset < next_offset || header.last_offset_delta < 0 {
                    return Err(LogError::corrupt(
                        segment.log_path(),
                        position,
                        format!(
                            "batch at offset {} does not follow offset {}",
                            header.base_offset,
                            next_offset - 1
                        ),
                    ));
                }
                next_offset = header.next_offset();
                let bytes = batch_at(segment, position, &header, self.limit)?;
                (self.throttle)(bytes.len() as u64);
                let verdict = if header.base_offset >= end {
                    Verdict::Keep
                } else {
                    self.judge(&header, &bytes, map, txns)
                        .map_err(corrupt_at(segment, position))?
                };
                let written = match &verdict {
                    Verdict::Drop => continue,
                    Verdict::Keep => &bytes[..],
                    Verdict::Replace(new) => &new[..],
                };
                let new_header =
                    BatchHeader::parse(written).map_err(corrupt_at(segment, position))?;
                if header.is_control() {
                    kept_markers.insert(header.last_offset());
                }
                out.write_all(written).map_err(io_err(&log_path))?;
                let appended = AppendedBatch {
                    last_offset: new_header.last_offset(),
                    max_timestamp: new_header.max_timestamp,
                    size: written.len() as u64,
                };
                index_batch(
                    &mut indexes,
                    base,
                    &appended,
                    len,
                    &mut bytes_since_index,
                    self.index_interval,
                );
                len += appended.size;
            }
        }
        out.flush().map_err(io_err(&log_path))?;
        drop(out);
        // A sealed segment's last time-index entry, as at roll.
        let (ts, at) = (indexes.max_timestamp, indexes.max_timestamp_offset);
        indexes
            .times
            .maybe_append(ts, u32::try_from(at - base).unwrap_or(0));
        let index_path = cleaned(INDEX_SUFFIX);
        let time_path = cleaned(TIME_INDEX_SUFFIX);
        indexes
            .offsets
            .persist(&index_path)
            .map_err(io_err(&index_path))?;
        indexes
            .times
            .persist(&time_path)
            .map_err(io_err(&time_path))?;
        let mut aborted = Vec::new();
        for segment in group {
            segment.collect_aborted(i64::MIN, i64::MAX, &mut aborted);
        }
        aborted.retain(|t| kept_markers.contains(&t.last_offset));
        let txn_path = cleaned(txn_index::TXN_INDEX_SUFFIX);
        txn_index::write_entries(&txn_path, &aborted).map_err(io_err(&txn_path))?;
        // Retention by time reads an empty segment's age from its mtime.
        let last = &group[group.len() - 1];
        if let Ok(modified) = std::fs::metadata(last.log_path()).and_then(|m| m.modified()) {
            file.set_modified(modified).map_err(io_err(&log_path))?;
        }
        let mut written = vec![index_path, time_path, txn_path];
        if group.len() > 1 {
            let merged_path = cleaned(super::swap::MERGED_SUFFIX);
            let members: Vec<i64> = group[1..].iter().map(|s| s.base_offset()).collect();
            super::swap::write_members(&merged_path, &members).map_err(io_err(&merged_path))?;
            written.push(merged_path);
        }
        for path in &written {
            crate::index::sync_file(path).map_err(io_err(path))?;
        }
        file.sync_all().map_err(io_err(&log_path))?;
        Ok(Cleaned {
            originals: group.to_vec(),
            file,
            len,
            indexes,
        })
    }

    /// What becomes of one batch below the end of the mapped range.
    fn judge(
        &self,
        header: &BatchHeader,
        bytes: &[u8],
        map: &OffsetMap,
        txns: &mut TxnTracker,
    ) -> Result<Verdict, BatchError> {
        let horizon = delete_horizon(header);
        let horizon_passed = horizon.is_some_and(|h| self.now_ms >= h);
        let new_horizon = self.now_ms.saturating_add(self.delete_retention_ms);
        let last_of_producer = header.producer_id >= 0
            && self.last_of_producer.get(&header.producer_id) == Some(&header.last_offset());
        let gone = || {
            if last_of_producer {
                Verdict::Replace(records::empty_batch(header))
            } else {
                Verdict::Drop
            }
        };
        if header.is_control() {
            let marker: Option<TxnMarker> = batch::read_marker(header, bytes).map(|m| m.marker);
            if !txns.on_marker(header, marker) {
                return Ok(Verdict::Keep);
            }
            if horizon_passed {
                return Ok(gone());
            }
            if horizon.is_some() || header.records_count == 0 {
                return Ok(Verdict::Keep);
            }
            let (payload, all) = records::split(header, bytes, self.limit)?;
            let kept: Vec<&RawRecord> = all.iter().collect();
            let new = records::rebuild(
                header,
                &bytes[HEADER_LEN..],
                &payload,
                &kept,
                Some(new_horizon),
            )?;
            return Ok(Verdict::Replace(new));
        }
        if txns.on_data(header) {
            return Ok(gone());
        }
        if header.records_count == 0 {
            return Ok(if last_of_producer {
                Verdict::Keep
            } else {
                Verdict::Drop
            });
        }
        let (payload, all) = records::split(header, bytes, self.limit)?;
        let mut kept = Vec::with_capacity(all.len());
        let mut tombstones = false;
        for r in &all {
            let Some(key) = &r.key else {
                continue; // Kafka's cleaner drops records without a key.
            };
            let latest = map
                .get(&payload[key.clone()])
                .is_none_or(|latest| r.offset >= latest);
            if latest && (r.has_value || !horizon_passed) {
                tombstones |= !r.has_value;
                kept.push(r);
            }
        }
        let set_horizon = (horizon.is_none() && tombstones).then_some(new_horizon);
        if kept.is_empty() {
            return Ok(gone());
        }
        if kept.len() == all.len() && set_horizon.is_none() {
            return Ok(Verdict::Keep);
        }
        let new = records::rebuild(header, &bytes[HEADER_LEN..], &payload, &kept, set_horizon)?;
        Ok(Verdict::Replace(new))
    }
}
