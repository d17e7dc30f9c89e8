//! Retention: deleting whole old segments by `retention.ms` and
//! `retention.bytes`, as Kafka's log manager does.
//!
//! In: the current time from the broker's periodic task. Out: fewer
//! segments, a later log start offset (the leader-epoch cache trimmed to
//! it), and the count deleted. The active segment is never deleted, nor
//! any segment holding an offset at or above the high watermark.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use crate::error::LogError;
use crate::partition_log::{PartitionLog, Writer};
use crate::producer_state;
use crate::segment::Segment;
use crate::util::{lock, write};

impl PartitionLog {
    /// Deletes the oldest sealed segments whose newest timestamp is older
    /// than `retention.ms`, then the oldest while the log is larger than
    /// `retention.bytes` by at least their size. Returns how many went.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<usize, LogError> {
        let _swap = lock(&self.swap_lock);
        let mut w = self.writer();
        if w.closed || w.offline {
            return Ok(0);
        }
        let segments = self.segment_list();
        let high_watermark = self.high_watermark();
        let sealed = segments.len().saturating_sub(1);
        let deletable = |i: usize| i < sealed && segments[i + 1].base_offset() <= high_watermark;
        let mut count = 0;
        if let Some(retention_ms) = w.config.retention_ms {
            while deletable(count)
                && now_ms.saturating_sub(newest_timestamp(&segments[count])) > retention_ms
            {
                count += 1;
            }
        }
        if let Some(retention_bytes) = w.config.retention_bytes {
            let total: u64 = segments[count..].iter().map(|s| s.size()).sum();
            let mut excess = i128::from(total) - i128::from(retention_bytes);
            while deletable(count) && excess - i128::from(segments[count].size()) >= 0 {
                excess -= i128::from(segments[count].size());
                count += 1;
            }
        }
        if count > 0 {
            self.delete_oldest(&mut w, &segments, count)?;
        }
        Ok(count)
    }

    /// Removes `segments[..count]` and moves the log start to the next one.
    fn delete_oldest(
        &self,
        w: &mut Writer,
        segments: &[Arc<Segment>],
        count: usize,
    ) -> Result<(), LogError> {
        let new_start = segments[count].base_offset();
        *write(&self.segments) = Arc::new(segments[count..].to_vec());
        let log_start = self
            .log_start
            .fetch_max(new_start, Ordering::AcqRel)
            .max(new_start);
        self.high_watermark.fetch_max(log_start, Ordering::AcqRel);
        w.recovery_point = w.recovery_point.max(log_start);
        w.pending_sync.retain(|s| s.base_offset() >= new_start);
        w.dir_dirty = true;
        if w.epochs.truncate_from_start(log_start) {
            w.epochs.persist()?;
        }
        for segment in &segments[..count] {
            segment.delete_files()?;
        }
        // Later snapshots still hold the deleted segments' producers (KIP-360).
        producer_state::snapshot::delete_below(&self.dir, new_start)?;
        tracing::info!(dir = %self.dir.display(), deleted = count, log_start, "deleted segments past retention");
        Ok(())
    }
}

/// The segment's largest timestamp; without any, its file's modification
/// time (as Kafka does); if even that is unknown, never old.
fn newest_timestamp(segment: &Segment) -> i64 {
    let (timestamp, _) = segment.max_timestamp();
    if timestamp >= 0 {
        return timestamp;
    }
    std::fs::metadata(segment.log_path())
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(i64::MAX)
}
