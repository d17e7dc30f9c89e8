//! Rebuilding a log's producer state when it opens: every batch header of
//! every segment is read in order and recorded, as a follower append would.
//!
//! In: the recovered segments (whole, valid batches: recovery has cut any
//! invalid tail). Out: the [`ProducerStates`] the log had when it stopped.
//! Headers only are parsed, no record; the cost is reading the segment
//! files once. Kafka bounds this with `.snapshot` files written at segment
//! roll; Kraft does not write them yet, so an open reads the whole log.

use std::sync::Arc;

use super::ProducerStates;
use crate::error::LogError;
use crate::segment::Segment;

/// The producer state recorded by the batches of `segments`, oldest first.
pub(crate) fn rebuild(segments: &[Arc<Segment>]) -> Result<ProducerStates, LogError> {
    let mut states = ProducerStates::new();
    for segment in segments {
        let mut headers = segment.headers(0, segment.size());
        while let Some((_, header)) = headers.next_header()? {
            states.record(&header);
        }
    }
    Ok(states)
}
