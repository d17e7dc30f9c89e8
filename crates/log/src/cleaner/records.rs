//! The records of one stored batch as byte ranges, and rebuilding a batch
//! from the records the cleaner keeps.
//!
//! In: a whole stored batch (CRC already checked) and the decompression
//! cap. [`split`] decompresses the payload once (capped) and cuts it into
//! records, reading only what the cleaner needs: the offset, timestamp,
//! key and whether the value is null; a record's other bytes (headers,
//! value) are never decoded. Out: [`rebuild`] writes a new batch with the
//! original header fields (base offset, last offset delta, producer id,
//! epoch, base sequence, leader epoch, codec), the kept records verbatim
//! or, when the base timestamp becomes a delete horizon (KIP-534), with
//! their timestamp deltas re-encoded against it; [`empty_batch`] writes
//! the header-only batch Kafka keeps for a producer's last batch.
//! Everything is bounded by the batch's bytes or the cap; malformed input
//! is a [`BatchError`].

use std::ops::Range;

use crate::batch::{self, BatchHeader, CRC_AT, HEADER_LEN, LOG_OVERHEAD};
use crate::error::BatchError;

/// Kafka's attribute bit for a base timestamp that holds the delete horizon.
pub(crate) const DELETE_HORIZON_BIT: i16 = 0x40;
const COMPRESSION_MASK: i16 = 0x07;
const LOG_APPEND_TIME_BIT: i16 = 0x08;

/// One record of a decompressed payload.
#[derive(Clone, Debug)]
pub(crate) struct RawRecord {
    /// The whole record, length prefix included, in the payload.
    pub bytes: Range<usize>,
    /// Where the record's attributes byte (after the length prefix) is.
    pub attributes_at: usize,
    /// Where the bytes after the timestamp delta start.
    pub after_timestamp: usize,
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Range<usize>>,
    pub has_value: bool,
}

/// The decompressed records of `batch` and their ranges.
pub(crate) fn split(
    header: &BatchHeader,
    batch: &[u8],
    limit: u64,
) -> Result<(Vec<u8>, Vec<RawRecord>), BatchError> {
    batch::check_count_bound(header, limit)?;
    let payload = batch.get(HEADER_LEN..).unwrap_or_default();
    let records = if header.compression() == 0 {
        payload.to_vec()
    } else {
        batch::decompress_all(header.compression(), payload, limit)?
    };
    let count = usize::try_from(header.records_count).unwrap_or(0);
    let mut out = Vec::with_capacity(count.min(records.len() / 7 + 1));
    let mut pos = 0;
    while pos < records.len() {
        if out.len() == count {
            return Err(BatchError::invalid(format!(
                "bytes follow the last of the {count} records the batch declares"
            )));
        }
        let start = pos;
        let len = varint(&records, &mut pos)?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| pos.checked_add(len))
            .filter(|&end| end <= records.len() && len >= 6)
            .ok_or_else(|| BatchError::invalid(format!("record length {len}")))?;
        let body = &records[..end];
        let attributes_at = pos;
        pos += 1;
        let timestamp_delta = varlong(body, &mut pos)?;
        let after_timestamp = pos;
        let offset_delta = varint(body, &mut pos)?;
        let key = match varint(body, &mut pos)? {
            -1 => None,
            n if n < -1 => return Err(BatchError::invalid(format!("key length {n}"))),
            n => Some(take(body, &mut pos, n as usize)?),
        };
        let has_value = match varint(body, &mut pos)? {
            -1 => false,
            n if n < -1 => return Err(BatchError::invalid(format!("value length {n}"))),
            _ => true,
        };
        out.push(RawRecord {
            bytes: start..end,
            attributes_at,
            after_timestamp,
            offset: header.base_offset.saturating_add(i64::from(offset_delta)),
            timestamp: header.base_timestamp.saturating_add(timestamp_delta),
            key,
            has_value,
        });
        pos = end;
    }
    if out.len() != count {
        return Err(BatchError::invalid(format!(
            "the batch declares {count} records but holds {}",
            out.len()
        )));
    }
    Ok((records, out))
}

