//! The records the transaction coordinator keeps in `__transaction_state`,
//! in Kafka's own schemas (transaction-coordinator's `TransactionLogKey`
//! and `TransactionLogValue`), so a Kafka tool reading the topic
//! understands them.
//!
//! A key is `i16` version 0 and the transactional id. A value starts with
//! its schema version: 0 (fixed-width lengths) or 1 (flexible: compact
//! lengths and tagged fields, whose tags 0-2 — previous and next producer
//! id, client transaction version — Kraft reads past); a null value is a
//! tombstone (the id expired). Values are written at version 0, as Kafka
//! writes them for clients of transaction version 1.
//!
//! In: a [`TxnRecord`] to encode, or the key/value bytes of a record read
//! back from the log. Out: the other of the two, or a [`RecordError`] for
//! bytes that do not decode.

use bytes::Bytes;

use crate::group::records::{Reader, RecordError, Writer};

/// A transaction's state, with Kafka's stored ids (`TransactionState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxnState {
    /// No transaction open (after InitProducerId).
    Empty,
    /// Partitions added, neither committed nor aborted yet.
    Ongoing,
    /// Commit decided and stored; markers being written.
    PrepareCommit,
    /// Abort decided and stored; markers being written.
    PrepareAbort,
    /// Every commit marker written.
    CompleteCommit,
    /// Every abort marker written.
    CompleteAbort,
    /// Expired; about to be removed.
    Dead,
    /// An ongoing transaction being aborted to fence its producer.
    PrepareEpochFence,
}

impl TxnState {
    /// The id Kafka stores for the state.
    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    /// The state Kafka stores as `id`.
    pub fn from_id(id: i8) -> Option<TxnState> {
        Some(match id {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// Kafka's name for the state (DescribeTransactions, ListTransactions).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }
}

/// A transactional id's stored state (`TransactionLogValue`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnValue {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// The partitions in the transaction, by topic, in the order added.
    pub partitions: Vec<(String, Vec<i32>)>,
    pub last_update_ms: i64,
    /// When the ongoing transaction started, or -1.
    pub start_ms: i64,
}

/// One record of `__transaction_state`: a transactional id and its state,
/// or `None`, a tombstone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnRecord {
    pub transactional_id: String,
    pub value: Option<TxnValue>,
}

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

impl TxnRecord {
    /// The record's key and value bytes (`None`: a tombstone).
    pub fn encode(&self) -> (Bytes, Option<Bytes>) {
        let mut key = Writer::default();
        key.i16(KEY_VERSION);
        key.string(&self.transactional_id);
        (key.done(), self.value.as_ref().map(encode_value))
    }

    /// A record from the key and value bytes read back from the log.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<TxnRecord, RecordError> {
        let mut reader = Reader::new(key, false);
        let version = reader.i16("key version")?;
        if version != KEY_VERSION {
            return Err(RecordError::UnknownKeyVersion(version));
        }
        let transactional_id = reader.string("transactional id")?;
        let value = value.map(decode_value).transpose()?;
        Ok(TxnRecord {
            transactional_id,
            value,
        })
    }
}

fn encode_value(v: &TxnValue) -> Bytes {
    let mut w = Writer::default();
    w.i16(VALUE_VERSION);
    w.i64(v.producer_id);
    w.i16(v.producer_epoch);
    w.i32(v.timeout_ms);
    w.i8(v.state.id());
    w.i32(v.partitions.len() as i32);
    for (topic, partitions) in &v.partitions {
        w.string(topic);
        w.i32(partitions.len() as i32);
        for p in partitions {
            w.i32(*p);
        }
    }
    w.i64(v.last_update_ms);
    w.i64(v.start_ms);
    w.done()
}

