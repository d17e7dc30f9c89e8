//! The log cleaner: compaction of a partition log (`cleanup.policy=compact`),
//! keeping each key's latest record at its original offset, as Kafka's
//! `LogCleaner` does.
//!
//! In: [`PartitionLog::cleanable`] tells a scheduler how dirty a log is;
//! [`PartitionLog::clean`] runs one pass with a [`CompactionConfig`] and
//! the current time (the caller's clock, so tests inject it). Out: the log
//! with its sealed segments below the cleaned offset rewritten, a
//! [`CleanStats`], and the cleaner checkpoint (`state.rs`) moved.
//!
//! A pass:
//! 1. Under the writer lock, briefly: a snapshot of the segments, the
//!    producers' last batches, and the cleanable range: from the
//!    checkpoint (the first dirty offset) to the first uncleanable offset,
//!    the least of the active segment's base, the last stable offset and
//!    the base of the first segment younger than `min.compaction.lag.ms`.
//! 2. Without the lock (`clean.rs`): the dirty range's keys go into an
//!    [`offset_map::OffsetMap`] bounded by `log.cleaner.dedupe.buffer.size`;
//!    if it fills, the pass cleans only up to where it got. Every sealed
//!    segment from the log start to there is rewritten to `.cleaned` files:
//!    a record stays if it is its key's latest; a tombstone stays until its
//!    batch's delete horizon (set to now + `delete.retention.ms` the first
//!    time the batch is cleaned, KIP-534) passes; aborted transactional
//!    data goes and markers follow Kafka's rules (`txn.rs`); a batch keeps
//!    its header fields and codec, or an empty header if it was its
//!    producer's last (`records.rs`); indexes are rebuilt.
//! 3. Under the writer lock again: unless the log was truncated meanwhile
//!    (then the pass is dropped), the files are swapped in (`swap.rs`,
//!    crash-safe) and the segment list replaced; segments that retention
//!    removed meanwhile are skipped. Readers holding the old list keep
//!    reading the old (unlinked) files; offsets never change.

mod clean;
mod offset_map;
mod records;
mod state;
mod swap;

use std::sync::atomic::Ordering;
use std::sync::{Arc, TryLockError};

use crate::error::LogError;
use crate::partition_log::PartitionLog;
use crate::segment::Segment;
use crate::util::write;
use clean::{Cleaned, Pass};
use offset_map::OffsetMap;
pub(crate) use state::read as read_checkpoint;
pub(crate) use swap::{recover as recover_swaps, SwapStep};

mod txn;

/// The suffix of a cleaned segment's files before they are swapped in.
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";

/// The settings of compaction, from the topic's configs over the broker's.
/// Compared by value (the ratio by its bits), so it can sit in a
/// [`crate::LogConfig`].
#[derive(Clone, Debug)]
pub struct CompactionConfig {
    /// `log.cleaner.dedupe.buffer.size` for this pass: the offset map's bytes.
    pub dedupe_buffer_bytes: u64,
    /// `delete.retention.ms`: how long tombstones and markers stay after
    /// their batch was first cleaned.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: records younger are not compacted.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a log whose dirty data is older must be cleaned.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_dirty_ratio: f64,
}

impl PartialEq for CompactionConfig {
    fn eq(&self, other: &Self) -> bool {
        self.dedupe_buffer_bytes == other.dedupe_buffer_bytes
            && self.delete_retention_ms == other.delete_retention_ms
            && self.min_compaction_lag_ms == other.min_compaction_lag_ms
            && self.max_compaction_lag_ms == other.max_compaction_lag_ms
            && self.min_cleanable_dirty_ratio.to_bits() == other.min_cleanable_dirty_ratio.to_bits()
    }
}

impl Eq for CompactionConfig {}

impl Default for CompactionConfig {
    fn default() -> Self {
        CompactionConfig {
            dedupe_buffer_bytes: 128 << 20,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
        }
    }
}

/// How dirty a log is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cleanable {
    pub first_dirty: i64,
    pub first_uncleanable: i64,
    /// Bytes of the segments below the first dirty offset.
    pub clean_bytes: u64,
    /// Bytes of the segments in the cleanable dirty range.
    pub dirty_bytes: u64,
    /// dirty / (clean + dirty).
    pub dirty_ratio: f64,
    /// Dirty data is older than `max.compaction.lag.ms`.
    pub overdue: bool,
}

