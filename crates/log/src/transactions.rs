//! Transactions on a partition log: COMMIT and ABORT markers appended by
//! the leader, the last stable offset, the open transactions and the
//! aborted transactions a read_committed fetch must be told about.
//!
//! In: [`PartitionLog::append_marker`] from the broker's WriteTxnMarkers
//! handler (the partition's leader); the transactional batches and markers
//! the append paths record in the producer state (`producer_state`), which
//! then publish its unstable transactions here ([`PartitionLog::publish_txns`]).
//! Out: [`PartitionLog::last_stable_offset`] (Kafka's LSO: the high
//! watermark, or the first offset of the earliest transaction that is open
//! or whose marker the high watermark has not passed, whichever is lower);
//! [`PartitionLog::aborted_transactions`] from the segments' `.txnindex`
//! files (`txn_index.rs`); [`PartitionLog::ongoing_transactions`] for the
//! transaction coordinator and admin APIs. The LSO moves only when the high
//! watermark does (a marker is stable once the high watermark passes it),
//! so waiting on the high watermark is enough to see it move.

use std::io::IoSlice;
use std::sync::atomic::Ordering;

use crate::batch::{self, BatchHeader, MarkerRecord, TxnMarker, HEADER_LEN};
use crate::error::LogError;
use crate::partition_log::{LogAppendInfo, PartitionLog, Writer};
use crate::producer_state::{first_unstable, CompletedTxn, ProducerEntry};
use crate::segment::AppendedBatch;
use crate::txn_index::AbortedTxn;
use crate::util::lock;

impl PartitionLog {
    /// Appends a COMMIT or ABORT marker for `producer_id` as leader, in
    /// `leader_epoch`: a control batch with the producer's id and epoch and
    /// the coordinator's epoch (see `batch::control_batch`). Refused with
    /// INVALID_PRODUCER_EPOCH when `producer_epoch` is older than the one
    /// the log knows for it, TRANSACTION_COORDINATOR_FENCED when
    /// `coordinator_epoch` is older than its last marker's, and
    /// FENCED_LEADER_EPOCH as produce is. An ABORT of an open transaction
    /// is indexed in the active segment's `.txnindex`. Neither moves the
    /// high watermark nor fsyncs.
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        marker: TxnMarker,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<LogAppendInfo, LogError> {
        let mut w = self.writer_for_update()?;
        if let Some(latest) = w.epochs.latest_epoch() {
            if leader_epoch < latest {
                return Err(LogError::FencedLeaderEpoch {
                    epoch: leader_epoch,
                    latest,
                });
            }
        }
        w.producers
            .check_marker(producer_id, producer_epoch, coordinator_epoch)?;
        let records = batch::control_batch(
            producer_id,
            producer_epoch,
            coordinator_epoch,
            marker,
            now_ms,
        );
        let base_offset = self.log_end.load(Ordering::Acquire);
        let mut head = [0u8; HEADER_LEN];
        head.copy_from_slice(&records[..HEADER_LEN]);
        batch::stamp_offset_and_epoch(&mut head, base_offset, leader_epoch);
        let header = BatchHeader::parse(&head)?;
        let appended = AppendedBatch {
            last_offset: base_offset,
            max_timestamp: now_ms,
            size: records.len() as u64,
        };
        self.maybe_roll(&mut w, &appended, now_ms)?;
        if w.epochs.assign(leader_epoch, base_offset) {
            w.epochs.persist()?;
        }
        self.write_batches(
            &mut w,
            &mut [IoSlice::new(&head), IoSlice::new(&records[HEADER_LEN..])],
            &[appended],
            now_ms,
        )?;
        w.unflushed_messages += 1;
        let done = w.producers.record(
            &header,
            Some(MarkerRecord {
                marker,
                coordinator_epoch,
            }),
        );
        self.txn_recorded(&mut w, done)?;
        Ok(LogAppendInfo {
            first_offset: base_offset,
            last_offset: base_offset,
            max_timestamp: now_ms,
            log_append_time: -1,
            log_start_offset: self.log_start_offset(),
            bytes: records.len(),
        })
    }

