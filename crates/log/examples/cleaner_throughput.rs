//! Cleaner throughput: a log of `--mib` MiB (default 1024) of 100-byte
//! values whose keys repeat so that 10% of the records are each key's
//! latest, cleaned in one pass; prints the bytes and MB/s read and
//! written. Prints figures, asserts nothing.
//!
//! `cargo run --release -p kraft-log --example cleaner_throughput -- [--mib N] [--dir D]`
//! (`--dir`: where the log goes, default a temp dir; compare with the
//! disk's sequential speed, e.g. `dd ... oflag=direct` and `iflag=direct`).

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kraft_log::{CompactionConfig, LogConfig, PartitionLog};

const RECORDS_PER_BATCH: usize = 100;
const VALUE_BYTES: usize = 100;

fn batch(first: u64, unique: u64) -> Bytes {
    let records: Vec<Record> = (0..RECORDS_PER_BATCH as u64)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // Consecutive, or the encoder starts a new batch.
            sequence: i as i32,
            timestamp: 1_000,
            key: Some(Bytes::from(format!("key-{:012}", (first + i) % unique))),
            value: Some(Bytes::from(vec![b'v'; VALUE_BYTES])),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode");
    buf.freeze()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let mib: u64 = arg("--mib").map_or(1024, |v| v.parse().expect("--mib N"));
    let temp = tempfile::tempdir_in(arg("--dir").unwrap_or_else(|| "/tmp".into())).expect("dir");
    let config = LogConfig {
        segment_bytes: 64 << 20,
        retention_ms: None,
        ..LogConfig::default()
    };
    let log = PartitionLog::open(&temp.path().join("t-0"), config).expect("open");
    let batch_bytes = batch(0, 1).len() as u64;
    let batches = (mib << 20) / batch_bytes;
    let records = batches * RECORDS_PER_BATCH as u64;
    let unique = records / 10;
    let started = Instant::now();
    for b in 0..batches {
        log.append_as_leader(batch(b * RECORDS_PER_BATCH as u64, unique), 0, 1_000)
            .expect("append");
    }
    log.flush().expect("flush");
    let write_secs = started.elapsed().as_secs_f64();
    log.set_high_watermark(log.log_end_offset());
    let size = log.size_in_bytes();
    println!(
        "log: {} MiB, {records} records, {unique} keys, {} segments; appended and fsynced at {:.0} MB/s",
        size >> 20,
        log.segment_count(),
        size as f64 / 1e6 / write_secs
    );
    let started = Instant::now();
    let stats = log
        .clean(&CompactionConfig::default(), 10_000, &mut |_| {})
        .expect("clean")
        .expect("a pass");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "cleaned {} segments: {} MiB -> {} MiB in {secs:.2} s: {:.0} MB/s read (map of {} keys, {} MiB)",
        stats.segments,
        stats.bytes_before >> 20,
        stats.bytes_after >> 20,
        stats.bytes_before as f64 / 1e6 / secs,
        stats.keys,
        stats.map_bytes >> 20,
    );
    println!(
        "(the map pass reads the dirty range once more: {:.0} MB/s counting both reads)",
        2.0 * stats.bytes_before as f64 / 1e6 / secs
    );
}
