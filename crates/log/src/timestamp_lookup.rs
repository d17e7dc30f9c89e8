//! Finding records by timestamp (ListOffsets): the first record at or
//! after a time, and the record with the largest timestamp.
//!
//! In: a timestamp from the broker. The time index narrows the search to a
//! segment and a starting batch; batch headers (maxTimestamp) find the
//! batch; only that one batch is walked (and decompressed, capped) with
//! the crate's bounded record decoder ([`crate::batch::for_each_record`]),
//! and only when its header cannot answer. Out: a [`TimestampOffset`],
//! looking only below the high watermark.

use std::ops::ControlFlow;

use crate::batch::{self, BatchHeader};
use crate::config::TimestampType;
use crate::error::LogError;
use crate::partition_log::{PartitionLog, TimestampOffset};
use crate::segment::Segment;

impl PartitionLog {
    /// The first record (by offset) whose timestamp is at or after
    /// `timestamp`, below the high watermark. `None` if there is none.
    pub fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<TimestampOffset>, LogError> {
        let high_watermark = self.high_watermark();
        for segment in self.segment_list().iter() {
            if segment.base_offset() >= high_watermark {
                break;
            }
            if segment.max_timestamp().0 < timestamp {
                continue;
            }
            let end = segment.size();
            let mut headers =
                segment.headers(segment.search_start_for_timestamp(timestamp).min(end), end);
            while let Some((position, header)) = headers.next_header()? {
                if header.base_offset >= high_watermark {
                    return Ok(None);
                }
                if header.max_timestamp < timestamp {
                    continue;
                }
                if let Some(found) = first_record_at_or_after(
                    segment,
                    position,
                    &header,
                    timestamp,
                    self.decompression_limit(),
                )? {
                    return Ok(Some(found));
                }
            }
        }
        Ok(None)
    }

    /// The record with the largest timestamp below the high watermark (the
    /// first such by offset), for ListOffsets' MAX_TIMESTAMP.
    pub fn max_timestamp_offset(&self) -> Result<Option<TimestampOffset>, LogError> {
        let high_watermark = self.high_watermark();
        let segments = self.segment_list();
        let mut best: Option<(i64, usize, i64)> = None;
        for (i, segment) in segments.iter().enumerate() {
            if segment.base_offset() >= high_watermark {
                break;
            }
            let (timestamp, offset) = match segment.max_timestamp() {
                (timestamp, offset) if offset < high_watermark => (timestamp, offset),
                _ => max_below(segment, high_watermark)?,
            };
            if timestamp >= 0 && best.is_none_or(|(t, _, _)| timestamp > t) {
                best = Some((timestamp, i, offset));
            }
        }
        let Some((timestamp, i, offset)) = best else {
            return Ok(None);
        };
        let segment = &segments[i];
        let Some((position, header)) = segment.find_batch(offset, segment.size())? else {
            return Ok(None);
        };
        let found = first_record_at_or_after(
            segment,
            position,
            &header,
            timestamp,
            self.decompression_limit(),
        )?;
        Ok(Some(found.unwrap_or(TimestampOffset {
            timestamp,
            offset: header.last_offset(),
            leader_epoch: header.partition_leader_epoch,
        })))
    }
}

/// The largest timestamp among a segment's batches below `bound`, and the
/// last offset of the first batch carrying it.
fn max_below(segment: &Segment, bound: i64) -> Result<(i64, i64), LogError> {
    // A time-index entry vouches for every batch up to the one it names.
    let (mut timestamp, mut offset, from) = segment.time_entry_below(bound).unwrap_or((-1, -1, 0));
    let mut headers = segment.headers(from, segment.size());
    while let Some((_, header)) = headers.next_header()? {
        if header.base_offset >= bound {
            break;
        }
        if header.max_timestamp > timestamp {
            timestamp = header.max_timestamp;
            offset = header.last_offset();
        }
    }
    Ok((timestamp, offset))
}

/// The first record of the batch at `position` with a timestamp at or
/// after `timestamp`. Under LogAppendTime every record has the batch's
/// maxTimestamp, so the header answers; otherwise the batch is decoded.
fn first_record_at_or_after(
    segment: &Segment,
    position: u64,
    header: &BatchHeader,
    timestamp: i64,
    limit: u64,
) -> Result<Option<TimestampOffset>, LogError> {
    let leader_epoch = header.partition_leader_epoch;
    if header.timestamp_type() == TimestampType::LogAppendTime {
        return Ok(Some(TimestampOffset {
            timestamp: header.max_timestamp,
            offset: header.base_offset,
            leader_epoch,
        }));
    }
    let bytes = segment.read_batch(position, header)?;
    let mut found = None;
    let walked = batch::for_each_record(&bytes, limit, false, |r| {
        if r.timestamp >= timestamp {
            found = Some(TimestampOffset {
                timestamp: r.timestamp,
                offset: r.offset,
                leader_epoch,
            });
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    match walked {
        Ok(()) => Ok(found),
        Err(e) => {
            // The CRC matched, so the producer sent records that do not
            // decode (stored before produced records were checked). Answer
            // with the batch start: never past the record sought.
            tracing::warn!(
                file = %segment.log_path().display(), position, error = %e,
                "cannot decode a batch's records; answering with its base offset"
            );
            Ok(Some(TimestampOffset {
                timestamp: header.max_timestamp,
                offset: header.base_offset,
                leader_epoch,
            }))
        }
    }
}