    /// After the producer state recorded a batch of a transaction: indexes
    /// an aborted one in the active segment (which holds its marker) and
    /// publishes the unstable transactions.
    pub(crate) fn txn_recorded(
        &self,
        w: &mut Writer,
        done: Option<CompletedTxn>,
    ) -> Result<(), LogError> {
        if let Some(done) = done.filter(|d| d.aborted) {
            w.active.push_aborted(AbortedTxn::from(done))?;
        }
        self.publish_txns(w);
        Ok(())
    }

    /// Copies the producer state's unstable transactions (those the high
    /// watermark made stable dropped) to where fetches read them.
    pub(crate) fn publish_txns(&self, w: &mut Writer) {
        w.producers.prune_stable(self.high_watermark());
        *lock(&self.unstable) = w.producers.unstable();
    }

    /// Kafka's last stable offset: see the module docs.
    pub fn last_stable_offset(&self) -> i64 {
        self.last_stable_offset_at(self.high_watermark().min(self.log_end_offset()))
    }

    pub(crate) fn last_stable_offset_at(&self, high_watermark: i64) -> i64 {
        let first = first_unstable(lock(&self.unstable).iter(), high_watermark);
        first
            .map_or(high_watermark, |f| f.min(high_watermark))
            .max(self.log_start_offset().min(high_watermark))
    }

    /// The next sequence a producer's batch at `epoch` must start at: 0 for
    /// an unknown producer or a new epoch. A coordinator writing
    /// transactional records on its own partition (TxnOffsetCommit) uses it,
    /// so its batches pass the same checks as a producer's.
    pub fn next_sequence(&self, producer_id: i64, epoch: i16) -> i32 {
        let w = self.writer();
        match w.producers.get(producer_id) {
            Some(entry) if entry.epoch == epoch => entry
                .last_seq()
                .map_or(0, |last| crate::producer_state::last_sequence(last, 1)),
            _ => 0,
        }
    }

    /// Starts verifying a transactional write of `producer_id` (KIP-890,
    /// see `producer_state::verification`): `None` if its transaction is
    /// open here already, else the guard for
    /// [`append_as_leader_verified`](Self::append_as_leader_verified).
    pub fn start_txn_verification(&self, producer_id: i64) -> Option<u64> {
        self.writer().producers.start_verification(producer_id)
    }

    /// The open transactions as `(producer id, first offset)`, by offset.
    pub fn ongoing_transactions(&self) -> Vec<(i64, i64)> {
        lock(&self.unstable)
            .iter()
            .filter(|t| t.marker.is_none())
            .map(|t| (t.producer_id, t.first_offset))
            .collect()
    }

    /// Every producer the log keeps state for, with its entry, by producer
    /// id (Kafka's `activeProducers`, what DescribeProducers answers).
    pub fn active_producers(&self) -> Vec<(i64, ProducerEntry)> {
        let w = self.writer();
        let mut producers: Vec<(i64, ProducerEntry)> =
            w.producers.iter().map(|(id, e)| (id, e.clone())).collect();
        drop(w);
        producers.sort_by_key(|(id, _)| *id);
        producers
    }

    /// The aborted transactions that overlap `[from, upper)`: whose marker
    /// is at or after `from` and whose first offset is before `upper`, in
    /// marker order, from the `.txnindex` of the segment holding `from` and
    /// those after it, as far as Kafka's completeness rule needs.
    pub fn aborted_transactions(&self, from: i64, upper: i64) -> Vec<AbortedTxn> {
        let mut out = Vec::new();
        if upper <= from {
            return out;
        }
        let segments = self.segment_list();
        let first = segments
            .partition_point(|s| s.base_offset() <= from)
            .saturating_sub(1);
        for segment in &segments[first..] {
            if segment.collect_aborted(from, upper, &mut out) {
                break;
            }
        }
        out
    }
}
