//! Per-partition producer state for idempotent producers, as Kafka's
//! `ProducerStateManager`: for each producer id, its epoch and the metadata
//! of its last [`BATCHES_TO_RETAIN`] batches (sequences, offsets, timestamp).
//!
//! In: the header of every batch that carries a producer id (>= 0). On a
//! leader append, [`ProducerStates::check`] runs first (under the log's
//! writer lock) and decides whether the batch is appended, is a duplicate
//! of a retained batch (answered with that batch's offsets and written
//! nowhere) or is refused; after the write, [`ProducerStates::record`]
//! stores it. Follower appends and recovery call `record` only: the leader
//! checked the batches already (Kafka's `AppendOrigin.REPLICATION`), so a
//! new leader knows every producer's recent batches and deduplicates
//! retries aimed at the old one.
//!
//! Out: [`Checked`] or a [`LogError`] with Kafka's code:
//! - a duplicate of one of the last 5 batches (same epoch, same first and
//!   last sequence) is [`Checked::Duplicate`];
//! - an epoch older than the producer's is INVALID_PRODUCER_EPOCH (47);
//! - a new epoch must start at sequence 0, and within an epoch a batch must
//!   follow the last one (sequences wrap from `i32::MAX` to 0), else
//!   OUT_OF_ORDER_SEQUENCE_NUMBER (45);
//! - an unknown producer id is accepted at any sequence. This is Kafka 3.x's
//!   rule since KIP-360: a producer whose state was removed (retention,
//!   expiry) continues where it was, and UNKNOWN_PRODUCER_ID is no longer
//!   returned by the append path.
//!
//! Persistence: `snapshot.rs` writes the state at each segment roll and at
//! close; `load.rs` rebuilds it at open from the latest snapshot and the
//! batches after it.
//!
//! Maintenance: [`ProducerStates::truncate_from`] (log truncation) drops the
//! batches at and after the cut (the log then rebuilds the state exactly,
//! as Kafka's `truncateAndReload`), and [`ProducerStates::remove_expired`] the
//! producers whose last batch is older than `producer.id.expiration.ms`.
//! Retention deleting segments removes no producer (KIP-360: state is kept
//! until it expires, so a producer whose batches were deleted is still
//! known).

use std::collections::{HashMap, VecDeque};

use crate::batch::BatchHeader;
use crate::error::LogError;

/// Batches retained per producer, as Kafka's `NUM_BATCHES_TO_RETAIN`: the
/// Java producer keeps at most 5 requests in flight per partition.
pub const BATCHES_TO_RETAIN: usize = 5;

/// Kafka's `producer.id.expiration.ms` default: one day.
pub const DEFAULT_PRODUCER_ID_EXPIRATION_MS: i64 = 24 * 60 * 60 * 1000;

/// One retained batch of a producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    /// The batch's max timestamp.
    pub timestamp: i64,
}

/// What the log knows about one producer id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    /// The last batches of `epoch`, oldest first, at most [`BATCHES_TO_RETAIN`].
    pub batches: VecDeque<BatchMetadata>,
    /// The timestamp of the last batch (expiry counts from it).
    pub last_timestamp: i64,
}

impl ProducerEntry {
    pub fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }

    pub fn last_offset(&self) -> Option<i64> {
        self.batches.back().map(|b| b.last_offset)
    }

    fn add(&mut self, epoch: i16, batch: BatchMetadata) {
        if epoch != self.epoch {
            self.batches.clear();
            self.epoch = epoch;
        }
        if self.batches.len() == BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.batches.push_back(batch);
        self.last_timestamp = batch.timestamp;
    }
}

/// The outcome of checking a leader append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checked {
    /// Not a duplicate and in order (or no producer id): append it.
    Append,
    /// A retry of this retained batch: answer with its offsets, write nothing.
    Duplicate(BatchMetadata),
}

/// The producer state of one partition log.
#[derive(Clone, Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

/// The last sequence of a batch starting at `base` with `records` records
/// after the first (`lastOffsetDelta`), wrapping after `i32::MAX` to 0 as
/// Kafka's producer does.
pub fn last_sequence(base: i32, delta: i32) -> i32 {
    let sum = i64::from(base) + i64::from(delta);
    let wrapped = if sum > i64::from(i32::MAX) {
        sum - i64::from(i32::MAX) - 1
    } else {
        sum
    };
    i32::try_from(wrapped).unwrap_or(i32::MAX)
}

fn in_sequence(last: i32, next: i32) -> bool {
    i64::from(next) == i64::from(last) + 1 || (next == 0 && last == i32::MAX)
}

/// Whether the header carries a producer id (idempotent or transactional).
pub fn has_producer_id(header: &BatchHeader) -> bool {
    header.producer_id >= 0
}

