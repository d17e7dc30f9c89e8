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
//!    producer's last (`records.rs`); indexes are rebuilt. Consecutive
//!    segments whose sizes before cleaning fit `segment.bytes` (and the
//!    index limits) merge into one, as Kafka groups them (`plan.rs`).
//! 3. Unless the log was truncated meanwhile or retention took part of a
//!    merged group (then the pass is dropped), the files are swapped in
//!    (`swap.rs`, crash-safe) under the log's swap lock, which truncation
//!    and retention wait for but appends and reads do not, then the
//!    segment list is replaced under the writer lock, briefly; groups
//!    that retention removed whole are skipped. Readers holding the old list keep
//!    reading the old (unlinked) files; offsets never change.

mod clean;
mod offset_map;
mod plan;
mod records;
mod state;
mod swap;

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, TryLockError};

use crate::error::LogError;
use crate::partition_log::PartitionLog;
use crate::segment::Segment;
use crate::util::{lock, write};
use clean::{Cleaned, Pass};
use offset_map::OffsetMap;
pub use plan::Cleanable;
use plan::{group_segments, Limits};
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
    limits: Limits,
    segments: Arc<Vec<Arc<Segment>>>,
    cleanable: Cleanable,
    pass_truncations: u64,
    last_of_producer: std::collections::HashMap<i64, i64>,
    index_interval: u32,
}

impl PartitionLog {
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
        let mut cleaned: Vec<Cleaned> = Vec::with_capacity(count);
        for group in group_segments(segments, count, &snap.limits) {
            match pass.rewrite(group, end, &map, &mut txns) {
                Ok(c) => cleaned.push(c),
                Err(e) => {
                    let mut bases: Vec<i64> = cleaned.iter().map(Cleaned::base).collect();
                    bases.push(group[0].base_offset());
                    swap::discard(&self.dir, &bases);
                    return self.failed_pass(e, stats, snap.pass_truncations);
                }
            }
        }
        stats = CleanStats {
            segments: cleaned.iter().map(|c| c.originals.len()).sum(),
            bytes_before: cleaned
                .iter()
                .flat_map(|c| &c.originals)
                .map(|s| s.size())
                .sum(),
            bytes_after: cleaned.iter().map(|c| c.len).sum(),
            keys: map.len(),
            map_bytes: map.memory_bytes(),
            first_dirty,
            cleaned_to: end,
            aborted: false,
        };
        drop(map);
        if !self.swap_in(cleaned, snap.pass_truncations, end, crash)? {
            stats.aborted = true;
            return Ok(Some(stats));
        }
        tracing::info!(
            dir = %self.dir.display(), segments = stats.segments, before = stats.bytes_before,
            after = stats.bytes_after, cleaned_to = end, "cleaned the log"
        );
        Ok(Some(stats))
    }

    fn snapshot(&self, config: &CompactionConfig, now_ms: i64) -> Option<Snapshot> {
        let (segments, pass_truncations, last_of_producer, index_interval, limits) = {
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
                Limits {
                    bytes: w.config.max_segment_bytes(),
                    index_entries: w.config.max_offset_index_entries(),
                    time_entries: w.config.max_time_index_entries(),
                },
            )
        };
        // Reads segment headers: outside the lock.
        let cleanable = self.cleanable_of(&segments, config, now_ms);
        Some(Snapshot {
            limits,
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
        cleaned_to: i64,
        crash: Option<SwapStep>,
    ) -> Result<bool, LogError> {
        let all: Vec<i64> = cleaned.iter().map(Cleaned::base).collect();
        if let Err(e) = swap::crash_point(crash, SwapStep::Cleaned) {
            self.writer().offline = true;
            return Err(e);
        }
        // Truncation and retention, the only ones to delete segment files,
        // wait for this lock: what is checked below holds until the swap
        // is done, so the files are renamed without the writer lock, which
        // appends and reads' flushes need.
        let _swap = lock(&self.swap_lock);
        let w = self.writer();
        let current = self.segment_list();
        let present = |s: &Arc<Segment>| current.iter().any(|c| Arc::ptr_eq(c, s));
        // Retention deletes the oldest segments: a group it took whole is
        // skipped; one it took in part voids the pass, as would any gap in
        // the prefix of cleaned segments.
        let gone = cleaned
            .iter()
            .take_while(|c| !c.originals.iter().any(present))
            .count();
        let changed = w.closed
            || w.offline
            || self.truncations.load(Ordering::Acquire) != truncations
            || !cleaned[gone..]
                .iter()
                .all(|c| c.originals.iter().all(present));
        if changed {
            drop(w);
            swap::discard(&self.dir, &all);
            tracing::info!(dir = %self.dir.display(), "the log changed during cleaning; dropping the pass");
            return Ok(false);
        }
        drop(w);
        swap::discard(&self.dir, &all[..gone]);
        let live = &cleaned[gone..];
        let groups: Vec<swap::Group> = live
            .iter()
            .map(|c| swap::Group {
                base: c.base(),
                merged: c.originals[1..].iter().map(|s| s.base_offset()).collect(),
            })
            .collect();
        let swapped = swap::commit(&self.dir, &groups, crash)
            .and_then(|()| swap::install(&self.dir, &groups, crash));
        let mut w = self.writer();
        if let Err(e) = swapped {
            // Recovery at the next open completes or rolls back the swap.
            w.offline = true;
            tracing::error!(dir = %self.dir.display(), error = %e, "swapping cleaned segments failed; the log is offline");
            return Err(e);
        }
        // Read again: segments may have rolled meanwhile (at the end).
        let current = self.segment_list();
        let mut pending: VecDeque<Cleaned> = cleaned.into_iter().skip(gone).collect();
        let mut list = Vec::with_capacity(current.len());
        let mut i = 0;
        while i < current.len() {
            let starts_group = pending
                .front()
                .is_some_and(|c| Arc::ptr_eq(&c.originals[0], &current[i]));
            let Some(c) = pending.pop_front().filter(|_| starts_group) else {
                list.push(current[i].clone());
                i += 1;
                continue;
            };
            // A group's members are consecutive: only rolls (at the end)
            // and retention (at the start) changed the list meanwhile.
            for old in &c.originals {
                w.pending_sync.retain(|s| !Arc::ptr_eq(s, old));
            }
            i += c.originals.len();
            let base = c.base();
            list.push(Arc::new(Segment::with_file(
                &self.dir, base, c.file, c.len, c.indexes,
            )));
        }
        *write(&self.segments) = Arc::new(list);
        drop(w);
        // Under the swap lock still: a truncation that would lower the
        // checkpoint comes after this.
        self.first_dirty.fetch_max(cleaned_to, Ordering::AcqRel);
        state::write(&self.dir, self.cleaner_checkpoint())?;
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
