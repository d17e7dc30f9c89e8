//! A loaded `__transaction_state` partition this broker leads: the state
//! of its transactional ids ([`TxnMetadata`]) behind one lock, and writes
//! of their records to the partition.
//!
//! In: updates from [`super::ops`] — a closure that looks at an id's state
//! under the lock and returns the value to write (see [`super::state`]).
//! Out: the record appended to the partition as its leader and, once every
//! in-sync replica has it (acks=all, within the coordinator's write
//! timeout), the new state applied in memory; or the Kafka error code the
//! client gets (NOT_COORDINATOR once the partition is lost,
//! COORDINATOR_NOT_AVAILABLE while it cannot be written).
//!
//! Locking: the lock is held while the closure runs and while the record
//! is appended (records reach the log in the order states changed), never
//! across an await. An id with a write in flight has `pending` set, which
//! the state rules answer with CONCURRENT_TRANSACTIONS.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kafka_protocol::error::ResponseError;

use super::records::{TxnRecord, TxnValue};
use super::state::TxnMetadata;
use crate::group::shard::{coordinator_error, encode_records};
use crate::replica::{now_ms, Partition};

/// One loaded coordinator partition.
pub struct TxnShard {
    pub(super) index: i32,
    partition: Arc<Partition>,
    /// The partition's leader epoch when this broker took it over: the
    /// coordinator epoch its markers carry.
    pub(super) coordinator_epoch: i32,
    write_timeout: Duration,
    ids: Mutex<HashMap<String, TxnMetadata>>,
    closed: AtomicBool,
}

impl std::fmt::Debug for TxnShard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TxnShard(__transaction_state-{})", self.index)
    }
}

impl TxnShard {
    pub(super) fn new(
        index: i32,
        partition: Arc<Partition>,
        coordinator_epoch: i32,
        ids: HashMap<String, TxnMetadata>,
        write_timeout: Duration,
    ) -> Arc<TxnShard> {
        Arc::new(TxnShard {
            index,
            partition,
            coordinator_epoch,
            write_timeout,
            ids: Mutex::new(ids),
            closed: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, TxnMetadata>> {
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops serving: later updates get NOT_COORDINATOR.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// A copy of `id`'s state.
    pub fn get(&self, id: &str) -> Option<TxnMetadata> {
        self.lock().get(id).cloned()
    }

    /// The ids whose state `pick` selects, with that state.
    pub fn select(&self, pick: impl Fn(&TxnMetadata) -> bool) -> Vec<(String, TxnMetadata)> {
        self.lock()
            .iter()
            .filter(|(_, m)| pick(m))
            .map(|(id, m)| (id.clone(), m.clone()))
            .collect()
    }

    /// Runs `prepare` on `id`'s state (None: no state) under the lock; if
    /// it returns a value, writes it and applies it once replicated.
    /// Returns the value written, if any.
    pub async fn update(
        &self,
        id: &str,
        prepare: impl FnOnce(Option<&TxnMetadata>) -> Result<Option<TxnValue>, ResponseError>,
    ) -> Result<Option<TxnValue>, ResponseError> {
        let (value, appended, existed) = {
            let mut ids = self.lock();
            if self.is_closed() {
                return Err(ResponseError::NotCoordinator);
            }
            let Some(value) = prepare(ids.get(id))? else {
                return Ok(None);
            };
            let record = TxnRecord {
                transactional_id: id.to_string(),
                value: Some(value.clone()),
            };
            let appended = self.append(&record)?;
            let existed = ids.contains_key(id);
            let entry = ids
                .entry(id.to_string())
                .or_insert_with(|| TxnMetadata::from_value(&value));
            entry.pending = Some(value.clone());
            (value, appended, existed)
        };
        let deadline = tokio::time::Instant::now() + self.write_timeout;
        let code = self
            .partition
            .wait_for_replication(appended.0, appended.1, deadline)
            .await;
        let mut ids = self.lock();
        if code != 0 || self.is_closed() {
            if existed {
                if let Some(m) = ids.get_mut(id) {
                    m.abandon();
                }
            } else {
                ids.remove(id);
            }
            if self.is_closed() {
                return Err(ResponseError::NotCoordinator);
            }
            return Err(error(coordinator_error(code)));
        }
        if let Some(m) = ids.get_mut(id) {
            m.complete(value.clone());
        }
        Ok(Some(value))
    }

    /// Removes `id` if `expired` still holds for its state under the lock
    /// (`transactional.id.expiration.ms`): a tombstone is written and, once
    /// replicated, the id is forgotten. Meanwhile the id has a write in
    /// flight, so its requests get CONCURRENT_TRANSACTIONS. Whether it
    /// went.
    pub async fn remove_if(&self, id: &str, expired: impl FnOnce(&TxnMetadata) -> bool) -> bool {
        let appended = {
            let mut ids = self.lock();
            if self.is_closed() {
                return false;
            }
            let Some(m) = ids.get_mut(id).filter(|m| expired(m)) else {
                return false;
            };
            let record = TxnRecord {
                transactional_id: id.to_string(),
                value: None,
            };
            let Ok(appended) = self.append(&record) else {
                return false;
            };
            m.pending = Some(m.to_value());
            appended
        };
        let deadline = tokio::time::Instant::now() + self.write_timeout;
        let code = self
            .partition
            .wait_for_replication(appended.0, appended.1, deadline)
            .await;
        let mut ids = self.lock();
        if code != 0 || self.is_closed() {
            if let Some(m) = ids.get_mut(id) {
                m.abandon();
            }
            return false;
        }
        ids.remove(id);
        true
    }

    /// Appends one record as the partition's leader: the offset after it
    /// and the leader epoch it was written in.
    fn append(&self, record: &TxnRecord) -> Result<(i64, i32), ResponseError> {
        let now = now_ms();
        let (key, value) = record.encode();
        let batch = encode_records(&[(key, value)], now).map_err(|e| {
            tracing::error!(shard = ?self, error = %e, "cannot encode a transaction record");
            ResponseError::UnknownServerError
        })?;
        match self.partition.append_as_leader(batch, -1, now) {
            Ok((info, leader_epoch)) if leader_epoch == self.coordinator_epoch => {
                Ok((info.last_offset + 1, leader_epoch))
            }
            Ok(_) => Err(ResponseError::NotCoordinator),
            Err(e) => {
                tracing::debug!(shard = ?self, error = %e, "transaction state write refused");
                Err(error(coordinator_error(e.code())))
            }
        }
    }
}

fn error(code: i16) -> ResponseError {
    ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError)
}