impl ProducerStates {
    pub fn new() -> Self {
        Self::default()
    }

    /// The state of `producer_id`, if known.
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    fn insert(&mut self, producer_id: i64, entry: ProducerEntry) {
        self.producers.insert(producer_id, entry);
    }

    /// Every producer id and its entry.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> + '_ {
        self.producers.iter().map(|(id, e)| (*id, e))
    }

    /// Checks a producer's batch before a leader append (see the module
    /// docs for the rules). A batch without a producer id is always
    /// [`Checked::Append`]. `next_offset` is where it would be written (for
    /// error messages).
    pub fn check(&self, header: &BatchHeader, next_offset: i64) -> Result<Checked, LogError> {
        if !has_producer_id(header) {
            return Ok(Checked::Append);
        }
        let producer_id = header.producer_id;
        let epoch = header.producer_epoch;
        let first_seq = header.base_sequence;
        let Some(entry) = self.producers.get(&producer_id) else {
            // Unknown producer: any sequence (Kafka 3.x, KIP-360).
            return Ok(Checked::Append);
        };
        let last_seq = last_sequence(first_seq, header.last_offset_delta);
        if epoch == entry.epoch {
            if let Some(dup) = entry
                .batches
                .iter()
                .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
            {
                return Ok(Checked::Duplicate(*dup));
            }
        }
        if epoch < entry.epoch {
            return Err(LogError::InvalidProducerEpoch {
                producer_id,
                epoch,
                current: entry.epoch,
            });
        }
        if epoch > entry.epoch {
            if first_seq != 0 {
                return Err(LogError::OutOfOrderSequence {
                    producer_id,
                    offset: next_offset,
                    sequence: first_seq,
                    reason: format!(
                        "a new epoch {epoch} (was {}) must start at sequence 0",
                        entry.epoch
                    ),
                });
            }
            return Ok(Checked::Append);
        }
        match entry.last_seq() {
            // The epoch is known but its batches were truncated away: as
            // Kafka with no current sequence, accept.
            None => Ok(Checked::Append),
            Some(last) if in_sequence(last, first_seq) => Ok(Checked::Append),
            Some(last) => Err(LogError::OutOfOrderSequence {
                producer_id,
                offset: next_offset,
                sequence: first_seq,
                reason: format!("expected sequence {}", last_sequence(last, 1)),
            }),
        }
    }

    /// Records an appended batch whose header carries its final offsets
    /// (leader after the write, follower, recovery). No checks; a batch
    /// without a producer id or a control batch changes nothing but a
    /// control batch's epoch.
    pub fn record(&mut self, header: &BatchHeader) {
        if !has_producer_id(header) {
            return;
        }
        let entry = self
            .producers
            .entry(header.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: header.producer_epoch,
                batches: VecDeque::with_capacity(BATCHES_TO_RETAIN),
                last_timestamp: header.max_timestamp,
            });
        if header.is_control() {
            // A transaction marker moves the epoch, no sequence.
            if header.producer_epoch > entry.epoch {
                entry.epoch = header.producer_epoch;
                entry.batches.clear();
            }
            entry.last_timestamp = header.max_timestamp;
            return;
        }
        entry.add(
            header.producer_epoch,
            BatchMetadata {
                first_seq: header.base_sequence,
                last_seq: last_sequence(header.base_sequence, header.last_offset_delta),
                first_offset: header.base_offset,
                last_offset: header.last_offset(),
                timestamp: header.max_timestamp,
            },
        );
    }

    /// The log was cut at `offset`: batches at and after it are forgotten,
    /// and a producer left with none is removed. Returns whether any batch
    /// was cut: the state is then only an approximation (an older epoch, or
    /// batches that fell out of the window, may be missing), and the log
    /// rebuilds it exactly from its snapshots and segments (`load.rs`).
    pub fn truncate_from(&mut self, offset: i64) -> bool {
        let mut cut = false;
        self.producers.retain(|_, entry| {
            let before = entry.batches.len();
            entry.batches.retain(|b| b.last_offset < offset);
            cut |= entry.batches.len() != before;
            if let Some(last) = entry.batches.back() {
                entry.last_timestamp = last.timestamp;
            }
            !entry.batches.is_empty()
        });
        cut
    }

    /// Removes producers whose last batch is older than `expiration_ms`
    /// (`producer.id.expiration.ms`) at `now_ms`. Returns how many went.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, entry| now_ms.saturating_sub(entry.last_timestamp) < expiration_ms);
        before - self.producers.len()
    }
}

mod load;
pub(crate) mod snapshot;
#[cfg(test)]
mod tests;

pub(crate) use load::rebuild;
