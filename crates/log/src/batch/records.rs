//! The records inside a v2 batch, walked one at a time with every length
//! bounded: the one record decoder of the crate and of the broker.
//!
//! In: a whole batch (header + records) whose header has been parsed, and
//! the decompression cap. An uncompressed batch is walked in place (no
//! allocation per record: keys and values are sliced or skipped); a
//! compressed one through [`super::decompress`]'s capped stream. The count
//! in the header is never used to size anything: it is first bounded by the
//! bytes available (a record takes at least [`MIN_RECORD_BYTES`]), then
//! checked against the records actually found.
//!
//! Out: [`check_produced`] (a producer's batch: counts, offset deltas
//! 0..n-1, record lengths, and maxTimestamp against the records) and
//! [`for_each_record`] (stored data: the group loader, lookups by time),
//! which hand each [`RecordView`] to a callback. Any mismatch is a
//! [`BatchError`], never a panic or an allocation the input sized.

use std::io::{BufRead, BufReader, Read};
use std::ops::ControlFlow;

use bytes::Bytes;

use super::decompress::{decompressor, read_error};
use super::{BatchHeader, HEADER_LEN};
use crate::error::BatchError;

/// The fewest bytes a record takes on the wire: its length, attributes,
/// timestamp delta, offset delta, key length, value length and header
/// count, one byte each.
pub const MIN_RECORD_BYTES: u64 = 7;

/// One record of a batch. `key` and `value` are filled only when asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordView {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
}

/// The records' own summary, as checked against the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordsSummary {
    pub count: i32,
    pub max_timestamp: i64,
}

/// Refuses a header whose recordsCount cannot fit: more records than the
/// batch's bytes (uncompressed) or the decompression cap (compressed) can
/// hold at [`MIN_RECORD_BYTES`] each.
pub fn check_count_bound(header: &BatchHeader, limit: u64) -> Result<(), BatchError> {
    let room = if header.compression() == 0 {
        (header.size() as u64).saturating_sub(HEADER_LEN as u64)
    } else {
        limit
    };
    let count = u64::try_from(header.records_count).unwrap_or(0);
    if count > room / MIN_RECORD_BYTES {
        return Err(BatchError::invalid(format!(
            "recordsCount {} cannot fit in {room} bytes of records",
            header.records_count
        )));
    }
    Ok(())
}

/// Walks every record of a producer's `batch` (header already validated)
/// and checks it against the header: exactly recordsCount records with
/// offset deltas 0..n-1, each record's length matching its fields, nothing
/// after the last, and (if `check_max_timestamp`) maxTimestamp equal to the
/// largest record timestamp. Compressed batches are decompressed with the
/// cap `limit`: blocking CPU work, keep it off async workers.
pub fn check_produced(
    batch: &[u8],
    header: &BatchHeader,
    limit: u64,
    check_max_timestamp: bool,
) -> Result<RecordsSummary, BatchError> {
    let mut max_timestamp = -1i64;
    let mut count = 0i32;
    walk(
        batch,
        None,
        header,
        limit,
        false,
        &mut |offset_delta, record| {
            if offset_delta != count {
                return Err(BatchError::invalid(format!(
                    "record {count} has offset delta {offset_delta}, expected {count}"
                )));
            }
            max_timestamp = max_timestamp.max(record.timestamp);
            count += 1;
            Ok(ControlFlow::Continue(()))
        },
    )?;
    if check_max_timestamp && count > 0 && max_timestamp != header.max_timestamp {
        return Err(BatchError::invalid(format!(
            "maxTimestamp {} does not match the records' largest timestamp {max_timestamp}",
            header.max_timestamp
        )));
    }
    Ok(RecordsSummary {
        count,
        max_timestamp,
    })
}

/// Hands each record of the stored `batch` (one whole batch, header
/// included) to `f`, with its key and value if `keep` (sliced without a
/// copy when uncompressed), until `f` breaks. Bounded: the count by the
/// bytes, decompression by `limit`.
pub fn for_each_record(
    batch: &Bytes,
    limit: u64,
    keep: bool,
    mut f: impl FnMut(RecordView) -> ControlFlow<()>,
) -> Result<(), BatchError> {
    let header = BatchHeader::parse(batch)?;
    if header.size() != batch.len() {
        return Err(BatchError::corrupt(format!(
            "batch length says {} bytes, have {}",
            header.size(),
            batch.len()
        )));
    }
    if header.records_count < 0 {
        return Err(BatchError::invalid(format!(
            "negative recordsCount {}",
            header.records_count
        )));
    }
    check_count_bound(&header, limit)?;
    walk(batch, Some(batch), &header, limit, keep, &mut |_, r| {
        Ok(f(r))
    })?;
    Ok(())
}