impl Cleanable {
    fn nothing(at: i64) -> Cleanable {
        Cleanable {
            first_dirty: at,
            first_uncleanable: at,
            clean_bytes: 0,
            dirty_bytes: 0,
            dirty_ratio: 0.0,
            overdue: false,
        }
    }

    /// Whether a scheduler should clean it now.
    pub fn due(&self, config: &CompactionConfig) -> bool {
        self.dirty_bytes > 0
            && (self.overdue || self.dirty_ratio >= config.min_cleanable_dirty_ratio)
    }
}

/// What a pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanStats {
    pub segments: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Keys in the offset map, and its bytes.
    pub keys: usize,
    pub map_bytes: u64,
    /// The range whose keys were mapped: `[first_dirty, cleaned_to)`.
    pub first_dirty: i64,
    pub cleaned_to: i64,
    /// The log changed under the pass (truncation, close): nothing swapped.
    pub aborted: bool,
}

struct Snapshot {
    segments: Arc<Vec<Arc<Segment>>>,
    cleanable: Cleanable,
    pass_truncations: u64,
    last_of_producer: std::collections::HashMap<i64, i64>,
    index_interval: u32,
}

impl PartitionLog {
    /// The cleaner's checkpoint: everything below it was cleaned.
    pub fn cleaner_checkpoint(&self) -> i64 {
        self.first_dirty.load(Ordering::Acquire)
    }

    /// How dirty the log is at `now_ms`; `None` if closed or offline.
    pub fn cleanable(&self, config: &CompactionConfig, now_ms: i64) -> Option<Cleanable> {
        {
            let w = self.writer();
            if w.closed || w.offline {
                return None;
            }
        }
        Some(self.cleanable_of(&self.segment_list(), config, now_ms))
    }

    fn cleanable_of(
        &self,
        segments: &[Arc<Segment>],
        config: &CompactionConfig,
        now_ms: i64,
    ) -> Cleanable {
        let log_start = self.log_start_offset();
        let log_end = self.log_end_offset();
        let checkpoint = self.cleaner_checkpoint();
        let first_dirty = if checkpoint > log_end {
            log_start
        } else {
            checkpoint.max(log_start)
        };
        // The batch that ends at the log end is never cleaned, so a reader
        // (a follower) at the end of what remains always finds a batch that
        // takes it to the log end. Appends roll, so it is in the active
        // segment, unless a truncation left that empty.
        let uncleanable_segment = match segments {
            [.., before, active] if active.size() == 0 => before,
            [.., active] => active,
            [] => return Cleanable::nothing(log_end),
        };
        let active_base = uncleanable_segment.base_offset();
        let holding = |offset: i64| {
            segments
                .partition_point(|s| s.base_offset() <= offset)
                .saturating_sub(1)
        };
        let mut first_uncleanable = active_base.min(self.last_stable_offset());
        if config.min_compaction_lag_ms > 0 {
            let young = now_ms.saturating_sub(config.min_compaction_lag_ms);
            if let Some(s) = segments[holding(first_dirty)..]
                .iter()
                .find(|s| s.max_timestamp().0 > young)
            {
                first_uncleanable = first_uncleanable.min(s.base_offset());
            }
        }
        let first_uncleanable = first_uncleanable.max(first_dirty);
        let mut clean_bytes = 0;
        let mut dirty_bytes = 0;
        for (i, s) in segments.iter().enumerate() {
            let next = segments.get(i + 1).map_or(log_end, |n| n.base_offset());
            if next <= first_dirty {
                clean_bytes += s.size();
            } else if s.base_offset() < first_uncleanable && first_dirty < first_uncleanable {
                // A segment partly dirty counts whole, as in Kafka.
                dirty_bytes += s.size();
            }
        }
        let overdue = dirty_bytes > 0
            && config.max_compaction_lag_ms < i64::MAX
            && segments[holding(first_dirty)]
                .roll_base_ms()
                .ok()
                .flatten()
                .is_some_and(|first| first < now_ms.saturating_sub(config.max_compaction_lag_ms));
        let total = clean_bytes + dirty_bytes;
        Cleanable {
            first_dirty,
            first_uncleanable,
            clean_bytes,
            dirty_bytes,
            dirty_ratio: if total == 0 {
                0.0
            } else {
                dirty_bytes as f64 / total as f64
            },
            overdue,
        }
    }

