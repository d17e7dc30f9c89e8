//! Per-partition producer state for idempotent and transactional
//! producers, as Kafka's `ProducerStateManager`: for each producer id, its
//! epoch, the metadata of its last [`BATCHES_TO_RETAIN`] batches
//! (sequences, offsets, timestamp), the first offset of its ongoing
//! transaction (Kafka's `currentTxnFirstOffset`) and the epoch of the
//! transaction coordinator that wrote its last marker.
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
//! - a batch outside a transaction (no transactional bit) from a producer
//!   whose transaction is open is INVALID_TXN_STATE (48);
//! - an unknown producer id is accepted at any sequence. This is Kafka 3.x's
//!   rule since KIP-360: a producer whose state was removed (retention,
//!   expiry) continues where it was, and UNKNOWN_PRODUCER_ID is no longer
//!   returned by the append path.
//!
//! Transactions: a transactional data batch opens its producer's
//! transaction if none is open; a COMMIT or ABORT marker (a control batch,
//! read by `batch::read_marker`) closes it and `record` returns the
//! [`CompletedTxn`] (an ABORT goes to the segment's `.txnindex`). A marker
//! is checked first by [`ProducerStates::check_marker`]: an older producer
//! epoch is INVALID_PRODUCER_EPOCH (47), an older coordinator epoch
//! TRANSACTION_COORDINATOR_FENCED (52). The transactions that are not yet
//! stable (open, or whose marker the high watermark has not passed, as
//! Kafka's `unreplicatedTxns`) are kept in offset order for the last stable
//! offset ([`ProducerStates::first_unstable_offset`]).
//!
//! Persistence: `snapshot.rs` writes the state at each segment roll and at
//! close; `load.rs` rebuilds it at open from the latest snapshot and the
//! batches after it.
//!
//! Maintenance: log truncation rebuilds the state from the latest snapshot
//! at or below the cut (as Kafka's `truncateAndReload`), and [`ProducerStates::remove_expired`] the
//! producers whose last batch is older than `producer.id.expiration.ms`.
//! Retention deleting segments removes no producer (KIP-360: state is kept
//! until it expires, so a producer whose batches were deleted is still
//! known).

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::batch::{BatchHeader, MarkerRecord, TxnMarker};
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
    /// The first offset of the producer's open transaction, if one is open.
    pub current_txn_first_offset: Option<i64>,
    /// The coordinator epoch of the last marker written for it, -1 if none.
    pub coordinator_epoch: i32,
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

/// A transaction a marker ended, as Kafka's `CompletedTxn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    /// The offset of its first batch.
    pub first_offset: i64,
    /// The offset of its marker.
    pub last_offset: i64,
    pub aborted: bool,
    /// Kafka's `lastStableOffset(completedTxn)`: the first offset of the
    /// earliest transaction still open, or the marker's offset + 1.
    pub last_stable_offset: i64,
}

/// A transaction that is not yet stable: open (`marker` none), or ended by
/// a marker the high watermark may not have passed yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnstableTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub marker: Option<i64>,
}