/// Called with each record's offset delta and the record.
type Visit<'f> = dyn FnMut(i32, RecordView) -> Result<ControlFlow<()>, BatchError> + 'f;

/// Walks the records; `true` if all were walked (`false`: `visit` broke).
fn walk(
    batch: &[u8],
    owner: Option<&Bytes>,
    header: &BatchHeader,
    limit: u64,
    keep: bool,
    visit: &mut Visit<'_>,
) -> Result<bool, BatchError> {
    let payload = batch.get(HEADER_LEN..header.size()).unwrap_or_default();
    if header.compression() == 0 {
        let mut input = Slice {
            buf: payload,
            pos: 0,
            owner: owner.map(|o| (o, HEADER_LEN)),
        };
        walk_input(&mut input, header, keep, visit)
    } else {
        let reader = decompressor(header.compression(), payload, limit)?;
        let mut input = Stream {
            reader: BufReader::with_capacity(16 * 1024, reader),
            pos: 0,
        };
        walk_input(&mut input, header, keep, visit)
    }
}

fn walk_input(
    input: &mut impl Input,
    header: &BatchHeader,
    keep: bool,
    visit: &mut Visit<'_>,
) -> Result<bool, BatchError> {
    let count = header.records_count;
    for index in 0..count {
        if input.at_end()? {
            return Err(BatchError::invalid(format!(
                "the batch declares {count} records but holds {index}"
            )));
        }
        let (offset_delta, record) = read_record(input, header, keep)?;
        if visit(offset_delta, record)?.is_break() {
            return Ok(false);
        }
    }
    if !input.at_end()? {
        return Err(BatchError::invalid(format!(
            "bytes follow the last of the {count} records the batch declares"
        )));
    }
    Ok(true)
}

/// One record: length, attributes, timestampDelta, offsetDelta, key,
/// value, headers; the length must cover exactly the fields.
fn read_record(
    input: &mut impl Input,
    header: &BatchHeader,
    keep: bool,
) -> Result<(i32, RecordView), BatchError> {
    let length = varint(input)?;
    if i64::from(length) < MIN_RECORD_BYTES as i64 - 1 {
        return Err(BatchError::invalid(format!("record length {length}")));
    }
    let length = length as u64;
    let start = input.pos();
    let mut body = Body {
        input,
        start,
        length,
    };
    body.byte()?; // attributes: unused in v2
    let timestamp_delta = varlong(&mut body)?;
    let offset_delta = varint(&mut body)?;
    let key = body.field(keep, "key")?;
    let value = body.field(keep, "value")?;
    let headers = varint(&mut body)?;
    if headers < 0 {
        return Err(BatchError::invalid(format!(
            "negative record header count {headers}"
        )));
    }
    for _ in 0..headers {
        let key_len = varint(&mut body)?;
        if key_len < 0 {
            return Err(BatchError::invalid("negative record header key length"));
        }
        body.take(key_len as u64, false)?;
        body.field(false, "header value")?;
    }
    let used = body.input.pos() - start;
    if used != length {
        return Err(BatchError::invalid(format!(
            "record length says {length} bytes but its fields take {used}"
        )));
    }
    let timestamp = header
        .base_timestamp
        .checked_add(timestamp_delta)
        .ok_or_else(|| BatchError::invalid("record timestamp overflows"))?;
    let record = RecordView {
        offset: header.base_offset.saturating_add(i64::from(offset_delta)),
        timestamp,
        key,
        value,
    };
    Ok((offset_delta, record))
}

/// Where the bytes of records come from.
trait Input {
    /// The next byte; an error at the end.
    fn byte(&mut self) -> Result<u8, BatchError>;
    /// Whether no byte is left.
    fn at_end(&mut self) -> Result<bool, BatchError>;
    /// The next `n` bytes, returned if `keep`, else skipped.
    fn take(&mut self, n: u64, keep: bool) -> Result<Option<Bytes>, BatchError>;
    /// Bytes consumed so far.
    fn pos(&self) -> u64;
}

fn truncated() -> BatchError {
    BatchError::invalid("a record runs past the end of the batch")
}

/// Uncompressed records, in place.
struct Slice<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The batch as `Bytes` and where `buf` starts in it, to slice kept
    /// keys and values without a copy.
    owner: Option<(&'a Bytes, usize)>,
}

