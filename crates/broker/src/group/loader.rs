//! Loading a `__consumer_offsets` partition when this broker becomes its
//! leader: every record from the log start to the log end is read back,
//! decoded (kraft-log's bounded `batch::for_each_record`, the decoder every
//! reader of stored batches shares) and replayed in order,
//! so the last group metadata and offset commit of each key win and
//! tombstones delete. Offsets written in a transaction stay pending until
//! its COMMIT or ABORT marker, read back in the same pass.
//!
//! In: the partition (its log is read directly: as the new leader, all of
//! it is this partition's truth). Out: the [`ShardData`] to serve from, or
//! a [`LoadError`]. Blocking (disk reads): run it off the runtime. A
//! record whose key or value does not decode is logged and skipped (it may
//! come from a newer Kafka); a batch that does not parse or whose records
//! do not match its header is an error, never a crash: its count is bounded
//! by its bytes and its decompression by the log's cap.

use std::ops::ControlFlow;

use kraft_log::batch::{for_each_record, read_marker};
use kraft_log::{BatchHeader, LogError, ReadBound, TxnMarker};

use super::records::CoordinatorRecord;
use super::shard_data::ShardData;
use super::state::GroupTimings;
use crate::replica::Partition;

/// How much of the log one read brings in.
const LOAD_CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// Why a partition could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading {partition} at offset {offset}: {source}")]
    Read {
        partition: String,
        offset: i64,
        #[source]
        source: LogError,
    },
    #[error("{partition}: the batch at offset {offset} does not decode: {reason}")]
    Batch {
        partition: String,
        offset: i64,
        reason: String,
    },
}

/// Reads `partition` from its log start to its log end and replays every
/// coordinator record and transaction marker, at time `now`.
pub fn load(
    partition: &Partition,
    timings: GroupTimings,
    now: i64,
) -> Result<(ShardData, LoadStats), LoadError> {
    let name = format!("{}-{}", partition.topic(), partition.index());
    let mut data = ShardData::default();
    let mut stats = LoadStats::default();
    stats.end_offset = read_entries(partition, |entry| match entry {
        LogEntry::Record {
            offset,
            key,
            value,
            transaction,
        } => match CoordinatorRecord::decode(key, value) {
            Ok(decoded) => {
                stats.records += 1;
                match transaction {
                    Some(producer_id) => {
                        data.replay_transactional(producer_id, decoded, offset, timings, now)
                    }
                    None => data.replay(decoded, offset, timings, now),
                }
            }
            Err(e) => {
                stats.skipped += 1;
                tracing::warn!(partition = %name, offset, error = %e, "skipping a coordinator record that does not decode");
            }
        },
        LogEntry::Marker {
            offset,
            producer_id,
            commit,
        } => data.complete_txn(producer_id, commit, offset),
    })?;
    Ok((data, stats))
}

/// One thing read back from a coordinator partition.
#[derive(Debug)]
pub enum LogEntry<'a> {
    /// A keyed record of a data batch (`value` `None`: a tombstone);
    /// `transaction` is the producer id of a transactional batch.
    Record {
        offset: i64,
        key: &'a [u8],
        value: Option<&'a [u8]>,
        transaction: Option<i64>,
    },
    /// A COMMIT (`commit`) or ABORT marker of a producer's transaction.
    Marker {
        offset: i64,
        producer_id: i64,
        commit: bool,
    },
}

/// Calls `each` with the offset, key and value (`None`: a tombstone) of
/// every keyed record of `partition`'s data batches, from its log start to
/// its log end, in order, transactional or not; control batches are
/// skipped. Returns the offset reached.
pub fn read_records(
    partition: &Partition,
    mut each: impl FnMut(i64, &[u8], Option<&[u8]>),
) -> Result<i64, LoadError> {
    read_entries(partition, |entry| {
        if let LogEntry::Record {
            offset, key, value, ..
        } = entry
        {
            each(offset, key, value);
        }
    })
}

