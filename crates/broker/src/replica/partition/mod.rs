//! [`Partition`]: one replica of one partition hosted by this broker — its
//! log, what the metadata says about it (leader, epoch, ISR), and the
//! high watermark that consumers read up to.
//!
//! In: state changes from the replica manager as metadata deltas arrive
//! ([`Partition::set_state`]); produced batches ([`Partition::append_as_leader`])
//! and reads ([`Partition::read`]) from the Produce, Fetch and ListOffsets
//! handlers. As leader, follower fetches ([`Partition::read_for_follower`]);
//! as follower, what this broker's fetcher brought from the leader
//! ([`Partition::append_as_follower`], [`Partition::truncate_to_leader`]).
//! Out: append results, batches as `Bytes`, a `watch` of the high
//! watermark that consumer long polls and acks=all produces wait on, one of
//! the log end that follower long polls wait on, and the ISR changes this
//! leader wants ([`Partition::isr_change`]). Transaction markers from the
//! WriteTxnMarkers handler are appended in `transactions.rs`
//! ([`Partition::append_marker`]).
//!
//! The leader's high watermark is the smallest log end offset in the
//! *maximal* ISR ([`ReplicaState::maximal_isr`], Kafka's KIP-497): the
//! committed ISR plus the replicas an ISR change in flight adds. A replica
//! the controller may add at any moment (and then elect) must have
//! everything below the high watermark; one being removed counts until the
//! removal commits. acks=all waits for the same set. `min.insync.replicas`
//! is checked, as in Kafka, against the committed ISR before an acks=all
//! append and against the maximal ISR when acknowledging it. A follower's
//! high watermark is the leader's, capped at its own log end.
//!
//! A storage error from the log (an I/O error, or a log already offline)
//! is reported to the broker's [`LogDirFailures`], which takes the whole
//! log dir offline; from then on the partition answers KAFKA_STORAGE_ERROR
//! to produce and to waiting acks=all produces, and the replica manager
//! stops serving it.
//!
//! Appends hold the state's read lock so a leadership change (which takes
//! the write lock) never interleaves with one: after `set_state` returns,
//! no append under the old epoch is in progress. Different partitions share
//! no lock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kraft_log::batch::BatchHeader;
use kraft_log::{
    LogAppendInfo, LogError, PartitionLog, ReadBound, ReadResult, TimestampOffset, TimestampType,
};
use kraft_metadata::PartitionRegistration;
use tokio::sync::watch;
use uuid::Uuid;

use crate::replica::follower_progress::Followers;
use crate::replica::log_config::PartitionSettings;
use crate::replica::log_dirs::LogDirFailures;

mod replication;
mod storage;
#[cfg(test)]
mod tests;
mod transactions;

pub use replication::{FollowerRead, IsrChange, PendingIsr};

/// Why a partition operation failed; each maps to one Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error("this broker is not the leader of the partition")]
    NotLeader,
    #[error("broker {0} is not a replica of the partition")]
    NotAReplica(i32),
    #[error("{isr} in-sync replicas, min.insync.replicas is {min}")]
    NotEnoughReplicas { isr: usize, min: usize },
    #[error("timestamp {timestamp} is more than {max_ms} ms in the future")]
    InvalidTimestamp { timestamp: i64, max_ms: i64 },
    #[error("leader epoch {requested} is older than the current {current}")]
    FencedLeaderEpoch { requested: i32, current: i32 },
    #[error("leader epoch {requested} is newer than the current {current}")]
    UnknownLeaderEpoch { requested: i32, current: i32 },
    #[error(transparent)]
    Log(#[from] LogError),
}

impl PartitionError {
    pub fn code(&self) -> i16 {
        match self {
            PartitionError::NotLeader | PartitionError::NotAReplica(_) => {
                ResponseError::NotLeaderOrFollower.code()
            }
            PartitionError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas.code(),
            PartitionError::InvalidTimestamp { .. } => ResponseError::InvalidTimestamp.code(),
            PartitionError::FencedLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch.code(),
            PartitionError::UnknownLeaderEpoch { .. } => ResponseError::UnknownLeaderEpoch.code(),
            PartitionError::Log(e) => e.kafka_error_code(),
        }
    }
}

