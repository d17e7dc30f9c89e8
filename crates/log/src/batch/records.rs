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
use std::ops::{ControlFlow, Range};

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
    walk(batch, None, header, limit, false, |offset_delta, record| {
        if offset_delta != count {
            return Err(Fault::OffsetDelta(offset_delta));
        }
        max_timestamp = max_timestamp.max(record.timestamp);
        count += 1;
        Ok(ControlFlow::Continue(()))
    })?;
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
    walk(batch, Some(batch), &header, limit, keep, |_, r| Ok(f(r)))?;
    Ok(())
}

/// Why a record does not decode: small and `Copy`, so that the walk's
/// results stay in registers; [`walk`] turns it into a [`BatchError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// The batch ended before the record did.
    Truncated,
    /// A field runs past the record's stated length.
    Overrun,
    /// The record's stated length is longer than its fields.
    Underrun,
    /// A record length below the 6 bytes every body takes.
    RecordLength(i32),
    /// A key, value or header length below -1, or a negative header key
    /// length or header count.
    Length(Field, i32),
    VarintTooLong,
    TimestampOverflow,
    /// A record whose offset delta is not its index.
    OffsetDelta(i32),
    /// The decompressor failed; the stream keeps the error.
    Stream,
}

/// A record field whose length can be wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Key,
    Value,
    HeaderCount,
    HeaderKey,
    HeaderValue,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Key => "key length",
            Field::Value => "value length",
            Field::HeaderCount => "header count",
            Field::HeaderKey => "header key length",
            Field::HeaderValue => "header value length",
        }
    }
}

/// Walks the records, calling `visit` with each one's offset delta and
/// the record; `true` if all were walked (`false`: `visit` broke).
fn walk<V>(
    batch: &[u8],
    owner: Option<&Bytes>,
    header: &BatchHeader,
    limit: u64,
    keep: bool,
    mut visit: V,
) -> Result<bool, BatchError>
where
    V: FnMut(i32, RecordView) -> Result<ControlFlow<()>, Fault>,
{
    let payload = batch.get(HEADER_LEN..header.size()).unwrap_or_default();
    let count = header.records_count;
    let (index, fault) = if header.compression() == 0 {
        let mut input = Slice {
            buf: payload,
            pos: 0,
            owner: owner.map(|o| (o, HEADER_LEN)),
        };
        match walk_input(&mut input, header, keep, &mut visit) {
            Ok(walked) => return Ok(walked),
            Err(e) => e,
        }
    } else {
        let reader = decompressor(header.compression(), payload, limit)?;
        let mut input = Stream {
            reader: BufReader::with_capacity(16 * 1024, reader),
            pos: 0,
            error: None,
        };
        match walk_input(&mut input, header, keep, &mut visit) {
            Ok(walked) => return Ok(walked),
            Err((_, Fault::Stream)) => {
                return Err(input
                    .error
                    .take()
                    .unwrap_or_else(|| BatchError::corrupt("cannot decompress the records")))
            }
            Err(e) => e,
        }
    };
    let reason = match fault {
        Fault::Truncated if index == count => {
            format!("bytes follow the last of the {count} records the batch declares")
        }
        Fault::Truncated if index >= 0 && index < count => {
            format!("the batch declares {count} records but holds {index}")
        }
        Fault::Truncated => "a record runs past the end of the batch".to_string(),
        Fault::Overrun => format!("record {index}: a field runs past the record's length"),
        Fault::Underrun => format!("record {index}: its length is longer than its fields"),
        Fault::RecordLength(n) => format!("record {index}: record length {n}"),
        Fault::Length(field, n) => format!("record {index}: {} {n}", field.name()),
        Fault::VarintTooLong => format!("record {index}: a varint longer than its type"),
        Fault::TimestampOverflow => format!("record {index}: its timestamp overflows"),
        Fault::OffsetDelta(found) => {
            format!("record {index} has offset delta {found}, expected {index}")
        }
        Fault::Stream => "cannot decompress the records".to_string(),
    };
    Err(BatchError::invalid(reason))
}

/// The walk; a fault comes with the index of the record it hit (`-1`: a
/// record ended early; `count`: bytes after the last record).
fn walk_input<V>(
    input: &mut impl Input,
    header: &BatchHeader,
    keep: bool,
    visit: &mut V,
) -> Result<bool, (i32, Fault)>
where
    V: FnMut(i32, RecordView) -> Result<ControlFlow<()>, Fault>,
{
    let count = header.records_count;
    for index in 0..count {
        if input.at_end().map_err(|f| (index, f))? {
            return Err((index, Fault::Truncated));
        }
        let (offset_delta, record) = match read_record(input, header, keep) {
            Ok(r) => r,
            Err(Fault::Truncated) => return Err((-1, Fault::Truncated)),
            Err(f) => return Err((index, f)),
        };
        if visit(offset_delta, record)
            .map_err(|f| (index, f))?
            .is_break()
        {
            return Ok(false);
        }
    }
    if !input.at_end().map_err(|f| (count, f))? {
        return Err((count, Fault::Truncated));
    }
    Ok(true)
}

