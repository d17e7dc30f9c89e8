//! One transactional id's state and the rules that change it, as Kafka's
//! `TransactionMetadata` and `TransactionCoordinator` (transaction version
//! 1, the version librdkafka and the Java client below 4.0 speak): pure
//! functions from the current state and a request to the record to write,
//! or to the error the client gets.
//!
//! A change is made in two steps. `prepare_*` checks the request and
//! returns the [`TxnValue`] to write; the caller marks the id as having a
//! write in flight ([`TxnMetadata::pending`]) so concurrent requests get
//! CONCURRENT_TRANSACTIONS, appends the record, and once it is replicated
//! calls [`TxnMetadata::complete`] (or [`TxnMetadata::abandon`] if the write
//! failed). Nothing here does I/O or reads the clock.
//!
//! In: requests (InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn,
//! EndTxn), expiry scans and stored values. Out: values to write, or
//! Kafka error codes.

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;

use super::records::{TxnState, TxnValue};

/// A transactional id's state in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnMetadata {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump, so a retried InitProducerId whose
    /// answer was lost is recognised (KIP-360); -1 if none.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    pub start_ms: i64,
    pub last_update_ms: i64,
    /// The value being written, while a write is in flight.
    pub pending: Option<TxnValue>,
}

/// Why a request cannot go ahead.
pub type TxnError = ResponseError;

/// Where an InitProducerId goes from the current state.
#[derive(Debug, PartialEq, Eq)]
pub enum InitStep {
    /// Write this value (epoch bumped, or a new producer id) and answer it.
    Write(TxnValue),
    /// An ongoing transaction must be aborted first, with this value (state
    /// PrepareAbort, epoch bumped to fence the old producer); then ask again.
    AbortFirst(TxnValue),
    /// A retry of the init that was answered already: the same answer.
    Answer { producer_id: i64, epoch: i16 },
}

impl TxnMetadata {
    /// The state stored in `value`.
    pub fn from_value(value: &TxnValue) -> TxnMetadata {
        TxnMetadata {
            producer_id: value.producer_id,
            producer_epoch: value.producer_epoch,
            last_producer_epoch: -1,
            timeout_ms: value.timeout_ms,
            state: value.state,
            partitions: value
                .partitions
                .iter()
                .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
                .collect(),
            start_ms: value.start_ms,
            last_update_ms: value.last_update_ms,
            pending: None,
        }
    }

    /// The value as it stands.
    pub fn to_value(&self) -> TxnValue {
        let mut partitions: Vec<(String, Vec<i32>)> = Vec::new();
        for (topic, p) in &self.partitions {
            match partitions.last_mut() {
                Some((t, ps)) if t == topic => ps.push(*p),
                _ => partitions.push((topic.clone(), vec![*p])),
            }
        }
        TxnValue {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            timeout_ms: self.timeout_ms,
            state: self.state,
            partitions,
            last_update_ms: self.last_update_ms,
            start_ms: self.start_ms,
        }
    }

    /// Applies a write that the ISR now has.
    pub fn complete(&mut self, value: TxnValue) {
        let previous_epoch = self.producer_epoch;
        let bumped =
            value.producer_epoch != previous_epoch || value.producer_id != self.producer_id;
        let mut next = TxnMetadata::from_value(&value);
        next.last_producer_epoch = if bumped {
            if value.producer_id == self.producer_id {
                previous_epoch
            } else {
                -1
            }
        } else {
            self.last_producer_epoch
        };
        *self = next;
    }

    /// Forgets a write that failed: the state stays as it was.
    pub fn abandon(&mut self) {
        self.pending = None;
    }

    fn check_not_pending(&self) -> Result<(), TxnError> {
        if self.pending.is_some() {
            return Err(ResponseError::ConcurrentTransactions);
        }
        Ok(())
    }

    /// Checks a client's producer id and epoch against this id's.
    fn check_producer(&self, producer_id: i64, epoch: i16) -> Result<(), TxnError> {
        if producer_id != self.producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if epoch != self.producer_epoch {
            return Err(ResponseError::ProducerFenced);
        }
        Ok(())
    }