/// Calls `each` with every [`LogEntry`] of `partition`, from its log start
/// to its log end, in order. Returns the offset reached. Both coordinators
/// load their partitions with it.
pub fn read_entries(
    partition: &Partition,
    mut each: impl FnMut(LogEntry<'_>),
) -> Result<i64, LoadError> {
    let name = format!("{}-{}", partition.topic(), partition.index());
    let log = partition.log();
    let end = log.log_end_offset();
    let mut offset = log.log_start_offset();
    let limit = log.decompression_limit();
    while offset < end {
        let read = log
            .read(offset, LOAD_CHUNK_BYTES, ReadBound::LogEnd, true)
            .map_err(|source| LoadError::Read {
                partition: name.clone(),
                offset,
                source,
            })?;
        if read.records.is_empty() {
            break;
        }
        let bytes = read.records;
        let mut pos = 0;
        while pos < bytes.len() {
            let bad = |reason: String| LoadError::Batch {
                partition: name.clone(),
                offset,
                reason,
            };
            let header = BatchHeader::parse(&bytes[pos..]).map_err(|e| bad(e.to_string()))?;
            let size = header.size();
            if size == 0 || pos + size > bytes.len() {
                return Err(bad(format!("a {size}-byte batch runs past the read")));
            }
            let batch = bytes.slice(pos..pos + size);
            pos += size;
            if header.next_offset() <= offset {
                continue;
            }
            if header.is_control() {
                if let Some(marker) = read_marker(&header, &batch) {
                    each(LogEntry::Marker {
                        offset: header.base_offset,
                        producer_id: header.producer_id,
                        commit: marker.marker == TxnMarker::Commit,
                    });
                }
            } else {
                let from = offset;
                let transaction = header.is_transactional().then_some(header.producer_id);
                for_each_record(&batch, limit, true, |record| {
                    if record.offset < from {
                        return ControlFlow::Continue(());
                    }
                    if let Some(key) = record.key {
                        each(LogEntry::Record {
                            offset: record.offset,
                            key: &key,
                            value: record.value.as_deref(),
                            transaction,
                        });
                    }
                    ControlFlow::Continue(())
                })
                .map_err(|e| bad(e.to_string()))?;
            }
            offset = header.next_offset();
        }
    }
    Ok(offset)
}

/// What a load read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadStats {
    pub records: u64,
    pub skipped: u64,
    /// The offset the load reached.
    pub end_offset: i64,
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use bytes::{BufMut, BytesMut};
    use kraft_log::{LogConfig, PartitionLog};
    use uuid::Uuid;

    use super::*;
    use crate::replica::log_config::PartitionSettings;

    /// A 61-byte batch at offset 0 claiming 2^31-1 records, CRC correct:
    /// what a client could once produce into `__consumer_offsets`.
    fn claims_2_pow_31_records() -> bytes::Bytes {
        let mut b = BytesMut::new();
        b.put_i64(0);
        b.put_i32(49);
        b.put_i32(0);
        b.put_i8(2);
        b.put_u32(0);
        b.put_i16(0);
        b.put_i32(i32::MAX - 1);
        b.put_i64(1_000);
        b.put_i64(1_000);
        b.put_i64(-1);
        b.put_i16(-1);
        b.put_i32(-1);
        b.put_i32(i32::MAX);
        let crc = kraft_log::batch::compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b.freeze()
    }

    #[test]
    fn a_stored_batch_claiming_2_pow_31_records_is_an_error_not_an_abort() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = PartitionLog::open(
            &dir.path().join("__consumer_offsets-0"),
            LogConfig::default(),
        )
        .expect("open the log");
        log.append_as_follower(claims_2_pow_31_records())
            .expect("a replica stores what its leader sent");
        let partition = Partition::new(
            Uuid::new_v4(),
            "__consumer_offsets".into(),
            0,
            1,
            log,
            PartitionSettings {
                log: LogConfig::default(),
                min_insync_replicas: 1,
                timestamp_after_max_ms: i64::MAX / 2,
            },
            Arc::new(AtomicBool::new(true)),
        );
        match load(&partition, GroupTimings::default(), 0) {
            Err(LoadError::Batch {
                offset: 0, reason, ..
            }) => {
                assert!(reason.contains("recordsCount 2147483647"), "{reason}")
            }
            other => panic!("expected a batch error, got {other:?}"),
        }
    }
}
