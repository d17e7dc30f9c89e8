//! Kafka v2 record batches: their 61-byte header here, their records in
//! `records.rs` (the one bounded record decoder, reading through
//! `record_input.rs`) and `decompress.rs` (capped streaming
//! decompression).
//!
//! In: a producer's `records` field ([`validate_produced`], then
//! [`check_produced`] for the records), a follower's fetched bytes or a
//! segment's contents ([`batches`], [`validate_stored`]), stored batches to
//! decode ([`for_each_record`]). Out: a parsed [`BatchHeader`] and byte
//! ranges, or the records one at a time; the append path uses
//! [`stamp_offset_and_epoch`] and [`stamp_log_append_time`] on a copy of
//! the header before writing it.
//!
//! Layout: baseOffset i64, batchLength i32, partitionLeaderEpoch i32,
//! magic i8, crc u32, attributes i16, lastOffsetDelta i32, baseTimestamp
//! i64, maxTimestamp i64, producerId i64, producerEpoch i16, baseSequence
//! i32, recordsCount i32, records. The CRC (CRC-32C) covers attributes to
//! the end, so offsets and the leader epoch can be rewritten without it.

mod codec;
mod control;
mod decompress;
mod record_input;
mod records;

use std::ops::Range;

use crate::config::TimestampType;
use crate::error::BatchError;

pub(crate) use codec::{compress, decompress_all};
pub use control::{control_batch, read_marker, MarkerRecord, TxnMarker, MAX_MARKER_BATCH};
pub use decompress::decompression_limit;
pub use records::{
    check_count_bound, check_produced, for_each_record, RecordView, RecordsSummary,
    MIN_RECORD_BYTES,
};

/// Length of a v2 batch header.
pub const HEADER_LEN: usize = 61;
/// baseOffset and batchLength: the bytes before those batchLength counts.
pub const LOG_OVERHEAD: usize = 12;

const EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
pub(crate) const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const MAX_TIMESTAMP_AT: usize = 35;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
pub(crate) const TRANSACTIONAL_BIT: i16 = 0x10;
pub(crate) const CONTROL_BIT: i16 = 0x20;

/// The fixed fields of a v2 record batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn be<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&buf[at..at + N]);
    out
}

impl BatchHeader {
    /// Parses the header at the start of `buf` (which may hold more bytes).
    /// Checks the magic and that batchLength covers at least the header.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() > MAGIC_AT && buf[MAGIC_AT] as i8 != 2 {
            return Err(BatchError::invalid(format!(
                "magic {} is not supported: only v2 record batches are",
                buf[MAGIC_AT] as i8
            )));
        }
        if buf.len() < HEADER_LEN {
            return Err(BatchError::corrupt(format!(
                "truncated batch header: {} of {HEADER_LEN} bytes",
                buf.len()
            )));
        }
        let header = BatchHeader {
            base_offset: i64::from_be_bytes(be(buf, 0)),
            batch_length: i32::from_be_bytes(be(buf, 8)),
            partition_leader_epoch: i32::from_be_bytes(be(buf, EPOCH_AT)),
            magic: buf[MAGIC_AT] as i8,
            crc: u32::from_be_bytes(be(buf, CRC_AT)),
            attributes: i16::from_be_bytes(be(buf, ATTRIBUTES_AT)),
            last_offset_delta: i32::from_be_bytes(be(buf, 23)),
            base_timestamp: i64::from_be_bytes(be(buf, 27)),
            max_timestamp: i64::from_be_bytes(be(buf, MAX_TIMESTAMP_AT)),
            producer_id: i64::from_be_bytes(be(buf, 43)),
            producer_epoch: i16::from_be_bytes(be(buf, 51)),
            base_sequence: i32::from_be_bytes(be(buf, 53)),
            records_count: i32::from_be_bytes(be(buf, 57)),
        };
        if (header.batch_length as i64) < (HEADER_LEN - LOG_OVERHEAD) as i64 {
            return Err(BatchError::corrupt(format!(
                "batch length {} is shorter than the header",
                header.batch_length
            )));
        }
        Ok(header)
    }

    /// Bytes of the whole batch, header included: 12 + batchLength.
    pub fn size(&self) -> usize {
        LOG_OVERHEAD + usize::try_from(self.batch_length).unwrap_or(0)
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// The offset just after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> u8 {
        (self.attributes & COMPRESSION_MASK) as u8
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }
}

/// The CRC-32C a batch should carry: over attributes to the end.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(ATTRIBUTES_AT..).unwrap_or_default())
}

fn check_crc(header: &BatchHeader, batch: &[u8]) -> Result<(), BatchError> {
    let actual = compute_crc(batch);
    if actual != header.crc {
        return Err(BatchError::corrupt(format!(
            "CRC mismatch: header says {:#010x}, bytes give {actual:#010x}",
            header.crc
        )));
    }
    Ok(())
}