/// What the metadata says about this partition, plus its settings and
/// this broker's own leadership bookkeeping.
#[derive(Clone, Debug)]
pub struct ReplicaState {
    pub registration: PartitionRegistration,
    pub settings: PartitionSettings,
    /// As leader: the log end offset when this leader epoch began.
    pub epoch_start_offset: i64,
    /// As leader: an ISR change sent to the controller and not yet seen in
    /// the metadata.
    pub pending_isr: Option<PendingIsr>,
}

impl ReplicaState {
    /// The maximal ISR: the committed ISR plus any replica the ISR change in
    /// flight adds. Replicas it removes stay (the removal may yet be
    /// refused), so this is the committed ISR when no replica is joining.
    /// The high watermark and acks=all wait for every member.
    pub fn maximal_isr(&self) -> Vec<i32> {
        let mut isr = self.registration.isr.clone();
        if let Some(pending) = &self.pending_isr {
            isr.extend(
                pending
                    .isr
                    .iter()
                    .filter(|r| !self.registration.isr.contains(r)),
            );
        }
        isr
    }
}

/// One partition replica on this broker.
pub struct Partition {
    topic_id: Uuid,
    topic: String,
    index: i32,
    node_id: i32,
    log: PartitionLog,
    state: RwLock<ReplicaState>,
    followers: Mutex<Followers>,
    high_watermark: watch::Sender<i64>,
    log_end: watch::Sender<i64>,
    /// Shared by every partition: false while this broker is fenced (or has
    /// lost touch with the controllers), when it must not acknowledge
    /// writes as leader.
    may_lead: Arc<AtomicBool>,
    /// The broker's failed log dirs; this partition reports its storage
    /// errors there.
    failures: Arc<LogDirFailures>,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Partition({}-{}, {})",
            self.topic, self.index, self.topic_id
        )
    }
}

impl Partition {
    /// Wraps an opened `log`. Until [`set_state`](Self::set_state) names this
    /// broker leader, the partition refuses produce and fetch. Its storage
    /// failures are its own (see [`Partition::new_in`]).
    pub fn new(
        topic_id: Uuid,
        topic: String,
        index: i32,
        node_id: i32,
        log: PartitionLog,
        settings: PartitionSettings,
        may_lead: Arc<AtomicBool>,
    ) -> Arc<Partition> {
        let failures = Arc::new(LogDirFailures::default());
        Partition::new_in(
            topic_id, topic, index, node_id, log, settings, may_lead, failures,
        )
    }

    /// [`Partition::new`], reporting storage failures to the broker's
    /// `failures`.
    #[allow(clippy::too_many_arguments)]
    pub fn new_in(
        topic_id: Uuid,
        topic: String,
        index: i32,
        node_id: i32,
        log: PartitionLog,
        settings: PartitionSettings,
        may_lead: Arc<AtomicBool>,
        failures: Arc<LogDirFailures>,
    ) -> Arc<Partition> {
        let (high_watermark, _) = watch::channel(log.high_watermark());
        let (log_end, _) = watch::channel(log.log_end_offset());
        let registration = PartitionRegistration {
            leader: kraft_metadata::NO_LEADER,
            leader_epoch: -1,
            ..Default::default()
        };
        Arc::new(Partition {
            topic_id,
            topic,
            index,
            node_id,
            log,
            state: RwLock::new(ReplicaState {
                registration,
                settings,
                epoch_start_offset: 0,
                pending_isr: None,
            }),
            followers: Mutex::new(Followers::default()),
            high_watermark,
            log_end,
            may_lead,
            failures,
        })
    }

