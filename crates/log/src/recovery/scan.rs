//! Reading a segment's batches during recovery: validating each (header,
//! length, CRC, increasing offsets) while rebuilding the indexes, up to the
//! first invalid one.
//!
//! In: an open `.log` file and where to start. Out: a [`Scan`] with the
//! rebuilt indexes, the next offset, epoch starts and the first invalid
//! batch, if any; the caller decides what an invalid batch means.

use std::fs::File;

use crate::batch::{self, BatchHeader, HEADER_LEN};
use crate::segment::{index_batch, AppendedBatch, SegmentIndexes};
use crate::util::read_at_most;

/// Bytes read at a time when scanning a segment.
const SCAN_CHUNK: u64 = 1 << 20;

/// The outcome of reading a segment's batches.
pub(super) struct Scan {
    pub indexes: SegmentIndexes,
    /// The offset after the last valid batch, if any was read.
    pub next_offset: Option<i64>,
    /// `(epoch, base offset)` where the leader epoch changes.
    pub epochs: Vec<(i32, i64)>,
    /// The first invalid batch: position and why.
    pub invalid: Option<(u64, String)>,
}

/// Validates every batch from `from` to `len` (header, length, CRC,
/// increasing offsets) and indexes it into `indexes` as appends do.
pub(super) fn scan_segment(
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
