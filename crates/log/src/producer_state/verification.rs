//! KIP-890's guard on a partition leader: a transactional batch that would
//! open its producer's transaction on this partition is appended only if
//! the transaction coordinator confirmed, after the batch arrived, that
//! the partition is in the producer's ongoing transaction, and no marker
//! for the producer was written since. Without it a late or stray write
//! opens a transaction nobody will ever end, and the last stable offset
//! stops there for good (a "hanging transaction").
//!
//! In: [`ProducerStates::start_verification`] before the broker asks the
//! coordinator; every batch recorded (a marker or a transactional batch of
//! the producer ends its verification). Out: whether a batch may be
//! appended under a guard ([`ProducerStates::check_verified`]).

use std::collections::HashMap;

use super::{has_producer_id, ProducerStates};
use crate::batch::BatchHeader;
use crate::error::LogError;

/// Verifications in flight: producer id -> the guard handed out.
#[derive(Clone, Debug, Default)]
pub(super) struct Verifications {
    guards: HashMap<i64, u64>,
    next: u64,
}

impl Verifications {
    /// A marker or a transactional batch of `producer_id` was written: a
    /// verification started before it no longer holds.
    pub(super) fn end(&mut self, producer_id: i64) {
        self.guards.remove(&producer_id);
    }
}

impl ProducerStates {
    /// Whether `producer_id` has a transaction open on this partition.
    pub fn has_ongoing_txn(&self, producer_id: i64) -> bool {
        self.get(producer_id)
            .is_some_and(|e| e.current_txn_first_offset.is_some())
    }

    /// Starts verifying a transactional write of `producer_id`: `None` when
    /// its transaction is open here already (nothing to verify), else the
    /// guard to append with once the coordinator confirmed. Batches that
    /// arrive while one is in flight share its guard (pipelined batches of
    /// one transaction), as Kafka's `VerificationGuard`.
    pub fn start_verification(&mut self, producer_id: i64) -> Option<u64> {
        if self.has_ongoing_txn(producer_id) {
            return None;
        }
        let v = &mut self.verifications;
        if let Some(&guard) = v.guards.get(&producer_id) {
            return Some(guard);
        }
        v.next += 1;
        v.guards.insert(producer_id, v.next);
        Some(v.next)
    }

    /// Whether `header`'s batch may be appended under `guard`: a batch
    /// that is not transactional, or whose producer's transaction is open
    /// here, needs none; otherwise the guard must still be the producer's
    /// (no marker or newer verification since). INVALID_TXN_STATE if not.
    pub fn check_verified(&self, header: &BatchHeader, guard: Option<u64>) -> Result<(), LogError> {
        if !header.is_transactional()
            || !has_producer_id(header)
            || self.has_ongoing_txn(header.producer_id)
        {
            return Ok(());
        }
        let current = self.verifications.guards.get(&header.producer_id).copied();
        if guard.is_some() && current == guard {
            return Ok(());
        }
        Err(LogError::TxnNotVerified {
            producer_id: header.producer_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{MarkerRecord, TxnMarker, CONTROL_BIT, TRANSACTIONAL_BIT};

    fn header(pid: i64, offset: i64, attributes: i16) -> BatchHeader {
        BatchHeader {
            base_offset: offset,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes,
            last_offset_delta: 0,
            base_timestamp: 1_000,
            max_timestamp: 1_000,
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: offset as i32,
            records_count: 1,
        }
    }

    fn txn(pid: i64, offset: i64) -> BatchHeader {
        header(pid, offset, TRANSACTIONAL_BIT)
    }

    fn abort(states: &mut ProducerStates, pid: i64, offset: i64) {
        let marker = MarkerRecord {
            marker: TxnMarker::Abort,
            coordinator_epoch: 0,
        };
        states.record(
            &header(pid, offset, TRANSACTIONAL_BIT | CONTROL_BIT),
            Some(marker),
        );
    }

    #[test]
    fn a_first_transactional_write_needs_its_guard() {
        let mut states = ProducerStates::new();
        assert!(states.check_verified(&txn(7, 0), Some(0)).is_err());
        let guard = states.start_verification(7).expect("nothing open yet");
        // Pipelined batches of the same transaction share the guard.
        assert_eq!(states.start_verification(7), Some(guard));
        assert!(states.check_verified(&txn(7, 0), Some(guard)).is_ok());
        assert!(states.check_verified(&txn(7, 0), Some(guard + 1)).is_err());
        states.record(&txn(7, 0), None);
        // Open now: nothing to verify, any guard passes.
        assert_eq!(states.start_verification(7), None);
        assert!(states.check_verified(&txn(7, 1), Some(0)).is_ok());
        // Other producers and non-transactional batches are not concerned.
        assert!(states.check_verified(&header(8, 2, 0), Some(0)).is_ok());
    }

    #[test]
    fn a_marker_between_the_answer_and_the_append_voids_the_guard() {
        let mut states = ProducerStates::new();
        states.record(&txn(7, 0), None);
        let late = states.start_verification(7);
        assert_eq!(late, None, "open: the late batch carries guard 0");
        abort(&mut states, 7, 1);
        assert!(
            states.check_verified(&txn(7, 2), Some(0)).is_err(),
            "the transaction it belonged to ended"
        );
        // A guard handed out before a marker is void after it.
        let guard = states.start_verification(7).expect("nothing open");
        abort(&mut states, 7, 2);
        assert_eq!(
            states
                .check_verified(&txn(7, 3), Some(guard))
                .map_err(|e| e.kafka_error_code()),
            Err(48)
        );
    }
}