/// One record: length, attributes, timestampDelta, offsetDelta, key,
/// value, headers; the length must cover exactly the fields.
#[inline]
fn read_record(
    input: &mut impl Input,
    header: &BatchHeader,
    keep: bool,
) -> Result<(i32, RecordView), Fault> {
    let length = varint(input)?;
    if i64::from(length) < MIN_RECORD_BYTES as i64 - 1 {
        return Err(Fault::RecordLength(length));
    }
    let mut body = input.body(length as u64)?;
    body.byte()?; // attributes: unused in v2
    let timestamp_delta = varlong(&mut body)?;
    let offset_delta = varint(&mut body)?;
    let key = field(&mut body, keep, Field::Key)?;
    let value = field(&mut body, keep, Field::Value)?;
    let headers = varint(&mut body)?;
    if headers < 0 {
        return Err(Fault::Length(Field::HeaderCount, headers));
    }
    for _ in 0..headers {
        let key_len = varint(&mut body)?;
        if key_len < 0 {
            return Err(Fault::Length(Field::HeaderKey, key_len));
        }
        body.take(key_len as u64, false)?;
        field(&mut body, false, Field::HeaderValue)?;
    }
    if !body.at_end()? {
        return Err(Fault::Underrun);
    }
    let timestamp = header
        .base_timestamp
        .checked_add(timestamp_delta)
        .ok_or(Fault::TimestampOverflow)?;
    let record = RecordView {
        offset: header.base_offset.saturating_add(i64::from(offset_delta)),
        timestamp,
        key,
        value,
    };
    Ok((offset_delta, record))
}

/// A length-prefixed nullable field (-1 is null).
#[inline]
fn field(input: &mut impl Input, keep: bool, what: Field) -> Result<Option<Bytes>, Fault> {
    match varint(input)? {
        -1 => Ok(None),
        n if n < -1 => Err(Fault::Length(what, n)),
        n => input.take(n as u64, keep),
    }
}

/// Where the bytes of records come from.
trait Input {
    /// The input for the next `len` bytes, one record's body: reading past
    /// them is [`Fault::Overrun`].
    type Body<'s>: Input
    where
        Self: 's;
    fn body(&mut self, len: u64) -> Result<Self::Body<'_>, Fault>;
    /// The next byte.
    fn byte(&mut self) -> Result<u8, Fault>;
    /// Whether no byte is left.
    fn at_end(&mut self) -> Result<bool, Fault>;
    /// The next `n` bytes, returned if `keep`, else skipped.
    fn take(&mut self, n: u64, keep: bool) -> Result<Option<Bytes>, Fault>;
}

/// Uncompressed records, in place.
struct Slice<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The batch as `Bytes` and where `buf` starts in it, to slice kept
    /// keys and values without a copy.
    owner: Option<(&'a Bytes, usize)>,
}

impl<'a> Slice<'a> {
    /// Skips `n` bytes; their range, or `fault` if fewer are left.
    #[inline]
    fn advance(&mut self, n: u64, fault: Fault) -> Result<Range<usize>, Fault> {
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .filter(|end| *end <= self.buf.len())
            .ok_or(fault)?;
        let range = self.pos..end;
        self.pos = end;
        Ok(range)
    }

    #[inline]
    fn next(&mut self, fault: Fault) -> Result<u8, Fault> {
        let b = *self.buf.get(self.pos).ok_or(fault)?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    fn take_or(&mut self, n: u64, keep: bool, fault: Fault) -> Result<Option<Bytes>, Fault> {
        let range = self.advance(n, fault)?;
        Ok(keep.then(|| match self.owner {
            Some((owner, at)) => owner.slice(at + range.start..at + range.end),
            None => Bytes::copy_from_slice(&self.buf[range]),
        }))
    }
}

impl<'a> Input for Slice<'a> {
    type Body<'s>
        = SliceBody<'a>
    where
        Self: 's;

    #[inline]
    fn body(&mut self, len: u64) -> Result<SliceBody<'a>, Fault> {
        let range = self.advance(len, Fault::Truncated)?;
        Ok(SliceBody(Slice {
            buf: &self.buf[range.clone()],
            pos: 0,
            owner: self.owner.map(|(owner, at)| (owner, at + range.start)),
        }))
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, Fault> {
        self.next(Fault::Truncated)
    }