    /// InitProducerId for an id that has state. `new_id` gives a fresh
    /// producer id when the epoch would overflow.
    pub fn prepare_init(
        &self,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        now: i64,
        new_id: Option<i64>,
    ) -> Result<InitStep, TxnError> {
        self.check_not_pending()?;
        if let Some((pid, epoch)) = expected {
            let current = pid == self.producer_id && epoch == self.producer_epoch;
            let retried = pid == self.producer_id
                && self.last_producer_epoch >= 0
                && epoch == self.last_producer_epoch;
            if retried && self.state == TxnState::Empty {
                return Ok(InitStep::Answer {
                    producer_id: self.producer_id,
                    epoch: self.producer_epoch,
                });
            }
            if !current {
                return Err(ResponseError::ProducerFenced);
            }
        }
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                Err(ResponseError::ConcurrentTransactions)
            }
            TxnState::Ongoing => {
                let mut value = self.to_value();
                value.producer_epoch = self.bumped_epoch();
                value.state = TxnState::PrepareAbort;
                value.last_update_ms = now;
                Ok(InitStep::AbortFirst(value))
            }
            TxnState::Empty
            | TxnState::CompleteCommit
            | TxnState::CompleteAbort
            | TxnState::Dead => {
                let (producer_id, epoch) = if self.producer_epoch >= i16::MAX - 1 {
                    match new_id {
                        Some(id) => (id, 0),
                        None => return Err(ResponseError::CoordinatorLoadInProgress),
                    }
                } else {
                    (self.producer_id, self.producer_epoch + 1)
                };
                Ok(InitStep::Write(TxnValue {
                    producer_id,
                    producer_epoch: epoch,
                    timeout_ms,
                    state: TxnState::Empty,
                    partitions: Vec::new(),
                    last_update_ms: now,
                    start_ms: -1,
                }))
            }
        }
    }

    /// Whether InitProducerId needs a new producer id (the epoch is about
    /// to run out).
    pub fn epoch_exhausted(&self) -> bool {
        self.producer_epoch >= i16::MAX - 1
    }

    fn bumped_epoch(&self) -> i16 {
        // Fencing at the last epoch keeps it; the next init takes a new id.
        self.producer_epoch.saturating_add(1).min(i16::MAX - 1)
    }

    /// KIP-890's check for a partition leader (AddPartitionsToTxn v4+
    /// `verify_only`): per partition, whether it is in the producer's
    /// ongoing transaction. Nothing is written. A wrong producer id or
    /// epoch is INVALID_PRODUCER_ID_MAPPING or PRODUCER_FENCED; a
    /// transaction being written or ending is CONCURRENT_TRANSACTIONS.
    pub fn verify(
        &self,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<bool>, TxnError> {
        self.check_producer(producer_id, epoch)?;
        if let Some(pending) = &self.pending {
            if pending.state != TxnState::Ongoing {
                return Err(ResponseError::ConcurrentTransactions);
            }
        }
        if matches!(
            self.state,
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence
        ) {
            return Err(ResponseError::ConcurrentTransactions);
        }
        let ongoing = self.state == TxnState::Ongoing;
        Ok(partitions
            .iter()
            .map(|p| ongoing && self.partitions.contains(p))
            .collect())
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: `None` when every partition is
    /// in the transaction already (nothing to write).
    pub fn prepare_add(
        &self,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        now: i64,
    ) -> Result<Option<TxnValue>, TxnError> {
        self.check_producer(producer_id, epoch)?;
        self.check_not_pending()?;
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                return Err(ResponseError::ConcurrentTransactions)
            }
            TxnState::Dead => return Err(ResponseError::InvalidTxnState),
            TxnState::Ongoing if partitions.iter().all(|p| self.partitions.contains(p)) => {
                return Ok(None)
            }
            _ => {}
        }
        let mut next = self.clone();
        if self.state != TxnState::Ongoing {
            next.partitions.clear();
            next.start_ms = now;
        }
        next.partitions.extend(partitions.iter().cloned());
        next.state = TxnState::Ongoing;
        next.last_update_ms = now;
        Ok(Some(next.to_value()))
    }

    /// EndTxn from the client: `None` when the transaction already ended
    /// this way (a retry: answer success).
    pub fn prepare_end(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        now: i64,
    ) -> Result<Option<TxnValue>, TxnError> {
        self.check_producer(producer_id, epoch)?;
        self.check_not_pending()?;
        match (self.state, commit) {
            (TxnState::Ongoing, _) => {
                let mut value = self.to_value();
                value.state = if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                };
                value.last_update_ms = now;
                Ok(Some(value))
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(None),
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Err(ResponseError::ConcurrentTransactions)
            }
            _ => Err(ResponseError::InvalidTxnState),
        }
    }

    /// The abort of a transaction past its timeout, by the coordinator: the
    /// epoch bumped (fencing the producer, as Kafka does), PrepareAbort.
    /// `None` unless the transaction is ongoing, idle and expired.
    pub fn prepare_timeout_abort(&self, now: i64) -> Option<TxnValue> {
        if self.pending.is_some()
            || self.state != TxnState::Ongoing
            || self.start_ms + i64::from(self.timeout_ms) > now
        {
            return None;
        }
        let mut value = self.to_value();
        value.producer_epoch = self.bumped_epoch();
        value.state = TxnState::PrepareAbort;
        value.last_update_ms = now;
        Some(value)
    }

    /// Whether the id has expired (`transactional.id.expiration.ms`): no
    /// transaction open or ending and no write in flight, and no change for
    /// `expiration_ms` at `now`, as Kafka's coordinator decides.
    pub fn expired(&self, now: i64, expiration_ms: i64) -> bool {
        self.pending.is_none()
            && matches!(
                self.state,
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
            )
            && now.saturating_sub(self.last_update_ms) >= expiration_ms
    }

    /// After the markers of a PrepareCommit/PrepareAbort are written: the
    /// Complete state to write.
    pub fn prepare_complete(&self, now: i64) -> Option<TxnValue> {
        let state = match self.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            _ => return None,
        };
        Some(TxnValue {
            state,
            partitions: Vec::new(),
            last_update_ms: now,
            ..self.to_value()
        })
    }
}

/// A new transactional id's first state: a fresh producer id at epoch 0.
pub fn first_value(producer_id: i64, timeout_ms: i32, now: i64) -> TxnValue {
    TxnValue {
        producer_id,
        producer_epoch: 0,
        timeout_ms,
        state: TxnState::Empty,
        partitions: Vec::new(),
        last_update_ms: now,
        start_ms: -1,
    }
}

#[cfg(test)]
mod tests;
