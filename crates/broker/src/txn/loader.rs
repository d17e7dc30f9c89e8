//! Loading a `__transaction_state` partition when this broker becomes its
//! leader: every record from the log start to the log end is read back
//! (the group loader's reader, [`crate::group::loader::read_records`]) and
//! replayed in order, so the last value of each transactional id wins and
//! a tombstone removes the id.
//!
//! In: the partition. Out: each id's [`TxnMetadata`], or a [`LoadError`].
//! Blocking (disk reads): run it off the runtime. A record that does not
//! decode is logged and skipped (it may come from a newer Kafka).

use std::collections::HashMap;

use super::records::TxnRecord;
use super::state::TxnMetadata;
use crate::group::loader::{read_records, LoadError};
use crate::replica::Partition;

/// Reads `partition` and replays its transaction records.
pub fn load(partition: &Partition) -> Result<HashMap<String, TxnMetadata>, LoadError> {
    let mut ids = HashMap::new();
    read_records(partition, |offset, key, value| {
        match TxnRecord::decode(key, value) {
            Ok(TxnRecord {
                transactional_id,
                value: Some(value),
            }) => {
                ids.insert(transactional_id, TxnMetadata::from_value(&value));
            }
            Ok(TxnRecord {
                transactional_id,
                value: None,
            }) => {
                ids.remove(&transactional_id);
            }
            Err(e) => {
                tracing::warn!(offset, error = %e, "skipping a transaction record that does not decode");
            }
        }
    })?;
    Ok(ids)
}
