//! Unit tests of the crate, by concern. Batches are built with
//! `kafka_protocol`'s `RecordBatchEncoder` (every compression codec) or by
//! hand; logs live in temporary directories.

mod append_read;
mod batch_validation;
mod compaction;
mod compaction_swap;
mod compaction_txn;
mod concurrency;
mod failed_fsync;
mod hostile_records;
mod idempotence;
mod recovery;
mod replication;
mod retention;
mod timestamps;
mod transactions;
mod unflushed_tail;

use std::path::Path;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
    TimestampType as RecordTimestampType,
};

use crate::batch::{self, BatchHeader};
use crate::{LogConfig, PartitionLog, ReadBound};

pub(crate) const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

pub(crate) fn record(offset: i64, timestamp: i64, value: Vec<u8>) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: RecordTimestampType::Creation,
        offset,
        sequence: offset as i32,
        timestamp,
        key: None,
        value: Some(Bytes::from(value)),
        headers: Default::default(),
    }
}

pub(crate) fn encode(records: &[Record], compression: Compression) -> Bytes {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode");
    buf.freeze()
}

/// One batch with a record per timestamp; values are `tag-i` padded to `value_len`.
pub(crate) fn batch_with(
    timestamps: &[i64],
    tag: &str,
    value_len: usize,
    compression: Compression,
) -> Bytes {
    let records: Vec<Record> = timestamps
        .iter()
        .enumerate()
        .map(|(i, &ts)| {
            let mut value = format!("{tag}-{i}").into_bytes();
            value.resize(value_len.max(value.len()), b'.');
            record(i as i64, ts, value)
        })
        .collect();
    encode(&records, compression)
}

/// One batch of `count` records from idempotent producer `pid`/`epoch`,
/// its first at sequence `seq`.
pub(crate) fn idempotence_batch(pid: i64, epoch: i16, seq: i32, count: i32) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| {
            let mut r = record(
                i64::from(i),
                1_000,
                format!("p{pid}-{}", seq + i).into_bytes(),
            );
            r.producer_id = pid;
            r.producer_epoch = epoch;
            r.sequence = seq + i;
            r
        })
        .collect();
    encode(&records, Compression::None)
}

/// One uncompressed batch of `count` records stamped `timestamp`.
pub(crate) fn simple_batch(count: usize, timestamp: i64, value_len: usize) -> Bytes {
    batch_with(&vec![timestamp; count], "v", value_len, Compression::None)
}

pub(crate) fn decode(bytes: &Bytes) -> Vec<Record> {
    let mut buf = bytes.clone();
    RecordBatchDecoder::decode_all(&mut buf)
        .expect("decode")
        .into_iter()
        .flat_map(|set| set.records)
        .collect()
}

/// Small segments and dense indexes, so that tests cross rolls and index entries.
pub(crate) fn small_config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 100,
        ..LogConfig::default()
    }
}

pub(crate) fn open(dir: &Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config).expect("open")
}

/// Every batch from `from` up to `bound`, checking they are whole and contiguous.
pub(crate) fn read_all(
    log: &PartitionLog,
    from: i64,
    bound: ReadBound,
) -> Vec<(BatchHeader, Bytes)> {
    let mut out: Vec<(BatchHeader, Bytes)> = Vec::new();
    let mut offset = from;
    loop {
        let result = log.read(offset, 64 * 1024, bound, true).expect("read");
        if result.records.is_empty() {
            break;
        }
        let mut batches = batch::batches(&result.records);
        for item in &mut batches {
            let (header, range) = item.expect("whole batch");
            batch::validate_stored(&result.records[range.clone()]).expect("valid batch");
            if let Some((prev, _)) = out.last() {
                assert_eq!(
                    header.base_offset,
                    prev.next_offset(),
                    "batches are contiguous"
                );
            }
            offset = header.next_offset();
            out.push((header, result.records.slice(range)));
        }
        assert!(
            batches.partial_tail().is_none(),
            "reads return whole batches only"
        );
    }
    out
}

/// Appends `count` batches of `records_per_batch` records, timestamps from `ts`.
pub(crate) fn fill(
    log: &PartitionLog,
    count: usize,
    records_per_batch: usize,
    ts: i64,
    epoch: i32,
) {
    for i in 0..count {
        log.append_as_leader(
            simple_batch(records_per_batch, ts + i as i64, 40),
            epoch,
            ts + i as i64,
        )
        .expect("append");
    }
}

/// The `.log` files in `dir`, sorted.
pub(crate) fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}