    #[inline]
    fn at_end(&mut self) -> Result<bool, Fault> {
        Ok(self.pos >= self.buf.len())
    }

    #[inline]
    fn take(&mut self, n: u64, keep: bool) -> Result<Option<Bytes>, Fault> {
        self.take_or(n, keep, Fault::Truncated)
    }
}

/// A record's body in place: its slice bounds it.
struct SliceBody<'a>(Slice<'a>);

impl<'a> Input for SliceBody<'a> {
    type Body<'s>
        = SliceBody<'a>
    where
        Self: 's;

    fn body(&mut self, _len: u64) -> Result<SliceBody<'a>, Fault> {
        Err(Fault::Overrun)
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, Fault> {
        self.0.next(Fault::Overrun)
    }

    #[inline]
    fn at_end(&mut self) -> Result<bool, Fault> {
        self.0.at_end()
    }

    #[inline]
    fn take(&mut self, n: u64, keep: bool) -> Result<Option<Bytes>, Fault> {
        self.0.take_or(n, keep, Fault::Overrun)
    }
}

/// Decompressed records, streamed.
struct Stream<R> {
    reader: BufReader<R>,
    pos: u64,
    /// Why the decompressor failed, once it has.
    error: Option<BatchError>,
}

impl<R: Read> Stream<R> {
    fn failed(&mut self, e: std::io::Error) -> Fault {
        self.error = Some(read_error(e));
        Fault::Stream
    }
}

impl<R: Read> Input for Stream<R> {
    type Body<'s>
        = StreamBody<'s, R>
    where
        Self: 's;

    fn body(&mut self, len: u64) -> Result<StreamBody<'_, R>, Fault> {
        let start = self.pos;
        Ok(StreamBody {
            input: self,
            start,
            length: len,
        })
    }

    fn byte(&mut self) -> Result<u8, Fault> {
        let mut b = [0u8; 1];
        match self.reader.read_exact(&mut b) {
            Ok(()) => {
                self.pos += 1;
                Ok(b[0])
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(Fault::Truncated),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn at_end(&mut self) -> Result<bool, Fault> {
        match self.reader.fill_buf() {
            Ok(buf) => Ok(buf.is_empty()),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn take(&mut self, n: u64, keep: bool) -> Result<Option<Bytes>, Fault> {
        let mut limited = (&mut self.reader).take(n);
        let read = if keep {
            // Grows with the bytes that really arrive, never sized by `n`.
            let mut out = Vec::new();
            limited
                .read_to_end(&mut out)
                .map(|got| (got as u64, Some(Bytes::from(out))))
        } else {
            std::io::copy(&mut limited, &mut std::io::sink()).map(|got| (got, None))
        };
        let (got, kept) = read.map_err(|e| self.failed(e))?;
        self.pos += got;
        if got < n {
            return Err(Fault::Truncated);
        }
        Ok(kept)
    }
}

/// A streamed record's body: reads may not go past its stated length.
struct StreamBody<'i, R> {
    input: &'i mut Stream<R>,
    start: u64,
    length: u64,
}

impl<R: Read> StreamBody<'_, R> {
    fn left(&self) -> u64 {
        self.length.saturating_sub(self.input.pos - self.start)
    }
}

impl<'i, R: Read> Input for StreamBody<'i, R> {
    type Body<'s>
        = SliceBody<'static>
    where
        Self: 's;

    fn body(&mut self, _len: u64) -> Result<SliceBody<'static>, Fault> {
        Err(Fault::Overrun)
    }

    fn byte(&mut self) -> Result<u8, Fault> {
        if self.left() == 0 {
            return Err(Fault::Overrun);
        }
        self.input.byte()
    }

    fn at_end(&mut self) -> Result<bool, Fault> {
        Ok(self.left() == 0)
    }

    fn take(&mut self, n: u64, keep: bool) -> Result<Option<Bytes>, Fault> {
        if n > self.left() {
            return Err(Fault::Overrun);
        }
        self.input.take(n, keep)
    }
}

/// A zigzag varint of at most 5 bytes.
#[inline]
fn varint(input: &mut impl Input) -> Result<i32, Fault> {
    let raw = unsigned(input, 5)?;
    let raw = u32::try_from(raw).map_err(|_| Fault::VarintTooLong)?;
    Ok((raw >> 1) as i32 ^ -((raw & 1) as i32))
}

/// A zigzag varlong of at most 10 bytes.
#[inline]
fn varlong(input: &mut impl Input) -> Result<i64, Fault> {
    let raw = unsigned(input, 10)?;
    Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
}

#[inline]
fn unsigned(input: &mut impl Input, max_bytes: u32) -> Result<u64, Fault> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        let b = input.byte()?;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Fault::VarintTooLong)
}
