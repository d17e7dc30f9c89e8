//! Rebuilding a log's producer state when it opens (and after a
//! truncation): the newest snapshot at or below the log end (`snapshot.rs`),
//! then every batch header after it, recorded as a follower append would,
//! with the aborted transactions written again to the `.txnindex` of the
//! segment holding their marker.
//!
//! In: the directory and the recovered segments (whole, valid batches:
//! recovery has cut any invalid tail). Out: the [`ProducerStates`] the log
//! had when it stopped, and every segment's transaction index matching its
//! markers. When a segment's index is stale (missing, or its segment was
//! scanned by recovery), the replay starts at a snapshot at or below that
//! segment, so its index is rebuilt whole. Headers only are parsed, and
//! the one record of each control batch. Snapshots are
//! written at each segment roll and at close, so after a clean shutdown
//! nothing is read and otherwise about the active segment is; without any
//! snapshot (a log written before they existed) the whole log is read once.

use std::path::Path;
use std::sync::Arc;

use super::{snapshot, ProducerStates};
use crate::batch::{self, BatchHeader, MarkerRecord, MAX_MARKER_BATCH};
use crate::error::LogError;
use crate::segment::Segment;
use crate::txn_index::AbortedTxn;

/// The producer state at the end of `segments`.
pub(crate) fn rebuild(
    dir: &Path,
    segments: &[Arc<Segment>],
    log_end: i64,
) -> Result<ProducerStates, LogError> {
    // A snapshot above the end describes batches recovery cut off.
    snapshot::delete_above(dir, log_end)?;
    // A stale transaction index is rebuilt whole: start at or below it.
    let limit = segments
        .iter()
        .find(|s| s.txn_index_stale())
        .map_or(log_end, |s| s.base_offset().min(log_end));
    let (from, mut states) =
        snapshot::latest_at_or_below(dir, limit)?.unwrap_or((i64::MIN, ProducerStates::new()));
    for (i, segment) in segments.iter().enumerate() {
        let next_base = segments.get(i + 1).map(|s| s.base_offset());
        if next_base.is_some_and(|next| next <= from) {
            continue;
        }
        segment.reset_txn_index_from(from)?;
        let mut headers = segment.headers(0, segment.size());
        while let Some((position, header)) = headers.next_header()? {
            if header.base_offset < from {
                continue;
            }
            let marker = stored_marker(segment, position, &header)?;
            if let Some(done) = states.record(&header, marker) {
                if done.aborted {
                    segment.push_aborted(AbortedTxn::from(done))?;
                }
            }
        }
    }
    Ok(states)
}

/// The transaction marker of the stored batch at `position`, if it is one.
pub(crate) fn stored_marker(
    segment: &Segment,
    position: u64,
    header: &BatchHeader,
) -> Result<Option<MarkerRecord>, LogError> {
    if !header.is_control() || header.size() > MAX_MARKER_BATCH {
        return Ok(None);
    }
    let bytes = segment.read_bytes(position, header.size())?;
    Ok(batch::read_marker(header, &bytes))
}
