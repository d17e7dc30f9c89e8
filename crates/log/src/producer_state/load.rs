//! Rebuilding a log's producer state when it opens: the newest snapshot at
//! or below the log end (`snapshot.rs`), then every batch header after it,
//! recorded as a follower append would.
//!
//! In: the directory and the recovered segments (whole, valid batches:
//! recovery has cut any invalid tail). Out: the [`ProducerStates`] the log
//! had when it stopped. Headers only are parsed, no record. Snapshots are
//! written at each segment roll and at close, so after a clean shutdown
//! nothing is read and otherwise about the active segment is; without any
//! snapshot (a log written before they existed) the whole log is read once.

use std::path::Path;
use std::sync::Arc;

use super::{snapshot, ProducerStates};
use crate::error::LogError;
use crate::segment::Segment;

/// The producer state at the end of `segments`.
pub(crate) fn rebuild(
    dir: &Path,
    segments: &[Arc<Segment>],
    log_end: i64,
) -> Result<ProducerStates, LogError> {
    // A snapshot above the end describes batches recovery cut off.
    snapshot::delete_above(dir, log_end)?;
    let (from, mut states) =
        snapshot::latest_at_or_below(dir, log_end)?.unwrap_or((i64::MIN, ProducerStates::new()));
    for (i, segment) in segments.iter().enumerate() {
        let next_base = segments.get(i + 1).map(|s| s.base_offset());
        if next_base.is_some_and(|next| next <= from) {
            continue;
        }
        let mut headers = segment.headers(0, segment.size());
        while let Some((_, header)) = headers.next_header()? {
            if header.base_offset >= from {
                states.record(&header);
            }
        }
    }
    Ok(states)
}
