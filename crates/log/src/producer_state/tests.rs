//! The producer-state rules, one per test, on headers built by hand.

use super::*;
use kafka_protocol::error::ResponseError;

/// A data batch of `count` records from producer `pid`, written at `offset`.
fn batch(pid: i64, epoch: i16, seq: i32, count: i32, offset: i64) -> BatchHeader {
    BatchHeader {
        base_offset: offset,
        batch_length: 100,
        partition_leader_epoch: 0,
        magic: 2,
        crc: 0,
        attributes: 0,
        last_offset_delta: count - 1,
        base_timestamp: 1_000,
        max_timestamp: 1_000 + offset,
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        records_count: count,
    }
}

fn code(result: Result<Checked, LogError>) -> i16 {
    match result {
        Ok(_) => 0,
        Err(e) => e.kafka_error_code(),
    }
}

/// A state with producer 7, epoch 0, batches of 2 records at seq 0, 2, 4, ...
fn with_batches(n: i32) -> ProducerStates {
    let mut states = ProducerStates::new();
    for i in 0..n {
        states.record(&batch(7, 0, i * 2, 2, i64::from(i) * 2), None);
    }
    states
}

#[test]
fn batches_without_a_producer_id_are_always_appended() {
    let states = with_batches(3);
    assert_eq!(
        states.check(&batch(-1, -1, -1, 3, 0), 6).ok(),
        Some(Checked::Append)
    );
}

#[test]
fn the_next_sequence_is_appended_and_a_gap_is_out_of_order() {
    let states = with_batches(3);
    assert_eq!(
        states.check(&batch(7, 0, 6, 1, 6), 6).ok(),
        Some(Checked::Append)
    );
    assert_eq!(
        code(states.check(&batch(7, 0, 8, 1, 6), 6)),
        ResponseError::OutOfOrderSequenceNumber.code()
    );
    // A batch overlapping retained ones without matching one exactly.
    assert_eq!(
        code(states.check(&batch(7, 0, 3, 1, 6), 6)),
        ResponseError::OutOfOrderSequenceNumber.code()
    );
}

#[test]
fn a_duplicate_of_any_of_the_last_five_batches_gets_its_offsets() {
    let states = with_batches(7);
    // Batches 2..=6 are retained (seq 4..=13), 0 and 1 are not.
    for i in 2..7 {
        let found = states.check(&batch(7, 0, i * 2, 2, 99), 14).ok();
        let expected = BatchMetadata {
            first_seq: i * 2,
            last_seq: i * 2 + 1,
            first_offset: i64::from(i) * 2,
            last_offset: i64::from(i) * 2 + 1,
            timestamp: 1_000 + i64::from(i) * 2,
        };
        assert_eq!(found, Some(Checked::Duplicate(expected)), "batch {i}");
    }
    // Older than the window: out of order, as in Kafka.
    assert_eq!(
        code(states.check(&batch(7, 0, 2, 2, 99), 14)),
        ResponseError::OutOfOrderSequenceNumber.code()
    );
    assert_eq!(
        states.get(7).map(|e| e.batches.len()),
        Some(BATCHES_TO_RETAIN)
    );
}

#[test]
fn an_older_epoch_is_invalid_producer_epoch() {
    let mut states = with_batches(1);
    states.record(&batch(7, 3, 0, 1, 10), None);
    assert_eq!(
        code(states.check(&batch(7, 2, 1, 1, 11), 11)),
        ResponseError::InvalidProducerEpoch.code()
    );
    // Even a batch that was a duplicate under the old epoch.
    assert_eq!(
        code(states.check(&batch(7, 0, 0, 2, 11), 11)),
        ResponseError::InvalidProducerEpoch.code()
    );
}

#[test]
fn a_new_epoch_starts_at_sequence_zero_and_clears_the_old_batches() {
    let mut states = with_batches(3);
    assert_eq!(
        code(states.check(&batch(7, 1, 6, 1, 6), 6)),
        ResponseError::OutOfOrderSequenceNumber.code()
    );
    assert_eq!(
        states.check(&batch(7, 1, 0, 1, 6), 6).ok(),
        Some(Checked::Append)
    );
    // The epoch bump (KIP-360): the producer resets its sequences.
    states.record(&batch(7, 1, 0, 1, 6), None);
    let entry = states.get(7).cloned();
    assert_eq!(entry.as_ref().map(|e| e.epoch), Some(1));
    assert_eq!(entry.map(|e| e.batches.len()), Some(1));
    assert_eq!(
        states.check(&batch(7, 1, 1, 1, 7), 7).ok(),
        Some(Checked::Append)
    );
}

#[test]
fn an_unknown_producer_is_accepted_at_any_sequence_as_kafka_3_does() {
    let states = with_batches(1);
    assert_eq!(
        states.check(&batch(8, 0, 0, 1, 2), 2).ok(),
        Some(Checked::Append)
    );
    assert_eq!(
        states.check(&batch(8, 5, 42, 1, 2), 2).ok(),
        Some(Checked::Append)
    );
}

#[test]
fn sequences_wrap_at_i32_max() {
    assert_eq!(last_sequence(i32::MAX, 0), i32::MAX);
    assert_eq!(last_sequence(i32::MAX, 1), 0);
    assert_eq!(last_sequence(i32::MAX - 1, 3), 1);
    let mut states = ProducerStates::new();
    states.record(&batch(7, 0, i32::MAX - 1, 2, 0), None);
    assert_eq!(states.get(7).and_then(|e| e.last_seq()), Some(i32::MAX));
    assert_eq!(
        states.check(&batch(7, 0, 0, 3, 2), 2).ok(),
        Some(Checked::Append)
    );
    assert_eq!(
        code(states.check(&batch(7, 0, 1, 3, 2), 2)),
        ResponseError::OutOfOrderSequenceNumber.code()
    );
    // A batch that itself wraps: its last sequence is 1.
    let mut states = ProducerStates::new();
    states.record(&batch(7, 0, i32::MAX - 1, 4, 0), None);
    assert_eq!(states.get(7).and_then(|e| e.last_seq()), Some(1));
    assert_eq!(
        states.check(&batch(7, 0, 2, 1, 4), 4).ok(),
        Some(Checked::Append)
    );
    assert!(matches!(
        states.check(&batch(7, 0, i32::MAX - 1, 4, 9), 9),
        Ok(Checked::Duplicate(_))
    ));
}

#[test]
fn expiry_removes_producers_whose_last_batch_is_old() {
    let mut states = with_batches(2); // producer 7: last timestamp 1002
    states.record(&batch(9, 0, 0, 1, 10), None); // timestamp 1010
    assert_eq!(states.remove_expired(1_002 + 99, 100), 0);
    assert_eq!(states.remove_expired(1_002 + 100, 100), 1);
    assert!(states.get(7).is_none());
    assert_eq!(states.remove_expired(1_010 + 100, 100), 1);
    assert!(states.is_empty());
}