    pub fn topic_id(&self) -> Uuid {
        self.topic_id
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn index(&self) -> i32 {
        self.index
    }

    pub fn log(&self) -> &PartitionLog {
        &self.log
    }

    fn state(&self) -> RwLockReadGuard<'_, ReplicaState> {
        // A poisoned lock means a panic elsewhere while holding it; the
        // state itself is always whole (fields are replaced, never
        // half-edited).
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn followers(&self) -> MutexGuard<'_, Followers> {
        self.followers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the current state.
    pub fn replica_state(&self) -> ReplicaState {
        self.state().clone()
    }

    /// Whether this broker leads the partition now.
    pub fn is_leader(&self) -> bool {
        self.state().registration.leader == self.node_id
    }

    /// Applies what the metadata now says. Waits for appends in progress.
    /// Returns whether this broker just became leader.
    pub fn set_state(&self, registration: PartitionRegistration, now_ms: i64) -> bool {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let old = &state.registration;
        let was_leader = old.leader == self.node_id;
        let is_leader = registration.leader == self.node_id;
        let new_epoch = registration.leader_epoch != old.leader_epoch;
        let became_leader = is_leader && (!was_leader || new_epoch);
        if registration.partition_epoch != old.partition_epoch || new_epoch {
            state.pending_isr = None;
        }
        if became_leader {
            state.epoch_start_offset = self.log.log_end_offset();
            self.followers().reset(
                self.node_id,
                &registration.replicas,
                &registration.isr,
                now_ms,
            );
        } else if is_leader {
            self.followers()
                .retain_replicas(self.node_id, &registration.replicas, now_ms);
        }
        state.registration = registration;
        if is_leader {
            self.maybe_advance_high_watermark(&state);
        }
        drop(state);
        // A produce waiting for replication must learn that leadership moved.
        self.wake();
        became_leader
    }

    /// Wakes everything waiting on this partition, to look again.
    pub fn wake(&self) {
        self.high_watermark.send_modify(|_| {});
        self.log_end.send_modify(|_| {});
    }

    /// Applies changed topic configs.
    pub fn set_settings(&self, settings: PartitionSettings) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        self.log.update_config(settings.log.clone());
        state.settings = settings;
    }