fn decode_value(bytes: &[u8]) -> Result<TxnValue, RecordError> {
    let mut version_reader = Reader::new(bytes, false);
    let version = version_reader.i16("value version")?;
    if !(0..=1).contains(&version) {
        return Err(RecordError::UnknownValueVersion {
            what: "transaction",
            version,
        });
    }
    let mut r = Reader::new(&bytes[2..], version >= 1);
    let producer_id = r.i64("producer id")?;
    let producer_epoch = r.i16("producer epoch")?;
    let timeout_ms = r.i32("transaction timeout")?;
    let state_id = r.i8("transaction status")?;
    let state = TxnState::from_id(state_id).ok_or(RecordError::UnknownValueVersion {
        what: "transaction status",
        version: i16::from(state_id),
    })?;
    let topics = r.array_len("transaction partitions")?;
    let mut partitions = Vec::with_capacity(topics);
    for _ in 0..topics {
        let topic = r.string("topic")?;
        let count = r.array_len("partition ids")?;
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            ids.push(r.i32("partition id")?);
        }
        r.tagged_fields()?;
        partitions.push((topic, ids));
    }
    let last_update_ms = r.i64("last update timestamp")?;
    let start_ms = r.i64("start timestamp")?;
    r.tagged_fields()?;
    Ok(TxnValue {
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        last_update_ms,
        start_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value() -> TxnValue {
        TxnValue {
            producer_id: 4001,
            producer_epoch: 3,
            timeout_ms: 60_000,
            state: TxnState::PrepareCommit,
            partitions: vec![("orders".into(), vec![0, 2]), ("audit".into(), vec![1])],
            last_update_ms: 1_700_000_000_123,
            start_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn records_round_trip() {
        let record = TxnRecord {
            transactional_id: "txn-a".into(),
            value: Some(value()),
        };
        let (key, v) = record.encode();
        assert_eq!(TxnRecord::decode(&key, v.as_deref()), Ok(record));
        let tombstone = TxnRecord {
            transactional_id: "txn-a".into(),
            value: None,
        };
        let (key, v) = tombstone.encode();
        assert_eq!(v, None);
        assert_eq!(TxnRecord::decode(&key, None), Ok(tombstone));
    }

    #[test]
    fn key_and_value_match_kafkas_bytes() {
        let (key, v) = TxnRecord {
            transactional_id: "t".into(),
            value: Some(TxnValue {
                partitions: vec![("a".into(), vec![7])],
                ..value()
            }),
        }
        .encode();
        assert_eq!(&key[..], &[0, 0, 0, 1, b't']);
        let v = v.unwrap();
        let mut expected = vec![0, 0];
        expected.extend(4001i64.to_be_bytes());
        expected.extend(3i16.to_be_bytes());
        expected.extend(60_000i32.to_be_bytes());
        expected.push(2);
        expected.extend(1i32.to_be_bytes());
        expected.extend([0, 1, b'a']);
        expected.extend(1i32.to_be_bytes());
        expected.extend(7i32.to_be_bytes());
        expected.extend(1_700_000_000_123i64.to_be_bytes());
        expected.extend(1_700_000_000_000i64.to_be_bytes());
        assert_eq!(&v[..], &expected[..]);
    }

    #[test]
    fn flexible_values_with_tagged_fields_decode() {
        // Version 1: compact lengths, and tags 0 (previous producer id) and
        // 2 (client transaction version) that Kraft reads past.
        let mut v = vec![0, 1];
        v.extend(4001i64.to_be_bytes());
        v.extend(3i16.to_be_bytes());
        v.extend(60_000i32.to_be_bytes());
        v.push(1);
        v.push(2); // one topic
        v.extend([2, b'a']); // "a"
        v.push(2); // one partition
        v.extend(7i32.to_be_bytes());
        v.push(0); // the topic's tagged fields
        v.extend(5i64.to_be_bytes());
        v.extend(4i64.to_be_bytes());
        v.push(2); // two tagged fields
        v.extend([0, 8]);
        v.extend(77i64.to_be_bytes());
        v.extend([2, 2, 0, 2]);
        let record = TxnRecord::decode(&[0, 0, 0, 1, b't'], Some(&v)).unwrap();
        let value = record.value.unwrap();
        assert_eq!(value.state, TxnState::Ongoing);
        assert_eq!(value.partitions, vec![("a".to_string(), vec![7])]);
        assert_eq!((value.last_update_ms, value.start_ms), (5, 4));
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        let (key, v) = TxnRecord {
            transactional_id: "txn-a".into(),
            value: Some(value()),
        }
        .encode();
        let v = v.unwrap();
        for cut in 0..v.len() {
            assert!(TxnRecord::decode(&key, Some(&v[..cut])).is_err(), "{cut}");
        }
        for cut in 0..key.len() {
            assert!(TxnRecord::decode(&key[..cut], None).is_err(), "{cut}");
        }
        assert!(TxnRecord::decode(&[0, 1, 0, 0], None).is_err());
        let mut bad_state = v.to_vec();
        bad_state[16] = 9;
        assert!(TxnRecord::decode(&key, Some(&bad_state)).is_err());
        // A huge array length is refused before anything is allocated.
        let mut huge = v[..17].to_vec();
        huge.extend(i32::MAX.to_be_bytes());
        assert!(TxnRecord::decode(&key, Some(&huge)).is_err());
    }
}
