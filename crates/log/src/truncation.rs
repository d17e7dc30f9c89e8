//! Truncation for replication: cutting the log back to a divergence point
//! (`truncate_to`) or replacing it with an empty log at a new start
//! (`truncate_fully_and_start_at`).
//!
//! In: the offset the replica fetcher computed from OffsetsForLeaderEpoch.
//! Out: segments deleted or cut (and fsynced, so cut data cannot come back
//! after a power loss), the log end, high watermark and recovery point
//! lowered (the recovery point saved at once), leader-epoch entries and
//! the producer state rebuilt as of the cut (transactions whose marker was
//! cut are open again; the cut markers leave the `.txnindex`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::{io_err, LogError};
use crate::partition_log::{PartitionLog, Writer};
use crate::producer_state::{self, ProducerStates};
use crate::segment::Segment;
use crate::state_file::PartitionState;
use crate::util::{lock, sync_dir, write};

impl PartitionLog {
    /// Removes everything at and after `offset`. A batch holding `offset`
    /// goes whole (as in Kafka), so the log end becomes that batch's base
    /// offset. Below the log start, the whole log goes and restarts at `offset`.
    pub fn truncate_to(&self, offset: i64) -> Result<(), LogError> {
        let _swap = lock(&self.swap_lock);
        let mut w = self.writer_for_update()?;
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        let segments = self.segment_list();
        let keep = segments.partition_point(|s| s.base_offset() <= offset);
        if offset < self.log_start_offset() || keep == 0 {
            return self.start_over(&mut w, offset);
        }
        let target = segments[keep - 1].clone();
        let (position, new_end) = match target.find_batch(offset, target.size())? {
            Some((position, header)) => (position, header.base_offset.min(offset)),
            None => (target.size(), offset),
        };
        // Snapshots of cut batches go first, so a crash cannot leave one.
        producer_state::snapshot::delete_above(&self.dir, new_end)?;
        self.cleaner_on_truncation(new_end)?;
        // Readers stop short of what goes before it goes.
        self.log_end.store(new_end, Ordering::Release);
        self.high_watermark.fetch_min(new_end, Ordering::AcqRel);
        self.log_start.fetch_min(new_end, Ordering::AcqRel);
        *write(&self.segments) = Arc::new(segments[..keep].to_vec());
        let cut = segments[keep..]
            .iter()
            .try_for_each(|s| s.delete_files())
            .and_then(|()| target.truncate_to(position, new_end));
        if let Err(e) = cut {
            w.offline = true;
            return Err(e);
        }
        w.dir_dirty |= keep < segments.len();
        w.pending_sync
            .retain(|s| s.base_offset() < target.base_offset());
        w.active = target.clone();
        w.bytes_since_index = 0;
        w.roll_base_ms = target.roll_base_ms()?;
        if w.recovery_point > new_end {
            // Saved at once: batches appended at `new_end..` are not flushed,
            // and recovery cuts an invalid tail only past the saved point.
            w.recovery_point = new_end;
            PartitionState {
                high_watermark: self.high_watermark(),
                log_start_offset: self.log_start_offset(),
                recovery_point: new_end,
                clean_shutdown: false,
            }
            .write(&self.dir)?;
        }
        // As Kafka's truncateAndReload: the latest snapshot at or below the
        // cut and the batches after it (a cut marker reopens its
        // transaction, a cut first batch forgets it).
        w.producers = producer_state::rebuild(&self.dir, &self.segment_list(), new_end)?;
        self.publish_txns(&mut w);
        if w.epochs.truncate_from_end(new_end) {
            w.epochs.persist()?;
        }
        tracing::info!(dir = %self.dir.display(), offset, log_end = new_end, "truncated log");
        Ok(())
    }

    /// Deletes every segment and restarts the log, empty, at `offset` (a
    /// follower whose log lies wholly outside the leader's).
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<(), LogError> {
        let _swap = lock(&self.swap_lock);
        let mut w = self.writer_for_update()?;
        self.start_over(&mut w, offset)
    }

    fn start_over(&self, w: &mut Writer, offset: i64) -> Result<(), LogError> {
        let old = self.segment_list();
        producer_state::snapshot::delete_above(&self.dir, i64::MIN)?;
        self.cleaner_on_truncation(offset)?;
        self.log_end.store(offset, Ordering::Release);
        self.log_start.store(offset, Ordering::Release);
        self.high_watermark.store(offset, Ordering::Release);
        let fresh = old
            .iter()
            .try_for_each(|s| s.delete_files())
            .and_then(|()| Segment::create(&self.dir, offset));
        let segment = match fresh {
            Ok(segment) => Arc::new(segment),
            Err(e) => {
                w.offline = true;
                return Err(e);
            }
        };
        *write(&self.segments) = Arc::new(vec![segment.clone()]);
        w.active = segment;
        w.pending_sync.clear();
        w.bytes_since_index = 0;
        w.roll_base_ms = None;
        w.unflushed_messages = 0;
        w.recovery_point = offset;
        w.producers = ProducerStates::new();
        self.publish_txns(w);
        if w.epochs.clear() {
            w.epochs.persist()?;
        }
        sync_dir(&self.dir).map_err(io_err(&self.dir))?;
        w.dir_dirty = false;
        PartitionState {
            high_watermark: offset,
            log_start_offset: offset,
            recovery_point: offset,
            clean_shutdown: false,
        }
        .write(&self.dir)?;
        tracing::info!(dir = %self.dir.display(), offset, "replaced the log with an empty one");
        Ok(())
    }
}
