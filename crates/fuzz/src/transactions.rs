//! The `txn_index` target: a segment's `.txnindex` file (aborted
//! transactions) as found on disk, beside a log that was closed cleanly
//! with one aborted and one open transaction. The partition log must read
//! it or rebuild it from the segment at open, then answer read_committed
//! questions (aborted transactions, last stable offset, a read up to it)
//! without panicking or allocating without bound.
//!
//! In: any bytes, written over the first segment's `.txnindex`. Out:
//! nothing.

use kraft_log::{LogConfig, PartitionLog, ReadBound, TxnMarker};

use crate::batches::transactional_batch;

const FIRST_TXN_INDEX: &str = "00000000000000000000.txnindex";

/// A closed log in `dir`: producer 1 aborted, producer 2 still open.
fn closed_log(dir: &std::path::Path) -> Option<()> {
    let log = PartitionLog::open(dir, LogConfig::default()).ok()?;
    log.append_as_leader(transactional_batch(2, 1, 0, 0).into(), 0, 0)
        .ok()?;
    log.append_as_leader(transactional_batch(1, 2, 0, 0).into(), 0, 0)
        .ok()?;
    log.append_marker(1, 0, 0, TxnMarker::Abort, 0, 0).ok()?;
    log.set_high_watermark(log.log_end_offset());
    log.close().ok()
}

pub fn txn_index(data: &[u8]) {
    let Some(dir) = crate::segments::scratch_dir() else {
        return;
    };
    if closed_log(dir.path()).is_none() {
        return;
    }
    if std::fs::write(dir.path().join(FIRST_TXN_INDEX), data).is_err() {
        return;
    }
    let Ok(log) = PartitionLog::open(dir.path(), LogConfig::default()) else {
        return;
    };
    let end = log.log_end_offset();
    let _ = log.aborted_transactions(0, end);
    let _ = log.aborted_transactions(i64::MIN, i64::MAX);
    let _ = log.ongoing_transactions();
    let _ = log.read(0, 1 << 20, ReadBound::LastStable, true);
}

/// The index a clean close leaves for that log.
pub fn txn_index_seeds() -> Vec<Vec<u8>> {
    let Ok(dir) = tempfile::tempdir() else {
        return Vec::new();
    };
    if closed_log(dir.path()).is_none() {
        return Vec::new();
    }
    std::fs::read(dir.path().join(FIRST_TXN_INDEX))
        .map(|b| vec![b])
        .unwrap_or_default()
}
