//! Appends: a producer's batch on the leader, replicated batches on a
//! follower, and the segment rolls they trigger.
//!
//! In: `records` as `Bytes`, straight from the request. The leader path
//! validates the header and CRC ([`crate::batch::validate_produced`]) and
//! walks the records against the header ([`crate::batch::check_produced`],
//! decompressing a compressed batch with a cap), copies
//! only the 61-byte header to stamp the offset, leader epoch and (under
//! LogAppendTime) the timestamp and CRC, and writes header + untouched rest
//! with one writev. A batch from an idempotent producer is first checked
//! against the producer state (`producer_state`): a retry of a recent
//! batch is answered with its original offsets and not written, a sequence
//! gap or stale epoch is refused. The follower path checks each batch's CRC and that the
//! batches continue the log, and writes runs of them with one write each.
//! Out: the bytes in the active segment's file (page cache, no fsync), new
//! index entries in memory, the log end moved, the producer state updated
//! (both paths), a [`LogAppendInfo`]. A transactional batch opens its
//! producer's transaction; a replicated COMMIT or ABORT marker ends it
//! (an ABORT indexed in the segment's `.txnindex`); markers a leader
//! writes itself are appended in `transactions.rs`.

use std::io::IoSlice;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::{self, BatchHeader, HEADER_LEN};
use crate::config::TimestampType;
use crate::error::{io_err, BatchError, LogError};
use crate::partition_log::{LogAppendInfo, PartitionLog, Writer};
use crate::producer_state::{self, BatchMetadata, Checked};
use crate::segment::{AppendedBatch, Segment};
use crate::util::{self, write};

