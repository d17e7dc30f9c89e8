//! Record batches for the broker's unit tests: one uncompressed v2 batch of
//! value-only records, as a client without idempotence produces them.
//!
//! In: how many records and their timestamp. Out: the batch's bytes, ready
//! for `append_as_leader` or a log.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// One batch of `count` records (`value-0`, `value-1`, ...) stamped
/// `timestamp`.
pub fn value_batch(count: usize, timestamp: i64) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // kafka-protocol starts a new batch where offset - sequence
            // changes; without a producer id the sequence means nothing.
            sequence: i as i32,
            timestamp,
            key: None,
            value: Some(Bytes::from(format!("value-{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut out,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode a batch");
    out.freeze()
}
