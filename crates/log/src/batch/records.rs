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

use std::io::BufReader;
use std::ops::ControlFlow;

use bytes::Bytes;

use super::decompress::decompressor;
use super::record_input::{varint, varlong, Fault, Field, Input, Slice, Stream};
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
    /// Records with a null key (a compacted topic refuses them).
    pub keyless: i32,
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
    let mut keyless = 0i32;
    walk(
        batch,
        None,
        header,
        limit,
        false,
        |offset_delta, has_key, record| {
            if offset_delta != count {
                return Err(Fault::OffsetDelta(offset_delta));
            }
            max_timestamp = max_timestamp.max(record.timestamp);
            count += 1;
            keyless += i32::from(!has_key);
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
        keyless,
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
    walk(batch, Some(batch), &header, limit, keep, |_, _, r| Ok(f(r)))?;
    Ok(())
}

/// Walks the records, calling `visit` with each one's offset delta,
/// whether it has a key, and the record; `true` if all were walked (`false`: `visit` broke).
fn walk<V>(
    batch: &[u8],
    owner: Option<&Bytes>,
    header: &BatchHeader,
    limit: u64,
    keep: bool,
    mut visit: V,
) -> Result<bool, BatchError>
where
    V: FnMut(i32, bool, RecordView) -> Result<ControlFlow<()>, Fault>,
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
    V: FnMut(i32, bool, RecordView) -> Result<ControlFlow<()>, Fault>,
{
    let count = header.records_count;
    for index in 0..count {
        if input.at_end().map_err(|f| (index, f))? {
            return Err((index, Fault::Truncated));
        }
        let (offset_delta, has_key, record) = match read_record(input, header, keep) {
            Ok(r) => r,
            Err(Fault::Truncated) => return Err((-1, Fault::Truncated)),
            Err(f) => return Err((index, f)),
        };
        if visit(offset_delta, has_key, record)
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
) -> Result<(i32, bool, RecordView), Fault> {
    let length = varint(input)?;
    if i64::from(length) < MIN_RECORD_BYTES as i64 - 1 {
        return Err(Fault::RecordLength(length));
    }
    let mut body = input.body(length as u64)?;
    body.byte()?; // attributes: unused in v2
    let timestamp_delta = varlong(&mut body)?;
    let offset_delta = varint(&mut body)?;
    let (has_key, key) = field(&mut body, keep, Field::Key)?;
    let (_, value) = field(&mut body, keep, Field::Value)?;
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
    Ok((offset_delta, has_key, record))
}

/// A length-prefixed nullable field (-1 is null): whether it is there,
/// and its bytes if `keep`.
#[inline]
fn field(input: &mut impl Input, keep: bool, what: Field) -> Result<(bool, Option<Bytes>), Fault> {
    match varint(input)? {
        -1 => Ok((false, None)),
        n if n < -1 => Err(Fault::Length(what, n)),
        n => Ok((true, input.take(n as u64, keep)?)),
    }
}
