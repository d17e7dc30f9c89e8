//! The `produce_batch` target: a producer's `records` field for one
//! partition, as the broker validates it before anything is appended (the
//! header, then every record against it, decompressing under the cap), and
//! the same bytes read as a stored batch is read (the group loader, a
//! lookup by time).
//!
//! In: any bytes. Out: nothing; the validator's verdict is ignored, a
//! panic or a runaway allocation is the bug.

use std::ops::ControlFlow;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kraft_log::batch;

/// Kafka's default `message.max.bytes`.
const MAX_MESSAGE_BYTES: u32 = 1_048_588;

pub fn produce_batch(data: &[u8]) {
    let limit = batch::decompression_limit(MAX_MESSAGE_BYTES);
    if let Ok(header) = batch::validate_produced(data, MAX_MESSAGE_BYTES) {
        let _ = batch::check_produced(data, &header, limit, true);
    }
    let stored = Bytes::copy_from_slice(data);
    let _ = batch::for_each_record(&stored, limit, true, |_| ControlFlow::Continue(()));
}

/// Keyed records with headers, as a client writes them.
fn records(count: usize) -> Vec<Record> {
    (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32,
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(vec![b'v'; i * 7])),
            headers: [(
                kafka_protocol::protocol::StrBytes::from_static_str("h"),
                Some(Bytes::from_static(b"x")),
            )]
            .into_iter()
            .collect(),
        })
        .collect()
}

/// One v2 batch of `count` keyed records compressed with `compression`.
pub fn encoded_batch(count: usize, compression: Compression) -> Vec<u8> {
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    match RecordBatchEncoder::encode(&mut out, &records(count), &options) {
        Ok(()) => out.to_vec(),
        Err(_) => Vec::new(),
    }
}

/// One uncompressed v2 batch of `count` records from an idempotent
/// producer, its first record at sequence `base_sequence`.
pub fn producer_batch(count: usize, producer_id: i64, epoch: i16, base_sequence: i32) -> Vec<u8> {
    encode_producer_batch(count, producer_id, epoch, base_sequence, false)
}

/// [`producer_batch`] with the transactional bit.
pub fn transactional_batch(
    count: usize,
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
) -> Vec<u8> {
    encode_producer_batch(count, producer_id, epoch, base_sequence, true)
}

fn encode_producer_batch(
    count: usize,
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    transactional: bool,
) -> Vec<u8> {
    let mut records = records(count);
    for (i, r) in records.iter_mut().enumerate() {
        r.transactional = transactional;
        r.producer_id = producer_id;
        r.producer_epoch = epoch;
        r.sequence = base_sequence + i as i32;
    }
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    match RecordBatchEncoder::encode(&mut out, &records, &options) {
        Ok(()) => out.to_vec(),
        Err(_) => Vec::new(),
    }
}

pub fn seeds() -> Vec<Vec<u8>> {
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    codecs
        .into_iter()
        .flat_map(|c| [encoded_batch(1, c), encoded_batch(5, c)])
        .filter(|b| !b.is_empty())
        .collect()
}
