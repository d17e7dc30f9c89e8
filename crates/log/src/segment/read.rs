//! Reading a segment: locating the batch holding an offset through the
//! offset index and batch headers, returning whole batches, and walking
//! headers for timestamp searches.
//!
//! In: offsets, positions and bounds from the partition log's read and
//! lookup paths. Out: `Bytes` of whole batches (one pread of at most
//! `max_bytes` after a small pread to locate the first batch), headers with
//! their positions. Nothing here takes a lock the append path holds for
//! more than a lookup in the in-memory indexes.

use bytes::Bytes;

use super::{Segment, SCAN_CHUNK};
use crate::batch::{self, BatchHeader, HEADER_LEN};
use crate::error::LogError;
use crate::util::read;

impl Segment {
    /// Walks batch headers from `position` (a batch boundary) to `end`.
    pub fn headers(&self, position: u64, end: u64) -> HeaderScan<'_> {
        HeaderScan {
            segment: self,
            position,
            end,
            buf: Vec::new(),
            buf_position: 0,
        }
    }

    /// Where the batch holding `offset` (or the first after it) starts, with
    /// its header, searching below byte `end`. `None` if no batch reaches `offset`.
    pub fn find_batch(
        &self,
        offset: i64,
        end: u64,
    ) -> Result<Option<(u64, BatchHeader)>, LogError> {
        let start = u64::from(read(&self.indexes).offsets.lookup(self.relative(offset)));
        let mut scan = self.headers(start.min(end), end);
        while let Some((position, header)) = scan.next_header()? {
            if header.last_offset() >= offset {
                return Ok(Some((position, header)));
            }
        }
        Ok(None)
    }

    /// The position to start a search for the first batch with a timestamp
    /// at or after `timestamp`: every batch before it is older.
    pub fn search_start_for_timestamp(&self, timestamp: i64) -> u64 {
        let ix = read(&self.indexes);
        ix.times
            .last_before(timestamp)
            .map_or(0, |e| u64::from(ix.offsets.lookup(e.relative_offset)))
    }

    /// The last time-index entry naming an offset below `offset`: its
    /// timestamp, that offset, and the position to scan from after it.
    pub fn time_entry_below(&self, offset: i64) -> Option<(i64, i64, u64)> {
        let ix = read(&self.indexes);
        let relative = self.relative(offset);
        let entries = ix.times.entries();
        let entry = entries[..entries.partition_point(|e| e.relative_offset < relative)].last()?;
        Some((
            entry.timestamp,
            self.base_offset + i64::from(entry.relative_offset),
            u64::from(ix.offsets.lookup(entry.relative_offset)),
        ))
    }

    /// Whole batches from the one holding `offset`, below offset `bound`, at
    /// most `max_bytes` of them (or the first whole if `min_one_batch`).
    /// `None` if this segment holds nothing at or after `offset`.
    pub fn read(
        &self,
        offset: i64,
        bound: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<Option<Bytes>, LogError> {
        let end = self.size();
        let Some((start, first)) = self.find_batch(offset, end)? else {
            return Ok(None);
        };
        if first.base_offset >= bound {
            return Ok(Some(Bytes::new()));
        }
        let want = (max_bytes as u64).min(end - start) as usize;
        if want < first.size() {
            if !min_one_batch {
                return Ok(Some(Bytes::new()));
            }
            let buf = self.read_bytes(start, first.size())?;
            if buf.len() < first.size() {
                return Err(LogError::corrupt(
                    &self.log_path,
                    start,
                    "batch cut short by the end of the file",
                ));
            }
            return Ok(Some(Bytes::from(buf)));
        }
        let mut buf = self.read_bytes(start, want)?;
        let mut whole = batch::batches(&buf);
        let mut cut = 0;
        for item in &mut whole {
            match item {
                Ok((header, range)) if header.base_offset < bound => cut = range.end,
                _ => break,
            }
        }
        buf.truncate(cut);
        Ok(Some(Bytes::from(buf)))
    }

    /// Reads the whole batch at `position` (as [`Segment::headers`] found it).
    pub fn read_batch(&self, position: u64, header: &BatchHeader) -> Result<Bytes, LogError> {
        let buf = self.read_bytes(position, header.size())?;
        if buf.len() < header.size() {
            return Err(LogError::corrupt(
                &self.log_path,
                position,
                "batch cut short by the end of the file",
            ));
        }
        Ok(Bytes::from(buf))
    }

    /// When segment.ms starts counting for a segment found on disk: its
    /// first batch's maxTimestamp (as Kafka does), at most now; `None` if empty.
    pub fn roll_base_ms(&self) -> Result<Option<i64>, LogError> {
        let now = crate::util::now_ms();
        let first = self.headers(0, self.size()).next_header()?;
        Ok(first.map(|(_, h)| {
            if h.max_timestamp < 0 {
                now
            } else {
                h.max_timestamp.min(now)
            }
        }))
    }
}

/// Batch headers of a segment read in chunks; see [`Segment::headers`].
pub(crate) struct HeaderScan<'a> {
    segment: &'a Segment,
    position: u64,
    end: u64,
    buf: Vec<u8>,
    buf_position: u64,
}

impl HeaderScan<'_> {
    /// The next batch's position and header. A header that does not parse,
    /// or a batch running past `end`, is a corrupt file.
    pub fn next_header(&mut self) -> Result<Option<(u64, BatchHeader)>, LogError> {
        if self.position >= self.end {
            return Ok(None);
        }
        let position = self.position;
        let buffered = position >= self.buf_position
            && position + HEADER_LEN as u64 <= self.buf_position + self.buf.len() as u64;
        if !buffered {
            let len = (SCAN_CHUNK as u64).min(self.end - position) as usize;
            self.buf = self.segment.read_bytes(position, len)?;
            self.buf_position = position;
        }
        let path = &self.segment.log_path;
        let at = (position - self.buf_position) as usize;
        let header = batch::BatchHeader::parse(&self.buf[at..])
            .map_err(|e| LogError::corrupt(path, position, e.to_string()))?;
        let next = position + header.size() as u64;
        if next > self.end {
            return Err(LogError::corrupt(
                path,
                position,
                format!(
                    "batch of {} bytes runs past the end of the segment",
                    header.size()
                ),
            ));
        }
        self.position = next;
        Ok(Some((position, header)))
    }
}
