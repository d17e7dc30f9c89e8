//! Control batches that end a transaction: Kafka's COMMIT and ABORT
//! markers.
//!
//! In: a marker to write (from the broker's WriteTxnMarkers handler,
//! through `PartitionLog::append_marker`) or a stored or replicated batch
//! whose header has the control bit. Out: the bytes of a new control batch
//! ([`control_batch`]: attributes control + transactional, one record whose
//! key is the control record key {version 0, type} and whose value is the
//! end-transaction marker {version 0, coordinator epoch}), or the marker a
//! stored batch carries ([`read_marker`]). A control batch of another type
//! (Kafka's KRaft types 2 and up) or one that does not decode is no marker.

use bytes::{BufMut, Bytes, BytesMut};

use super::{compute_crc, BatchHeader, CONTROL_BIT, CRC_AT, HEADER_LEN, TRANSACTIONAL_BIT};

/// How a transaction ended: Kafka's control record types 0 and 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxnMarker {
    Abort,
    Commit,
}

impl TxnMarker {
    /// The control record type.
    pub fn control_type(self) -> i16 {
        match self {
            TxnMarker::Abort => 0,
            TxnMarker::Commit => 1,
        }
    }
}

/// A marker as stored: its type and the coordinator epoch that wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarkerRecord {
    pub marker: TxnMarker,
    pub coordinator_epoch: i32,
}

/// The largest control batch [`read_marker`] looks into: a marker batch is
/// 61 bytes of header and a record of about 20.
pub const MAX_MARKER_BATCH: usize = 256;

fn put_varint(buf: &mut BytesMut, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// A control batch with one marker record, offset 0 and leader epoch -1
/// (the append stamps both), timestamps `timestamp_ms`.
pub fn control_batch(
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    marker: TxnMarker,
    timestamp_ms: i64,
) -> Bytes {
    let mut record = BytesMut::with_capacity(24);
    record.put_i8(0); // attributes
    put_varint(&mut record, 0); // timestamp delta
    put_varint(&mut record, 0); // offset delta
    put_varint(&mut record, 4);
    record.put_i16(0); // key version
    record.put_i16(marker.control_type());
    put_varint(&mut record, 6);
    record.put_i16(0); // value version
    record.put_i32(coordinator_epoch);
    put_varint(&mut record, 0); // headers
    let mut body = BytesMut::with_capacity(record.len() + 2);
    put_varint(&mut body, record.len() as i64);
    body.extend_from_slice(&record);

    let mut batch = BytesMut::with_capacity(HEADER_LEN + body.len());
    batch.put_i64(0);
    batch.put_i32((HEADER_LEN - super::LOG_OVERHEAD + body.len()) as i32);
    batch.put_i32(-1); // partition leader epoch
    batch.put_i8(2);
    batch.put_u32(0); // crc, below
    batch.put_i16(CONTROL_BIT | TRANSACTIONAL_BIT);
    batch.put_i32(0); // last offset delta
    batch.put_i64(timestamp_ms);
    batch.put_i64(timestamp_ms);
    batch.put_i64(producer_id);
    batch.put_i16(producer_epoch);
    batch.put_i32(-1); // base sequence
    batch.put_i32(1); // records
    batch.extend_from_slice(&body);
    let crc = compute_crc(&batch);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    batch.freeze()
}

/// Reads Kafka's zigzag varints and big-endian fields; `None` past the end.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn varint(&mut self) -> Option<i64> {
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let (&b, rest) = self.0.split_first()?;
            self.0 = rest;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some((value >> 1) as i64 ^ -((value & 1) as i64));
            }
        }
        None
    }
    fn i16(&mut self) -> Option<i16> {
        let (head, rest) = self.0.split_first_chunk::<2>()?;
        self.0 = rest;
        Some(i16::from_be_bytes(*head))
    }
    fn i32(&mut self) -> Option<i32> {
        let (head, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(i32::from_be_bytes(*head))
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        self.0 = self.0.get(n..)?;
        Some(())
    }
}

/// The transaction marker `batch` (a whole stored batch, header included)
/// carries: `None` unless it is an uncompressed control batch whose first
/// record has a control key of type ABORT or COMMIT. A value too short
/// for a coordinator epoch reads as epoch -1.
pub fn read_marker(header: &BatchHeader, batch: &[u8]) -> Option<MarkerRecord> {
    if !header.is_control() || header.compression() != 0 || header.records_count < 1 {
        return None;
    }
    let mut c = Cursor(batch.get(HEADER_LEN..)?);
    let _length = c.varint()?;
    c.skip(1)?; // attributes
    let _timestamp_delta = c.varint()?;
    let _offset_delta = c.varint()?;
    if c.varint()? < 4 {
        return None;
    }
    let _key_version = c.i16()?;
    let marker = match c.i16()? {
        0 => TxnMarker::Abort,
        1 => TxnMarker::Commit,
        _ => return None,
    };
    let coordinator_epoch = match c.varint() {
        Some(len) if len >= 6 => {
            let _value_version = c.i16();
            c.i32().unwrap_or(-1)
        }
        _ => -1,
    };
    Some(MarkerRecord {
        marker,
        coordinator_epoch,
    })
}