impl Input for Slice<'_> {
    fn byte(&mut self) -> Result<u8, BatchError> {
        let b = *self.buf.get(self.pos).ok_or_else(truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn at_end(&mut self) -> Result<bool, BatchError> {
        Ok(self.pos >= self.buf.len())
    }

    fn take(&mut self, n: u64, keep: bool) -> Result<Option<Bytes>, BatchError> {
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .filter(|end| *end <= self.buf.len())
            .ok_or_else(truncated)?;
        let range = self.pos..end;
        self.pos = end;
        Ok(keep.then(|| match self.owner {
            Some((owner, at)) => owner.slice(at + range.start..at + range.end),
            None => Bytes::copy_from_slice(&self.buf[range]),
        }))
    }

    fn pos(&self) -> u64 {
        self.pos as u64
    }
}

/// Decompressed records, streamed.
struct Stream<R> {
    reader: BufReader<R>,
    pos: u64,
}

impl<R: Read> Input for Stream<R> {
    fn byte(&mut self) -> Result<u8, BatchError> {
        let mut b = [0u8; 1];
        self.reader.read_exact(&mut b).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                truncated()
            } else {
                read_error(e)
            }
        })?;
        self.pos += 1;
        Ok(b[0])
    }

    fn at_end(&mut self) -> Result<bool, BatchError> {
        Ok(self.reader.fill_buf().map_err(read_error)?.is_empty())
    }

    fn take(&mut self, n: u64, keep: bool) -> Result<Option<Bytes>, BatchError> {
        let mut limited = (&mut self.reader).take(n);
        let (got, kept) = if keep {
            // Grows with the bytes that really arrive, never sized by `n`.
            let mut out = Vec::new();
            let got = limited.read_to_end(&mut out).map_err(read_error)? as u64;
            (got, Some(Bytes::from(out)))
        } else {
            (
                std::io::copy(&mut limited, &mut std::io::sink()).map_err(read_error)?,
                None,
            )
        };
        self.pos += got;
        if got < n {
            return Err(truncated());
        }
        Ok(kept)
    }

    fn pos(&self) -> u64 {
        self.pos
    }
}

/// A record's body: reads may not go past its stated length.
struct Body<'i, I> {
    input: &'i mut I,
    start: u64,
    length: u64,
}

impl<I: Input> Body<'_, I> {
    fn left(&self) -> u64 {
        self.length.saturating_sub(self.input.pos() - self.start)
    }

    fn overrun(&self) -> BatchError {
        BatchError::invalid(format!(
            "a record's fields run past its length of {} bytes",
            self.length
        ))
    }

    fn take(&mut self, n: u64, keep: bool) -> Result<Option<Bytes>, BatchError> {
        if n > self.left() {
            return Err(self.overrun());
        }
        self.input.take(n, keep)
    }

    /// A length-prefixed nullable field (-1 is null).
    fn field(&mut self, keep: bool, what: &str) -> Result<Option<Bytes>, BatchError> {
        match varint(self)? {
            -1 => Ok(None),
            n if n < -1 => Err(BatchError::invalid(format!("{what} length {n}"))),
            n => self.take(n as u64, keep),
        }
    }
}

impl<I: Input> Input for Body<'_, I> {
    fn byte(&mut self) -> Result<u8, BatchError> {
        if self.left() == 0 {
            return Err(self.overrun());
        }
        self.input.byte()
    }

    fn at_end(&mut self) -> Result<bool, BatchError> {
        Ok(self.left() == 0)
    }

    fn take(&mut self, n: u64, keep: bool) -> Result<Option<Bytes>, BatchError> {
        Body::take(self, n, keep)
    }

    fn pos(&self) -> u64 {
        self.input.pos()
    }
}

/// A zigzag varint of at most 5 bytes.
fn varint(input: &mut impl Input) -> Result<i32, BatchError> {
    let raw = unsigned(input, 5)?;
    let raw = u32::try_from(raw).map_err(|_| BatchError::invalid("varint out of range"))?;
    Ok((raw >> 1) as i32 ^ -((raw & 1) as i32))
}

/// A zigzag varlong of at most 10 bytes.
fn varlong(input: &mut impl Input) -> Result<i64, BatchError> {
    let raw = unsigned(input, 10)?;
    Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
}

fn unsigned(input: &mut impl Input, max_bytes: u32) -> Result<u64, BatchError> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        let b = input.byte()?;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(BatchError::invalid("varint longer than its type"))
}