/// The producer state of one partition log.
#[derive(Clone, Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
    /// Unstable transactions by first offset.
    unstable: BTreeMap<i64, UnstableTxn>,
    /// KIP-890 verifications in flight ([`verification`]).
    verifications: verification::Verifications,
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
        if let Some(first_offset) = entry.current_txn_first_offset {
            self.unstable.insert(
                first_offset,
                UnstableTxn {
                    producer_id,
                    first_offset,
                    marker: None,
                },
            );
        }
        self.producers.insert(producer_id, entry);
    }

    /// The open transactions as `(producer id, first offset)`, by offset.
    pub fn ongoing(&self) -> Vec<(i64, i64)> {
        self.unstable
            .values()
            .filter(|t| t.marker.is_none())
            .map(|t| (t.producer_id, t.first_offset))
            .collect()
    }

    /// The transactions not yet stable, by first offset.
    pub fn unstable(&self) -> Vec<UnstableTxn> {
        self.unstable.values().copied().collect()
    }

    /// Forgets the ended transactions whose marker is below
    /// `high_watermark`: they are stable.
    pub fn prune_stable(&mut self, high_watermark: i64) {
        self.unstable
            .retain(|_, t| t.marker.is_none_or(|m| m >= high_watermark));
    }

    /// Kafka's first unstable offset at `high_watermark`: the first offset
    /// of the earliest transaction that is open or whose marker is at or
    /// above it.
    pub fn first_unstable_offset(&self, high_watermark: i64) -> Option<i64> {
        first_unstable(self.unstable.values(), high_watermark)
    }

    /// Checks a marker for `producer_id` before a leader appends it: an
    /// epoch older than the producer's is INVALID_PRODUCER_EPOCH, a
    /// coordinator epoch older than the last marker's
    /// TRANSACTION_COORDINATOR_FENCED. A producer the log does not know
    /// passes (its state may have expired).
    pub fn check_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        coordinator_epoch: i32,
    ) -> Result<(), LogError> {
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(());
        };
        if epoch < entry.epoch {
            return Err(LogError::InvalidProducerEpoch {
                producer_id,
                epoch,
                current: entry.epoch,
            });
        }
        if coordinator_epoch < entry.coordinator_epoch {
            return Err(LogError::CoordinatorFenced {
                producer_id,
                coordinator_epoch,
                current: entry.coordinator_epoch,
            });
        }
        Ok(())
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
            return Self::check_txn_state(header, entry, next_offset);
        }
        match entry.last_seq() {
            // The epoch is known but its batches were truncated away: as
            // Kafka with no current sequence, accept.
            None => {}
            Some(last) if in_sequence(last, first_seq) => {}
            Some(last) => {
                return Err(LogError::OutOfOrderSequence {
                    producer_id,
                    offset: next_offset,
                    sequence: first_seq,
                    reason: format!("expected sequence {}", last_sequence(last, 1)),
                })
            }
        }
        Self::check_txn_state(header, entry, next_offset)
    }

    /// A producer with an open transaction writes only transactional
    /// batches until a marker ends it (Kafka's INVALID_TXN_STATE).
    fn check_txn_state(
        header: &BatchHeader,
        entry: &ProducerEntry,
        next_offset: i64,
    ) -> Result<Checked, LogError> {
        match entry.current_txn_first_offset {
            Some(first_offset) if !header.is_transactional() => Err(LogError::InvalidTxnState {
                producer_id: header.producer_id,
                offset: next_offset,
                first_offset,
            }),
            _ => Ok(Checked::Append),
        }
    }

    /// Records an appended batch whose header carries its final offsets
    /// (leader after the write, follower, recovery). No checks. A batch
    /// without a producer id changes nothing; a transactional data batch
    /// opens its producer's transaction if none is open; a control batch
    /// moves the epoch and, when it is a transaction marker (`marker`, read
    /// from the batch by the caller), ends the open transaction and
    /// returns it.
    pub fn record(
        &mut self,
        header: &BatchHeader,
        marker: Option<MarkerRecord>,
    ) -> Option<CompletedTxn> {
        if !has_producer_id(header) {
            return None;
        }
        let producer_id = header.producer_id;
        if header.is_control() || header.is_transactional() {
            self.verifications.end(producer_id);
        }
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: header.producer_epoch,
                batches: VecDeque::with_capacity(BATCHES_TO_RETAIN),
                last_timestamp: header.max_timestamp,
                current_txn_first_offset: None,
                coordinator_epoch: -1,
            });
        if header.is_control() {
            // A transaction marker moves the epoch, no sequence.
            if header.producer_epoch > entry.epoch {
                entry.epoch = header.producer_epoch;
                entry.batches.clear();
            }
            entry.last_timestamp = header.max_timestamp;
            let marker = marker?;
            entry.coordinator_epoch = entry.coordinator_epoch.max(marker.coordinator_epoch);
            let first_offset = entry.current_txn_first_offset.take()?;
            let last_offset = header.base_offset;
            self.unstable.insert(
                first_offset,
                UnstableTxn {
                    producer_id,
                    first_offset,
                    marker: Some(last_offset),
                },
            );
            let last_stable_offset = self
                .unstable
                .values()
                .find(|t| t.marker.is_none())
                .map_or(last_offset + 1, |t| t.first_offset);
            return Some(CompletedTxn {
                producer_id,
                first_offset,
                last_offset,
                aborted: marker.marker == TxnMarker::Abort,
                last_stable_offset,
            });
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
        if header.is_transactional() && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(header.base_offset);
            self.unstable.insert(
                header.base_offset,
                UnstableTxn {
                    producer_id,
                    first_offset: header.base_offset,
                    marker: None,
                },
            );
        }
        None
    }

    /// Removes producers whose last batch is older than `expiration_ms`
    /// (`producer.id.expiration.ms`) at `now_ms`, except those with an open
    /// transaction (as Kafka). Returns how many went.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, entry| {
            entry.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(entry.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }
}

/// The first offset of the earliest of `txns` (by first offset) that is
/// open or whose marker is at or above `high_watermark`.
pub fn first_unstable<'a>(
    txns: impl IntoIterator<Item = &'a UnstableTxn>,
    high_watermark: i64,
) -> Option<i64> {
    txns.into_iter()
        .find(|t| t.marker.is_none_or(|m| m >= high_watermark))
        .map(|t| t.first_offset)
}

mod load;
pub(crate) mod snapshot;
#[cfg(test)]
mod tests;
pub mod verification;

pub(crate) use load::{rebuild, stored_marker};
