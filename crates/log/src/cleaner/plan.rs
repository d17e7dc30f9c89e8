//! Planning a pass: how dirty a log is ([`Cleanable`], what a scheduler
//! reads), where its cleanable range ends, and which segments merge.
//!
//! In: a snapshot of the segment list, the log's offsets and the
//! cleaner's checkpoint, the [`CompactionConfig`] and the time. Out: a
//! [`Cleanable`] (the range `[first_dirty, first_uncleanable)` and its
//! bytes) and, for the rewrite, groups of consecutive segments to merge.
//! Reads at most one batch header per log (for `max.compaction.lag.ms`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::CompactionConfig;
use crate::partition_log::PartitionLog;
use crate::segment::Segment;

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

/// How large a cleaned segment may grow by merging: the log's segment limits.
pub(crate) struct Limits {
    pub bytes: u64,
    pub index_entries: usize,
    pub time_entries: usize,
}

/// The first `count` segments in consecutive groups whose merge fits the
/// limits, as Kafka groups them: by their sizes before cleaning, offsets
/// (up to the next segment's base) within a 31-bit span of the group's base.
pub(crate) fn group_segments<'a>(
    segments: &'a [Arc<Segment>],
    count: usize,
    limits: &Limits,
) -> Vec<&'a [Arc<Segment>]> {
    let mut groups = Vec::new();
    let mut start = 0;
    while start < count {
        let (mut bytes, mut entries, mut times) = (0u64, 0usize, 0usize);
        let mut end = start;
        while end < count {
            let s = &segments[end];
            let (e, t) = s.index_entries();
            let span_ok = segments.get(end + 1).is_none_or(|next| {
                next.base_offset() - segments[start].base_offset() <= i64::from(i32::MAX)
            });
            let fits = bytes + s.size() <= limits.bytes
                && entries + e <= limits.index_entries
                && times + t <= limits.time_entries
                && span_ok;
            if end > start && !fits {
                break;
            }
            bytes += s.size();
            entries += e;
            times += t;
            end += 1;
        }
        groups.push(&segments[start..end]);
        start = end;
    }
    groups
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

    pub(crate) fn cleanable_of(
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
}
