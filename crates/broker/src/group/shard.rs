//! A loaded `__consumer_offsets` partition this broker leads: its groups
//! ([`ShardData`]) behind one lock, the reply channels of parked JoinGroup
//! and SyncGroup requests, writes to the partition, and the timer task
//! that fires group deadlines.
//!
//! In: group operations from [`super::GroupCoordinator`] (see
//! [`super::shard_ops`]). Out: answers on oneshot channels, and records
//! appended to the partition log as its leader, acknowledged once every
//! in-sync replica has them (acks=all).
//!
//! Locking: the lock is held while the state machine runs and while a
//! write is appended (so records reach the log in the order the state
//! changed), never across an await. Waiting for replication happens in a
//! spawned task that reports back with [`Group::persisted`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::sync::{oneshot, Notify};

use super::member::{JoinResult, SyncResult, WaiterId};
use super::records::CoordinatorRecord;
use super::shard_data::ShardData;
use super::state::{Effects, GroupTimings, Persist, Reply};
use crate::replica::{now_ms, Partition};

/// The mutable part of a shard.
pub(super) struct ShardInner {
    pub data: ShardData,
    next_waiter: WaiterId,
    join_waiters: HashMap<WaiterId, oneshot::Sender<JoinResult>>,
    sync_waiters: HashMap<WaiterId, oneshot::Sender<SyncResult>>,
}

impl ShardInner {
    pub fn join_waiter(&mut self) -> (WaiterId, oneshot::Receiver<JoinResult>) {
        let (tx, rx) = oneshot::channel();
        self.next_waiter += 1;
        self.join_waiters.insert(self.next_waiter, tx);
        (self.next_waiter, rx)
    }

    pub fn sync_waiter(&mut self) -> (WaiterId, oneshot::Receiver<SyncResult>) {
        let (tx, rx) = oneshot::channel();
        self.next_waiter += 1;
        self.sync_waiters.insert(self.next_waiter, tx);
        (self.next_waiter, rx)
    }
}

/// One loaded coordinator partition.
pub struct Shard {
    pub(super) index: i32,
    pub(super) partition: Arc<Partition>,
    pub(super) leader_epoch: i32,
    pub(super) timings: GroupTimings,
    pub(super) commit_timeout: Duration,
    inner: Mutex<ShardInner>,
    /// Wakes the timer task: a deadline may have moved.
    wake: Notify,
    closed: AtomicBool,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shard(__consumer_offsets-{})", self.index)
    }
}

/// A write appended and waiting for the ISR: the offset after it and the
/// leader epoch it was made in.
#[derive(Clone, Copy, Debug)]
pub(super) struct Appended {
    pub first_offset: i64,
    pub end_offset: i64,
    pub leader_epoch: i32,
}

impl Shard {
    pub(super) fn new(
        index: i32,
        partition: Arc<Partition>,
        leader_epoch: i32,
        data: ShardData,
        timings: GroupTimings,
        commit_timeout: Duration,
    ) -> Arc<Shard> {
        Arc::new(Shard {
            index,
            partition,
            leader_epoch,
            timings,
            commit_timeout,
            inner: Mutex::new(ShardInner {
                data,
                next_waiter: 0,
                join_waiters: HashMap::new(),
                sync_waiters: HashMap::new(),
            }),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
        })
    }