impl PartitionLog {
    /// Appends a producer's batch: validates it, assigns offsets from the
    /// log end, stamps `leader_epoch` (recording a new epoch's start in the
    /// leader-epoch cache), applies LogAppendTime, rolls first if needed,
    /// writes it with one syscall and indexes it. Neither moves the high
    /// watermark nor fsyncs.
    pub fn append_as_leader(
        &self,
        records: Bytes,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<LogAppendInfo, LogError> {
        self.append_as_leader_verified(records, leader_epoch, now_ms, None)
    }

    /// [`append_as_leader`](Self::append_as_leader) for a broker that
    /// verifies transactional writes (KIP-890): a transactional batch that
    /// would open its producer's transaction here needs the `verification`
    /// guard of [`start_txn_verification`](Self::start_txn_verification),
    /// still current, else INVALID_TXN_STATE (`Some(0)`: none was handed
    /// out because the transaction was open; it must still be). With
    /// `None` (`append_as_leader`) nothing is verified.
    pub fn append_as_leader_verified(
        &self,
        records: Bytes,
        leader_epoch: i32,
        now_ms: i64,
        verification: Option<u64>,
    ) -> Result<LogAppendInfo, LogError> {
        let max_message_bytes = self.max_message_bytes.load(Ordering::Relaxed);
        let header = batch::validate_produced(&records, max_message_bytes)?;
        // The records against the header, before the writer lock: a
        // compressed batch is decompressed here (capped), so the caller runs
        // compressed appends off its async workers. Under LogAppendTime the
        // producer's maxTimestamp is replaced below, as Kafka does.
        let summary = batch::check_produced(
            &records,
            &header,
            batch::decompression_limit(max_message_bytes),
            !self.log_append_time.load(Ordering::Relaxed),
        )?;
        // As Kafka: the cleaner would drop a record without a key.
        if summary.keyless > 0 && self.compacted.load(Ordering::Relaxed) {
            return Err(
                BatchError::invalid("Compacted topic cannot accept message without key").into(),
            );
        }
        let mut w = self.writer_for_update()?;
        if let Some(latest) = w.epochs.latest_epoch() {
            if leader_epoch < latest {
                return Err(LogError::FencedLeaderEpoch {
                    epoch: leader_epoch,
                    latest,
                });
            }
        }
        let base_offset = self.log_end.load(Ordering::Acquire);
        if let Checked::Duplicate(original) = w.producers.check(&header, base_offset)? {
            return Ok(self.duplicate_info(&w, original));
        }
        if verification.is_some() {
            w.producers.check_verified(&header, verification)?;
        }
        let mut head = [0u8; HEADER_LEN];
        head.copy_from_slice(&records[..HEADER_LEN]);
        batch::stamp_offset_and_epoch(&mut head, base_offset, leader_epoch);
        let rest = &records[HEADER_LEN..];
        let (max_timestamp, log_append_time) = match w.config.timestamp_type {
            TimestampType::LogAppendTime => {
                batch::stamp_log_append_time(&mut head, rest, now_ms);
                (now_ms, now_ms)
            }
            TimestampType::CreateTime => (header.max_timestamp, -1),
        };
        let appended = AppendedBatch {
            last_offset: base_offset + i64::from(header.last_offset_delta),
            max_timestamp,
            size: records.len() as u64,
        };
        self.maybe_roll(&mut w, &appended, now_ms)?;
        if w.epochs.assign(leader_epoch, base_offset) {
            w.epochs.persist()?;
        }
        self.write_batches(
            &mut w,
            &mut [IoSlice::new(&head), IoSlice::new(rest)],
            &[appended],
            now_ms,
        )?;
        w.unflushed_messages += u64::try_from(header.records_count).unwrap_or(0);
        // A produced batch is never a control batch: it completes nothing.
        w.producers.record(
            &BatchHeader {
                base_offset,
                max_timestamp,
                ..header
            },
            None,
        );
        if header.is_transactional() {
            self.publish_txns(&mut w);
        }
        Ok(LogAppendInfo {
            first_offset: base_offset,
            last_offset: appended.last_offset,
            max_timestamp,
            log_append_time,
            log_start_offset: self.log_start_offset(),
            bytes: records.len(),
        })
    }

    /// Appends batches fetched from the leader, which already carry offsets
    /// and epochs: each must pass its CRC and start at or after the end of
    /// the one before it (the first at or after the log end; gaps are
    /// where a compacted leader removed records). A trailing partial batch is
    /// ignored. Updates the leader-epoch cache from the batches.
    pub fn append_as_follower(&self, records: Bytes) -> Result<LogAppendInfo, LogError> {
        let mut found: Vec<(BatchHeader, std::ops::Range<usize>)> = Vec::new();
        let mut all = batch::batches(&records);
        for item in &mut all {
            let (header, range) = item?;
            batch::validate_stored(&records[range.clone()])?;
            found.push((header, range));
        }
        if let Some(tail) = all.partial_tail() {
            tracing::debug!(dir = %self.dir.display(), bytes = tail.len(), "ignoring a partial batch at the end of replicated data");
        }
        let mut w = self.writer_for_update()?;
        let log_end = self.log_end.load(Ordering::Acquire);
        let mut expected = log_end;
        // Offsets only increase; gaps are allowed, as a compacted leader's
        // log has them (Kafka's follower append checks the same).
        for (header, _) in &found {
            if header.base_offset < expected {
                return Err(LogError::NonContiguous {
                    expected,
                    found: header.base_offset,
                });
            }
            expected = header.next_offset();
        }
        let mut epochs_changed = false;
        for (header, _) in &found {
            epochs_changed |= w
                .epochs
                .assign(header.partition_leader_epoch, header.base_offset);
        }
        if epochs_changed {
            w.epochs.persist()?;
        }
        let appended: Vec<AppendedBatch> = found
            .iter()
            .map(|(h, range)| AppendedBatch {
                last_offset: h.last_offset(),
                max_timestamp: h.max_timestamp,
                size: range.len() as u64,
            })
            .collect();
        let now = util::now_ms();
        let mut start = 0;
        while start < appended.len() {
            self.maybe_roll(&mut w, &appended[start], now)?;
            let end = start + run_length(&w, &appended[start..]);
            let bytes = &records[found[start].1.start..found[end - 1].1.end];
            self.write_batches(
                &mut w,
                &mut [IoSlice::new(bytes)],
                &appended[start..end],
                now,
            )?;
            // Before the next roll, whose snapshot must include them. A
            // marker's aborted transaction goes to the active segment,
            // which now holds the marker.
            for (header, range) in &found[start..end] {
                let marker = batch::read_marker(header, &records[range.clone()]);
                let done = w.producers.record(header, marker);
                if header.is_transactional() {
                    self.txn_recorded(&mut w, done)?;
                }
            }
            start = end;
        }
        w.unflushed_messages += found
            .iter()
            .map(|(h, _)| u64::try_from(h.records_count).unwrap_or(0))
            .sum::<u64>();
        Ok(LogAppendInfo {
            first_offset: found.first().map_or(log_end, |(h, _)| h.base_offset),
            last_offset: expected - 1,
            max_timestamp: appended.iter().map(|b| b.max_timestamp).max().unwrap_or(-1),
            log_append_time: -1,
            log_start_offset: self.log_start_offset(),
            bytes: appended.iter().map(|b| b.size as usize).sum(),
        })
    }

    /// The answer to a retried batch: the offsets (and, under
    /// LogAppendTime, the time) it was first appended with.
    fn duplicate_info(&self, w: &Writer, original: BatchMetadata) -> LogAppendInfo {
        let log_append_time = match w.config.timestamp_type {
            TimestampType::LogAppendTime => original.timestamp,
            TimestampType::CreateTime => -1,
        };
        tracing::debug!(dir = %self.dir.display(), first_offset = original.first_offset, "duplicate batch answered with its original offsets");
        LogAppendInfo {
            first_offset: original.first_offset,
            last_offset: original.last_offset,
            max_timestamp: original.timestamp,
            log_append_time,
            log_start_offset: self.log_start_offset(),
            bytes: 0,
        }
    }

    /// Writes `bufs` (whole batches) to the active segment, then publishes
    /// them: indexes, segment size, log end.
    pub(crate) fn write_batches(
        &self,
        w: &mut Writer,
        bufs: &mut [IoSlice<'_>],
        batches: &[AppendedBatch],
        now_ms: i64,
    ) -> Result<(), LogError> {
        let segment = w.active.clone();
        if let Err(e) = segment.write(bufs) {
            if let Err(undo) = segment.undo_write() {
                tracing::error!(
                    file = %segment.log_path().display(), error = %undo,
                    "cannot undo a failed write; the partition log refuses writes until reopened"
                );
                w.offline = true;
            }
            return Err(io_err(segment.log_path())(e));
        }
        let interval = w.config.index_interval_bytes;
        segment.commit(batches, &mut w.bytes_since_index, interval);
        if let Some(last) = batches.last() {
            self.log_end.store(last.last_offset + 1, Ordering::Release);
        }
        w.roll_base_ms.get_or_insert(now_ms);
        Ok(())
    }

    /// Why the active segment must roll before `next` is appended, if it must.
    fn roll_reason(w: &Writer, next: &AppendedBatch, now_ms: i64) -> Option<&'static str> {
        let active = &w.active;
        let size = active.size();
        if size == 0 {
            return None;
        }
        let config = &w.config;
        if size + next.size > config.max_segment_bytes() {
            return Some("segment.bytes");
        }
        if let (Some(ms), Some(since)) = (config.segment_ms, w.roll_base_ms) {
            if now_ms.saturating_sub(since) > i64::try_from(ms).unwrap_or(i64::MAX) {
                return Some("segment.ms");
            }
        }
        let (offsets, times) = active.index_entries();
        if offsets >= config.max_offset_index_entries() || times >= config.max_time_index_entries()
        {
            return Some("segment.index.bytes");
        }
        if next.last_offset - active.base_offset() > i64::from(i32::MAX) {
            return Some("relative offsets would overflow");
        }
        None
    }

    pub(crate) fn maybe_roll(
        &self,
        w: &mut Writer,
        next: &AppendedBatch,
        now_ms: i64,
    ) -> Result<(), LogError> {
        match Self::roll_reason(w, next, now_ms) {
            Some(reason) => self.roll(w, reason),
            None => Ok(()),
        }
    }

    /// Seals the active segment (its fsync is deferred to the next flush)
    /// and starts a new one at the log end.
    pub(crate) fn roll(&self, w: &mut Writer, reason: &str) -> Result<(), LogError> {
        let base = self.log_end.load(Ordering::Acquire);
        let old = w.active.clone();
        old.seal()?;
        let new = Arc::new(Segment::create(&self.dir, base)?);
        {
            let mut list = write(&self.segments);
            let mut next = Vec::with_capacity(list.len() + 1);
            next.extend(list.iter().cloned());
            next.push(new.clone());
            *list = Arc::new(next);
        }
        w.pending_sync.push(old);
        w.dir_dirty = true;
        // Everything below `base` is in the state: the next open reads from here.
        if let Err(e) = producer_state::snapshot::write(&self.dir, base, &w.producers) {
            tracing::warn!(dir = %self.dir.display(), base, error = %e, "cannot write a producer-state snapshot; the next open reads further back");
        }
        w.active = new;
        w.bytes_since_index = 0;
        w.roll_base_ms = None;
        tracing::debug!(dir = %self.dir.display(), base, reason, "rolled a new segment");
        Ok(())
    }
}

/// How many of `batches` (at least one) fit in the active segment together.
fn run_length(w: &Writer, batches: &[AppendedBatch]) -> usize {
    let active = &w.active;
    let limit = w.config.max_segment_bytes();
    let (offsets, times) = active.index_entries();
    let index_room = w
        .config
        .max_offset_index_entries()
        .saturating_sub(offsets)
        .min(w.config.max_time_index_entries().saturating_sub(times));
    let mut size = active.size() + batches[0].size;
    let mut count = 1;
    for b in &batches[1..] {
        let fits = size + b.size <= limit
            && b.last_offset - active.base_offset() <= i64::from(i32::MAX)
            && count < index_room;
        if !fits {
            break;
        }
        size += b.size;
        count += 1;
    }
    count
}