    /// The state to append under as leader: this broker must lead (and
    /// may), the log must be online and, with `min_isr`, the ISR must hold
    /// `min.insync.replicas` (as Kafka: the committed ISR, not the maximal
    /// one, since a replica still joining does not make an append safe).
    fn leader_state(
        &self,
        min_isr: bool,
    ) -> Result<RwLockReadGuard<'_, ReplicaState>, PartitionError> {
        if self.is_offline() {
            return Err(self.offline_error());
        }
        let state = self.state();
        let registration = &state.registration;
        if registration.leader != self.node_id || !self.may_lead.load(Ordering::Acquire) {
            return Err(PartitionError::NotLeader);
        }
        let min = state.settings.min_insync_replicas;
        if min_isr && registration.isr.len() < min {
            return Err(PartitionError::NotEnoughReplicas {
                isr: registration.isr.len(),
                min,
            });
        }
        Ok(state)
    }

    /// Appends one produced batch as leader. With `acks == -1`, refuses
    /// up front when the ISR is smaller than `min.insync.replicas`. Returns
    /// the append and the leader epoch it was made in.
    pub fn append_as_leader(
        &self,
        records: Bytes,
        acks: i16,
        now_ms: i64,
    ) -> Result<(LogAppendInfo, i32), PartitionError> {
        self.append_as_leader_verified(records, acks, now_ms, None)
    }

    /// [`append_as_leader`](Self::append_as_leader) under a KIP-890
    /// verification guard (`PartitionLog::append_as_leader_verified`).
    pub fn append_as_leader_verified(
        &self,
        records: Bytes,
        acks: i16,
        now_ms: i64,
        verification: Option<u64>,
    ) -> Result<(LogAppendInfo, i32), PartitionError> {
        let state = self.leader_state(acks == -1)?;
        let registration = &state.registration;
        if matches!(state.settings.log.timestamp_type, TimestampType::CreateTime) {
            // The header is all that is needed: no record is decoded. A
            // header that does not parse is left to the log's validation.
            if let Ok(header) = BatchHeader::parse(&records) {
                let max_ms = state.settings.timestamp_after_max_ms;
                if header.max_timestamp > now_ms.saturating_add(max_ms) {
                    return Err(PartitionError::InvalidTimestamp {
                        timestamp: header.max_timestamp,
                        max_ms,
                    });
                }
            }
        }
        let info = self.checked(self.log.append_as_leader_verified(
            records,
            registration.leader_epoch,
            now_ms,
            verification,
        ))?;
        self.log_end.send_replace(self.log.log_end_offset());
        self.maybe_advance_high_watermark(&state);
        Ok((info, registration.leader_epoch))
    }

    /// Waits until the high watermark passes `offset` (every member of the
    /// maximal ISR has it), for acks=all. The answer is a Kafka error code:
    /// NOT_LEADER_OR_FOLLOWER if leadership moved (or this broker was
    /// fenced) meanwhile, NOT_ENOUGH_REPLICAS_AFTER_APPEND if the maximal
    /// ISR shrank below `min.insync.replicas`, KAFKA_STORAGE_ERROR if the
    /// log dir failed, REQUEST_TIMED_OUT at `deadline`.
    pub async fn wait_for_replication(
        &self,
        offset: i64,
        leader_epoch: i32,
        deadline: tokio::time::Instant,
    ) -> i16 {
        let mut hw = self.high_watermark.subscribe();
        loop {
            if self.is_offline() {
                return ResponseError::KafkaStorageError.code();
            }
            {
                let state = self.state();
                let registration = &state.registration;
                if registration.leader != self.node_id
                    || registration.leader_epoch != leader_epoch
                    || !self.may_lead.load(Ordering::Acquire)
                {
                    return ResponseError::NotLeaderOrFollower.code();
                }
                if self.log.high_watermark() >= offset {
                    return if state.maximal_isr().len() < state.settings.min_insync_replicas {
                        ResponseError::NotEnoughReplicasAfterAppend.code()
                    } else {
                        0
                    };
                }
            }
            match tokio::time::timeout_at(deadline, hw.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return ResponseError::RequestTimedOut.code(),
            }
        }
    }

    /// Moves the leader's high watermark to the smallest log end offset in
    /// the maximal ISR, if that is further.
    fn maybe_advance_high_watermark(&self, state: &ReplicaState) {
        if state.registration.leader != self.node_id {
            return;
        }
        let end = self.log.log_end_offset();
        let isr = state.maximal_isr();
        let allowed = if isr == [self.node_id] {
            Some(end)
        } else {
            self.followers().high_watermark(self.node_id, &isr, end)
        };
        if let Some(hw) = allowed.filter(|hw| *hw > self.log.high_watermark()) {
            self.log.set_high_watermark(hw);
            self.high_watermark.send_replace(self.log.high_watermark());
        }
    }

    /// A receiver that sees every high-watermark change.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// A receiver that sees every log-end change (follower long polls).
    pub fn subscribe_log_end(&self) -> watch::Receiver<i64> {
        self.log_end.subscribe()
    }

    pub fn high_watermark(&self) -> i64 {
        self.log.high_watermark()
    }

    /// Checks a client's `current_leader_epoch` (-1: not given) and that
    /// this broker leads the partition.
    pub fn check_leader(&self, current_leader_epoch: i32) -> Result<i32, PartitionError> {
        let state = self.state();
        check_leader_epoch(&state.registration, self.node_id, current_leader_epoch)
    }

    /// A consumer's read: batches from `offset`, below the high watermark
    /// (read_uncommitted) or the last stable offset (`read_committed`).
    pub fn read(
        &self,
        offset: i64,
        current_leader_epoch: i32,
        max_bytes: usize,
        min_one_batch: bool,
        read_committed: bool,
    ) -> Result<ReadResult, PartitionError> {
        self.check_leader(current_leader_epoch)?;
        let bound = if read_committed {
            ReadBound::LastStable
        } else {
            ReadBound::HighWatermark
        };
        Ok(self.checked(self.log.read(offset, max_bytes, bound, min_one_batch))?)
    }

    /// The first offset with a timestamp at or after `timestamp`.
    pub fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<TimestampOffset>, PartitionError> {
        Ok(self.log.offset_for_timestamp(timestamp)?)
    }

    /// The leader epoch of the last batch: what ListOffsets reports with
    /// the latest offset.
    pub fn epoch_at_end(&self) -> i32 {
        self.log.latest_epoch().unwrap_or(-1)
    }
}

/// Checks that `node_id` leads and a client's `current_leader_epoch` (-1:
/// not given) is the current one.
fn check_leader_epoch(
    registration: &PartitionRegistration,
    node_id: i32,
    current_leader_epoch: i32,
) -> Result<i32, PartitionError> {
    if registration.leader != node_id {
        return Err(PartitionError::NotLeader);
    }
    let current = registration.leader_epoch;
    if current_leader_epoch >= 0 && current_leader_epoch < current {
        return Err(PartitionError::FencedLeaderEpoch {
            requested: current_leader_epoch,
            current,
        });
    }
    if current_leader_epoch > current {
        return Err(PartitionError::UnknownLeaderEpoch {
            requested: current_leader_epoch,
            current,
        });
    }
    Ok(current)
}