    /// The `__consumer_offsets` partition this shard serves.
    pub fn index(&self) -> i32 {
        self.index
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, ShardInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the shard has stopped serving.
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Tells the timer task that deadlines may have changed.
    pub(super) fn poke(&self) {
        self.wake.notify_one();
    }

    /// Appends `records` as one batch, as the partition's leader. The error
    /// is the coordinator error code clients get.
    pub(super) fn append(&self, records: &[CoordinatorRecord]) -> Result<Appended, i16> {
        self.append_of(records, None)
    }

    /// [`append`](Self::append), as a transactional batch of `producer`
    /// when given (TxnOffsetCommit).
    pub(super) fn append_of(
        &self,
        records: &[CoordinatorRecord],
        producer: Option<TxnProducer>,
    ) -> Result<Appended, i16> {
        let now = now_ms();
        let encoded: Vec<(Bytes, Option<Bytes>)> = records.iter().map(|r| r.encode()).collect();
        let batch = encode_records_of(&encoded, now, producer).map_err(|e| {
            tracing::error!(shard = ?self, error = %e, "cannot encode coordinator records");
            ResponseError::UnknownServerError.code()
        })?;
        let verification = producer.and_then(|p| p.verification);
        match self
            .partition
            .append_as_leader_verified(batch, -1, now, verification)
        {
            Ok((info, leader_epoch)) => Ok(Appended {
                first_offset: info.first_offset,
                end_offset: info.last_offset + 1,
                leader_epoch,
            }),
            Err(e) => {
                tracing::debug!(shard = ?self, error = %e, "coordinator write refused");
                Err(match (producer, e.code()) {
                    // A transaction's own refusals reach its producer as is.
                    (Some(_), code) if is_producer_error(code) => code,
                    (_, code) => coordinator_error(code),
                })
            }
        }
    }

    /// Waits until the ISR has an appended write (within
    /// `offsets.commit.timeout.ms`).
    pub(super) async fn replicated(&self, appended: Appended) -> Result<(), i16> {
        let deadline = tokio::time::Instant::now() + self.commit_timeout;
        let code = self
            .partition
            .wait_for_replication(appended.end_offset, appended.leader_epoch, deadline)
            .await;
        if code == 0 {
            Ok(())
        } else {
            Err(coordinator_error(code))
        }
    }

    /// Carries out what the state machine of `group_id` asked for: answers
    /// parked requests and persists the group (the write's outcome comes
    /// back through [`Group::persisted`]).
    pub(super) fn dispatch(
        self: &Arc<Self>,
        inner: &mut ShardInner,
        group_id: &str,
        effects: Effects,
    ) {
        for reply in effects.replies {
            match reply {
                Reply::Join(waiter, result) => {
                    if let Some(tx) = inner.join_waiters.remove(&waiter) {
                        let _ = tx.send(result);
                    }
                }
                Reply::Sync(waiter, result) => {
                    if let Some(tx) = inner.sync_waiters.remove(&waiter) {
                        let _ = tx.send(result);
                    }
                }
            }
        }
        for persist in effects.persist {
            let Some(entry) = inner.data.groups.get(group_id) else {
                continue;
            };
            let record = CoordinatorRecord::Group {
                group: group_id.to_string(),
                value: Some(entry.group.to_value()),
            };
            match self.append(&[record]) {
                Ok(appended) => {
                    let shard = self.clone();
                    let group_id = group_id.to_string();
                    tokio::spawn(async move {
                        let outcome = shard.replicated(appended).await;
                        shard.on_persisted(&group_id, &persist, outcome);
                    });
                }
                Err(code) => {
                    let more = match inner.data.groups.get_mut(group_id) {
                        Some(entry) => entry.group.persisted(&persist, Err(code), now_ms()),
                        None => Effects::default(),
                    };
                    self.dispatch(inner, group_id, more);
                }
            }
        }
    }

    fn on_persisted(self: &Arc<Self>, group_id: &str, persist: &Persist, outcome: Result<(), i16>) {
        let mut inner = self.lock();
        let effects = match inner.data.groups.get_mut(group_id) {
            Some(entry) => entry.group.persisted(persist, outcome, now_ms()),
            None => Effects::default(),
        };
        self.dispatch(&mut inner, group_id, effects);
        drop(inner);
        self.poke();
    }

    /// Fires every group deadline that has passed, then sleeps until the
    /// next one (or until poked). Ends when the shard is closed.
    pub(super) async fn run_timers(self: Arc<Self>) {
        while !self.closed.load(Ordering::Acquire) {
            let now = now_ms();
            let next = {
                let mut inner = self.lock();
                let due: Vec<String> = inner
                    .data
                    .groups
                    .iter()
                    .filter(|(_, e)| e.group.next_deadline().is_some_and(|d| d <= now))
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in due {
                    let effects = match inner.data.groups.get_mut(&id) {
                        Some(entry) => entry.group.tick(now),
                        None => continue,
                    };
                    self.dispatch(&mut inner, &id, effects);
                }
                // Forget groups that hold nothing (a join that never
                // completed the member-id round trip, say).
                inner
                    .data
                    .groups
                    .retain(|_, e| e.exists() || e.group.next_deadline().is_some());
                inner
                    .data
                    .groups
                    .values()
                    .filter_map(|e| e.group.next_deadline())
                    .min()
            };
            let sleep = match next {
                Some(at) => Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    /// Stops the shard: every parked request gets `error` and the timer
    /// task ends.
    pub(super) fn close(self: &Arc<Self>, error: i16) {
        self.closed.store(true, Ordering::Release);
        let mut inner = self.lock();
        let ids: Vec<String> = inner.data.groups.keys().cloned().collect();
        for id in ids {
            let effects = match inner.data.groups.get_mut(&id) {
                Some(entry) => entry.group.abandon(error),
                None => continue,
            };
            self.dispatch(&mut inner, &id, effects);
        }
        for (_, tx) in inner.join_waiters.drain() {
            let _ = tx.send(JoinResult::error("", error));
        }
        for (_, tx) in inner.sync_waiters.drain() {
            let _ = tx.send(SyncResult::error(error));
        }
        drop(inner);
        self.wake.notify_one();
    }
}

/// A partition error as the error a group client gets, as Kafka maps them.
pub(crate) fn coordinator_error(code: i16) -> i16 {
    use ResponseError::*;
    let mapped = match ResponseError::try_from_code(code) {
        Some(
            UnknownTopicOrPartition
            | NotEnoughReplicas
            | NotEnoughReplicasAfterAppend
            | RequestTimedOut,
        ) => CoordinatorNotAvailable,
        Some(NotLeaderOrFollower | KafkaStorageError) => NotCoordinator,
        Some(MessageTooLarge) => InvalidCommitOffsetSize,
        _ => UnknownServerError,
    };
    mapped.code()
}

/// Whether a log refusal is about the producer of a transactional write
/// (its epoch, sequence or transaction state), not the coordinator.
fn is_producer_error(code: i16) -> bool {
    use ResponseError::*;
    matches!(
        ResponseError::try_from_code(code),
        Some(InvalidProducerEpoch | ProducerFenced | OutOfOrderSequenceNumber | InvalidTxnState)
    )
}

/// One uncompressed v2 batch of encoded keys and values (`None`: a
/// tombstone), as both coordinators write them.
pub fn encode_records(
    records: &[(Bytes, Option<Bytes>)],
    now: i64,
) -> Result<Bytes, BatchEncodeError> {
    encode_records_of(records, now, None)
}

/// A transaction's producer, for a transactional batch: id, epoch and the
/// batch's first sequence.
#[derive(Clone, Copy, Debug)]
pub struct TxnProducer {
    pub producer_id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
    /// The KIP-890 guard the batch is appended under
    /// (`Partition::append_as_leader_verified`).
    pub verification: Option<u64>,
}

/// [`encode_records`], as a transactional batch of `producer` when given.
pub fn encode_records_of(
    records: &[(Bytes, Option<Bytes>)],
    now: i64,
    producer: Option<TxnProducer>,
) -> Result<Bytes, BatchEncodeError> {
    let (producer_id, producer_epoch, base_sequence) =
        producer.map_or((-1, -1, 0), |p| (p.producer_id, p.epoch, p.base_sequence));
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| {
            let (key, value) = (key.clone(), value.clone());
            Record {
                transactional: producer.is_some(),
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // kafka-protocol starts a new batch where offset - sequence
                // changes; without a producer id the sequence means nothing.
                sequence: base_sequence.wrapping_add(i as i32),
                timestamp: now,
                key: Some(key),
                value,
                headers: Default::default(),
            }
        })
        .collect();
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut out,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| BatchEncodeError(e.to_string()))?;
    Ok(out.freeze())
}

/// Why [`encode_records_of`] failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode a record batch: {0}")]
pub struct BatchEncodeError(String);