/// A new batch of `kept` (records of `payload`, as [`split`] found them)
/// with `original`'s header fields; `horizon` becomes the base timestamp
/// (and sets the delete-horizon bit) if given.
pub(crate) fn rebuild(
    original: &BatchHeader,
    original_payload: &[u8],
    payload: &[u8],
    kept: &[&RawRecord],
    horizon: Option<i64>,
) -> Result<Vec<u8>, BatchError> {
    let base_timestamp = horizon.unwrap_or(original.base_timestamp);
    let mut records = Vec::with_capacity(kept.iter().map(|r| r.bytes.len() + 8).sum());
    for r in kept {
        if horizon.is_none() {
            records.extend_from_slice(&payload[r.bytes.clone()]);
            continue;
        }
        let rest = &payload[r.after_timestamp..r.bytes.end];
        let mut body = vec![payload[r.attributes_at]];
        put_varlong(&mut body, r.timestamp.saturating_sub(base_timestamp));
        body.extend_from_slice(rest);
        put_varlong(&mut records, body.len() as i64);
        records.extend_from_slice(&body);
    }
    let compressed = batch::compress(original.compression(), &records, original_payload)?;
    let max_timestamp = if original.attributes & LOG_APPEND_TIME_BIT != 0 {
        original.max_timestamp
    } else {
        kept.iter()
            .map(|r| r.timestamp)
            .max()
            .unwrap_or(original.max_timestamp)
    };
    let mut attributes = original.attributes;
    if horizon.is_some() {
        attributes |= DELETE_HORIZON_BIT;
    }
    let fields = HeaderFields {
        attributes,
        base_timestamp,
        max_timestamp,
        records_count: kept.len() as i32,
    };
    Ok(write_batch(original, fields, &compressed))
}

/// The header-only batch that keeps a producer's last sequence and epoch
/// once all its records are gone (uncompressed, no records).
pub(crate) fn empty_batch(original: &BatchHeader) -> Vec<u8> {
    let fields = HeaderFields {
        attributes: original.attributes & !COMPRESSION_MASK,
        base_timestamp: original.base_timestamp,
        max_timestamp: original.max_timestamp,
        records_count: 0,
    };
    write_batch(original, fields, &[])
}

/// The delete horizon a stored batch carries, if any.
pub(crate) fn delete_horizon(header: &BatchHeader) -> Option<i64> {
    (header.attributes & DELETE_HORIZON_BIT != 0).then_some(header.base_timestamp)
}

struct HeaderFields {
    attributes: i16,
    base_timestamp: i64,
    max_timestamp: i64,
    records_count: i32,
}

fn write_batch(h: &BatchHeader, f: HeaderFields, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&h.base_offset.to_be_bytes());
    let length = (HEADER_LEN - LOG_OVERHEAD + payload.len()) as i32;
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&h.partition_leader_epoch.to_be_bytes());
    out.push(2);
    out.extend_from_slice(&[0; 4]); // CRC, below
    out.extend_from_slice(&f.attributes.to_be_bytes());
    out.extend_from_slice(&h.last_offset_delta.to_be_bytes());
    out.extend_from_slice(&f.base_timestamp.to_be_bytes());
    out.extend_from_slice(&f.max_timestamp.to_be_bytes());
    out.extend_from_slice(&h.producer_id.to_be_bytes());
    out.extend_from_slice(&h.producer_epoch.to_be_bytes());
    out.extend_from_slice(&h.base_sequence.to_be_bytes());
    out.extend_from_slice(&f.records_count.to_be_bytes());
    out.extend_from_slice(payload);
    let crc = batch::compute_crc(&out);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    out
}

fn take(buf: &[u8], pos: &mut usize, n: usize) -> Result<Range<usize>, BatchError> {
    let end = pos
        .checked_add(n)
        .filter(|&end| end <= buf.len())
        .ok_or_else(|| BatchError::invalid("a field runs past the record's length"))?;
    let range = *pos..end;
    *pos = end;
    Ok(range)
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<i32, BatchError> {
    let v = varlong(buf, pos)?;
    i32::try_from(v).map_err(|_| BatchError::invalid("a varint longer than its type"))
}

fn varlong(buf: &[u8], pos: &mut usize) -> Result<i64, BatchError> {
    let mut raw = 0u64;
    for shift in (0..70).step_by(7) {
        let b = *buf
            .get(*pos)
            .ok_or_else(|| BatchError::invalid("a record runs past the end of the batch"))?;
        *pos += 1;
        raw |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
        }
    }
    Err(BatchError::invalid("a varint longer than its type"))
}

fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}