    /// Runs one cleaning pass at `now_ms` whatever the dirty ratio (a
    /// scheduler checks [`PartitionLog::cleanable`] first). `throttle` is
    /// called with the bytes read and may block to pace the I/O. `None`
    /// if there is nothing to clean, or another pass runs on this log.
    pub fn clean(
        &self,
        config: &CompactionConfig,
        now_ms: i64,
        throttle: &mut dyn FnMut(u64),
    ) -> Result<Option<CleanStats>, LogError> {
        self.clean_with(config, now_ms, throttle, None)
    }

    pub(crate) fn clean_with(
        &self,
        config: &CompactionConfig,
        now_ms: i64,
        throttle: &mut dyn FnMut(u64),
        crash: Option<SwapStep>,
    ) -> Result<Option<CleanStats>, LogError> {
        let _pass = match self.cleaning.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return Ok(None),
        };
        let Some(snap) = self.snapshot(config, now_ms) else {
            return Ok(None);
        };
        let Cleanable {
            first_dirty,
            first_uncleanable,
            ..
        } = snap.cleanable;
        if first_dirty >= first_uncleanable {
            return Ok(None);
        }
        let segments = &snap.segments;
        let from = segments
            .partition_point(|s| s.base_offset() <= first_dirty)
            .saturating_sub(1);
        let mapped_segments = segments.partition_point(|s| s.base_offset() < first_uncleanable);
        let want = u64::try_from(first_uncleanable - first_dirty).unwrap_or(u64::MAX);
        let Some(mut map) = OffsetMap::new(config.dedupe_buffer_bytes, want) else {
            return Err(LogError::Batch(crate::error::BatchError::invalid(format!(
                "log.cleaner.dedupe.buffer.size {} cannot hold one key",
                config.dedupe_buffer_bytes
            ))));
        };
        let mut pass = Pass {
            dir: &self.dir,
            now_ms,
            delete_retention_ms: config.delete_retention_ms,
            limit: self.decompression_limit(),
            index_interval: snap.index_interval,
            last_of_producer: snap.last_of_producer,
            aborted: self.aborted_transactions(segments[0].base_offset(), first_uncleanable),
            throttle,
        };
        let mapped = pass.build_map(
            &segments[from..mapped_segments.max(from)],
            first_dirty,
            first_uncleanable,
            &mut map,
        );
        let mut stats = CleanStats {
            first_dirty,
            ..CleanStats::default()
        };
        let end = match mapped {
            Ok(end) => end,
            Err(e) => return self.failed_pass(e, stats, snap.pass_truncations),
        };
        if end <= first_dirty {
            return Ok(None);
        }
        // Sealed segments holding offsets below `end`, from the log start.
        let count = segments
            .partition_point(|s| s.base_offset() < end)
            .min(segments.len() - 1);
        let mut txns = txn::TxnTracker::new(pass.aborted.clone());
        let mut cleaned = Vec::with_capacity(count);
        for segment in &segments[..count] {
            match pass.rewrite(segment, end, &map, &mut txns) {
                Ok(c) => cleaned.push(c),
                Err(e) => {
                    let mut bases: Vec<i64> = cleaned
                        .iter()
                        .map(|c: &Cleaned| c.original.base_offset())
                        .collect();
                    bases.push(segment.base_offset());
                    swap::discard(&self.dir, &bases);
                    return self.failed_pass(e, stats, snap.pass_truncations);
                }
            }
        }
        stats = CleanStats {
            segments: cleaned.len(),
            bytes_before: cleaned.iter().map(|c| c.original.size()).sum(),
            bytes_after: cleaned.iter().map(|c| c.len).sum(),
            keys: map.len(),
            map_bytes: map.memory_bytes(),
            first_dirty,
            cleaned_to: end,
            aborted: false,
        };
        drop(map);
        if !self.swap_in(cleaned, snap.pass_truncations, crash)? {
            stats.aborted = true;
            return Ok(Some(stats));
        }
        self.first_dirty.fetch_max(end, Ordering::AcqRel);
        state::write(&self.dir, self.cleaner_checkpoint())?;
        tracing::info!(
            dir = %self.dir.display(), segments = stats.segments, before = stats.bytes_before,
            after = stats.bytes_after, cleaned_to = end, "cleaned the log"
        );
        Ok(Some(stats))
    }

    fn snapshot(&self, config: &CompactionConfig, now_ms: i64) -> Option<Snapshot> {
        let (segments, pass_truncations, last_of_producer, index_interval) = {
            let w = self.writer();
            if w.closed || w.offline {
                return None;
            }
            let last_of_producer = w
                .producers
                .iter()
                .filter_map(|(pid, entry)| entry.last_offset().map(|last| (pid, last)))
                .collect();
            (
                self.segment_list(),
                self.truncations.load(Ordering::Acquire),
                last_of_producer,
                w.config.index_interval_bytes,
            )
        };
        // Reads segment headers: outside the lock.
        let cleanable = self.cleanable_of(&segments, config, now_ms);
        Some(Snapshot {
            segments,
            cleanable,
            pass_truncations,
            last_of_producer,
            index_interval,
        })
    }

    /// A pass that failed reading: void if a truncation cut what it read
    /// (its errors say nothing of the log), else the error.
    fn failed_pass(
        &self,
        e: LogError,
        mut stats: CleanStats,
        truncations: u64,
    ) -> Result<Option<CleanStats>, LogError> {
        if self.truncations.load(Ordering::Acquire) != truncations {
            stats.aborted = true;
            return Ok(Some(stats));
        }
        tracing::warn!(dir = %self.dir.display(), error = %e, "cleaning the log failed");
        Err(e)
    }

    /// Step 3 of a pass: `false` if the log changed so that the pass is void.
    fn swap_in(
        &self,
        cleaned: Vec<Cleaned>,
        truncations: u64,
        crash: Option<SwapStep>,
    ) -> Result<bool, LogError> {
        let all: Vec<i64> = cleaned.iter().map(|c| c.original.base_offset()).collect();
        if let Err(e) = swap::crash_point(crash, SwapStep::Cleaned) {
            self.writer().offline = true;
            return Err(e);
        }
        let mut w = self.writer();
        if w.closed || w.offline || self.truncations.load(Ordering::Acquire) != truncations {
            drop(w);
            swap::discard(&self.dir, &all);
            tracing::info!(dir = %self.dir.display(), "the log changed during cleaning; dropping the pass");
            return Ok(false);
        }
        let current = self.segment_list();
        let (live, gone): (Vec<Cleaned>, Vec<Cleaned>) = cleaned
            .into_iter()
            .partition(|c| current.iter().any(|s| Arc::ptr_eq(s, &c.original)));
        swap::discard(
            &self.dir,
            &gone
                .iter()
                .map(|c| c.original.base_offset())
                .collect::<Vec<_>>(),
        );
        let bases: Vec<i64> = live.iter().map(|c| c.original.base_offset()).collect();
        let swapped = swap::commit(&self.dir, &bases, crash)
            .and_then(|()| swap::install(&self.dir, &bases, crash));
        if let Err(e) = swapped {
            // Recovery at the next open completes or rolls back the swap.
            w.offline = true;
            tracing::error!(dir = %self.dir.display(), error = %e, "swapping cleaned segments failed; the log is offline");
            return Err(e);
        }
        let mut list = (*current).clone();
        for c in live {
            let base = c.original.base_offset();
            let segment = Arc::new(Segment::with_file(
                &self.dir, base, c.file, c.len, c.indexes,
            ));
            if let Some(slot) = list.iter_mut().find(|s| Arc::ptr_eq(s, &c.original)) {
                *slot = segment;
            }
            w.pending_sync.retain(|s| !Arc::ptr_eq(s, &c.original));
        }
        *write(&self.segments) = Arc::new(list);
        Ok(true)
    }

    /// A truncation to `new_end` voids a running pass and lowers the checkpoint.
    pub(crate) fn cleaner_on_truncation(&self, new_end: i64) -> Result<(), LogError> {
        self.truncations.fetch_add(1, Ordering::AcqRel);
        if self.first_dirty.fetch_min(new_end, Ordering::AcqRel) > new_end {
            state::write(&self.dir, new_end)?;
        }
        Ok(())
    }
}