fn check_counts(header: &BatchHeader) -> Result<(), BatchError> {
    if header.last_offset_delta < 0 || header.records_count < 0 {
        return Err(BatchError::invalid(format!(
            "negative lastOffsetDelta {} or recordsCount {}",
            header.last_offset_delta, header.records_count
        )));
    }
    if header.compression() > 4 {
        return Err(BatchError::invalid(format!(
            "unknown compression codec {}",
            header.compression()
        )));
    }
    Ok(())
}

/// Validates a producer's `records` for one partition through its header:
/// exactly one v2 batch, lengths consistent, CRC correct, at least one
/// record with `lastOffsetDelta == recordsCount - 1` and no more records
/// than the bytes (or, compressed, the decompression cap) can hold, not a
/// control batch, not transactional without a producer id, at most
/// `max_message_bytes`. Decodes no record: see
/// [`check_produced`] for that.
pub fn validate_produced(
    records: &[u8],
    max_message_bytes: u32,
) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(records)?;
    let size = header.size();
    if size > records.len() {
        return Err(BatchError::corrupt(format!(
            "batch length says {size} bytes but only {} arrived",
            records.len()
        )));
    }
    if size < records.len() {
        return Err(BatchError::invalid(format!(
            "a produce request must carry exactly one record batch per partition \
             ({} bytes follow the first batch)",
            records.len() - size
        )));
    }
    if size > max_message_bytes as usize {
        return Err(BatchError::TooLarge {
            size,
            max: max_message_bytes,
        });
    }
    check_crc(&header, records)?;
    check_counts(&header)?;
    if header.records_count < 1
        || i64::from(header.last_offset_delta) != i64::from(header.records_count) - 1
    {
        return Err(BatchError::invalid(format!(
            "recordsCount {} does not match lastOffsetDelta {}",
            header.records_count, header.last_offset_delta
        )));
    }
    check_count_bound(&header, decompression_limit(max_message_bytes))?;
    if header.is_control() {
        return Err(BatchError::invalid("clients may not write control batches"));
    }
    if header.is_transactional() && header.producer_id < 0 {
        return Err(BatchError::invalid(
            "a transactional batch must carry a producer id",
        ));
    }
    Ok(header)
}

/// Validates one stored or replicated batch held whole in `batch`: header,
/// exact length, CRC and non-negative counts.
pub fn validate_stored(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(batch)?;
    if header.size() != batch.len() {
        return Err(BatchError::corrupt(format!(
            "batch length says {} bytes, have {}",
            header.size(),
            batch.len()
        )));
    }
    check_crc(&header, batch)?;
    check_counts(&header)?;
    Ok(header)
}

/// Iterator over the batches of a buffer of concatenated batches; see [`batches`].
pub struct Batches<'a> {
    buf: &'a [u8],
    pos: usize,
    partial: Option<Range<usize>>,
    done: bool,
}

/// Splits `buf` into `(header, byte range)` per whole batch, checking only
/// each header's structure (no CRC). A trailing partial batch ends the
/// iteration and is reported by [`Batches::partial_tail`]; a header that
/// does not parse is yielded once as an error and ends it.
pub fn batches(buf: &[u8]) -> Batches<'_> {
    Batches {
        buf,
        pos: 0,
        partial: None,
        done: false,
    }
}

impl Batches<'_> {
    /// The bytes of a trailing partial batch, once iteration has reached them.
    pub fn partial_tail(&self) -> Option<Range<usize>> {
        self.partial.clone()
    }

    /// Where the next batch would start (the end of the whole batches read so far).
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl Iterator for Batches<'_> {
    type Item = Result<(BatchHeader, Range<usize>), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        if rest.len() < HEADER_LEN {
            self.done = true;
            self.partial = Some(self.pos..self.buf.len());
            return None;
        }
        let header = match BatchHeader::parse(rest) {
            Ok(header) => header,
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        if header.size() > rest.len() {
            self.done = true;
            self.partial = Some(self.pos..self.buf.len());
            return None;
        }
        let range = self.pos..self.pos + header.size();
        self.pos = range.end;
        Some(Ok((header, range)))
    }
}

/// Writes the offset and leader epoch assigned at append into a header copy.
pub(crate) fn stamp_offset_and_epoch(head: &mut [u8; HEADER_LEN], base_offset: i64, epoch: i32) {
    head[0..8].copy_from_slice(&base_offset.to_be_bytes());
    head[EPOCH_AT..EPOCH_AT + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Marks a header copy LogAppendTime with maxTimestamp `now_ms` and
/// recomputes the CRC over it and `rest` (the bytes after the header).
pub(crate) fn stamp_log_append_time(head: &mut [u8; HEADER_LEN], rest: &[u8], now_ms: i64) {
    let attributes = i16::from_be_bytes(be(head, ATTRIBUTES_AT)) | TIMESTAMP_TYPE_BIT;
    head[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    head[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&head[ATTRIBUTES_AT..]), rest);
    head[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}
