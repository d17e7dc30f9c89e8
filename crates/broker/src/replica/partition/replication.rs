//! The replication side of a [`Partition`]: as leader, serving follower
//! fetches (which tell the leader each follower's position and may move
//! the high watermark) and working out the ISR changes to ask the
//! controller for; as follower, applying what the leader sent — batches
//! appended with their offsets, the leader's high watermark, truncation
//! where the logs diverge.
//!
//! In: follower fetches from the Fetch handler; fetch responses from this
//! broker's replica fetcher; the ISR manager's periodic question and the
//! controller's refusals. Out: batches and diverging-epoch answers for
//! followers, log changes, and [`IsrChange`]s.
//!
//! An ISR change stays in flight ([`PendingIsr`]) until the metadata shows
//! a new partition or leader epoch, or the controller says it did not apply
//! it at this partition epoch (INELIGIBLE_REPLICA, OPERATION_NOT_ATTEMPTED,
//! as in Kafka). Any other outcome — no answer, an answer that it was
//! accepted but the metadata is slow, a stale epoch — leaves it possibly
//! committed, so it keeps counting in the maximal ISR and the same change
//! is sent again, never a different one in its place.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kraft_log::{ReadBound, ReadResult};

use super::{check_leader_epoch, Partition, PartitionError};

/// An ISR change in flight: sent to the controller and not yet seen in the
/// metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingIsr {
    pub isr: Vec<i32>,
    pub sent_at_ms: i64,
    /// Its last sending got no definite answer: send it again at the next
    /// check rather than after [`PENDING_ISR_TIMEOUT_MS`].
    pub resend: bool,
}

/// An ISR change the leader asks the controller for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsrChange {
    pub new_isr: Vec<i32>,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

/// What a follower's fetch gets.
#[derive(Debug)]
pub enum FollowerRead {
    /// Batches from its fetch offset to the log end.
    Records(ReadResult),
    /// Its log diverges from the leader's: it must truncate to `end_offset`
    /// (the end of `epoch`, the last epoch both logs share) and fetch again.
    Diverging {
        epoch: i32,
        end_offset: i64,
        high_watermark: i64,
        log_start_offset: i64,
    },
}

/// How long an ISR change may stay out of the metadata before it is sent
/// again.
const PENDING_ISR_TIMEOUT_MS: i64 = 5_000;

impl Partition {
    /// A follower's fetch: records its position (which may move the high
    /// watermark), then either tells it where its log diverges from this
    /// leader's (`last_fetched_epoch` is the epoch of its last batch) or
    /// reads batches to the log end.
    #[allow(clippy::too_many_arguments)]
    pub fn read_for_follower(
        &self,
        follower: i32,
        fetch_offset: i64,
        last_fetched_epoch: i32,
        current_leader_epoch: i32,
        max_bytes: usize,
        min_one_batch: bool,
        now_ms: i64,
    ) -> Result<FollowerRead, PartitionError> {
        let state = self.state();
        check_leader_epoch(&state.registration, self.node_id, current_leader_epoch)?;
        if !state.registration.replicas.contains(&follower) {
            return Err(PartitionError::NotAReplica(follower));
        }
        if last_fetched_epoch >= 0 {
            let diverges = match self.log.end_offset_for_epoch(last_fetched_epoch) {
                Some((epoch, end)) => {
                    (epoch < last_fetched_epoch || end < fetch_offset).then_some((epoch, end))
                }
                None => Some((-1, self.log.log_start_offset())),
            };
            if let Some((epoch, end_offset)) = diverges {
                return Ok(FollowerRead::Diverging {
                    epoch,
                    end_offset,
                    high_watermark: self.log.high_watermark(),
                    log_start_offset: self.log.log_start_offset(),
                });
            }
        }
        let end = self.log.log_end_offset();
        if fetch_offset <= end {
            self.followers()
                .record_fetch(follower, fetch_offset, end, now_ms);
            self.maybe_advance_high_watermark(&state);
        }
        drop(state);
        Ok(FollowerRead::Records(self.checked(self.log.read(
            fetch_offset,
            max_bytes,
            ReadBound::LogEnd,
            min_one_batch,
        ))?))
    }

    /// As follower: appends what the leader sent (batches keep their
    /// offsets and epochs) and takes the leader's high watermark, capped at
    /// this log's end.
    pub fn append_as_follower(
        &self,
        records: Bytes,
        leader_high_watermark: i64,
    ) -> Result<(), PartitionError> {
        if !records.is_empty() {
            self.checked(self.log.append_as_follower(records))?;
            self.log_end.send_replace(self.log.log_end_offset());
        }
        let hw = leader_high_watermark.min(self.log.log_end_offset());
        if hw > self.log.high_watermark() {
            self.log.set_high_watermark(hw);
            self.high_watermark.send_replace(self.log.high_watermark());
        }
        Ok(())
    }

    /// As follower: cuts this log back to where it agrees with the leader,
    /// even below the high watermark, as Kafka's fetcher does. Data below
    /// the high watermark that the leader lacks is gone from the partition
    /// already (e.g. a zombie leader advanced the high watermark over a
    /// stale ISR); keeping it would leave this replica diverged for ever,
    /// never back in the ISR. The high watermark comes down with the log.
    pub fn truncate_to_leader(&self, end_offset: i64) -> Result<(), PartitionError> {
        let hw = self.log.high_watermark();
        if end_offset < hw {
            tracing::warn!(
                partition = ?self,
                end_offset,
                high_watermark = hw,
                "truncating below this replica's high watermark: the leader's log ends there"
            );
        }
        if end_offset < self.log.log_end_offset() {
            tracing::info!(partition = ?self, from = self.log.log_end_offset(), to = end_offset, "truncating to the leader's log");
            self.checked(self.log.truncate_to(end_offset))?;
            self.log_end.send_replace(self.log.log_end_offset());
            self.high_watermark.send_replace(self.log.high_watermark());
        }
        Ok(())
    }

    /// As follower whose fetch offset is below the leader's log start:
    /// starts this log over at `log_start`.
    pub fn restart_at(&self, log_start: i64) -> Result<(), PartitionError> {
        tracing::info!(partition = ?self, log_start, "restarting the log at the leader's log start");
        self.checked(self.log.truncate_fully_and_start_at(log_start))?;
        self.log_end.send_replace(self.log.log_end_offset());
        Ok(())
    }

    /// As leader: the ISR change to send the controller now, if any — the
    /// one in flight again when it is due (see the module docs), else, with
    /// none in flight, the change this partition needs: followers not caught
    /// up for `lag_ms` leave, a follower that has caught up joins. Marks it
    /// in flight.
    pub fn isr_change(&self, now_ms: i64, lag_ms: i64) -> Option<IsrChange> {
        let mut guard = self.state.write().unwrap_or_else(|e| e.into_inner());
        let state = &mut *guard;
        let registration = &state.registration;
        if registration.leader != self.node_id {
            return None;
        }
        if let Some(pending) = state.pending_isr.as_mut() {
            if !pending.resend && now_ms - pending.sent_at_ms < PENDING_ISR_TIMEOUT_MS {
                return None;
            }
            pending.resend = false;
            pending.sent_at_ms = now_ms;
            return Some(IsrChange {
                new_isr: pending.isr.clone(),
                leader_epoch: registration.leader_epoch,
                partition_epoch: registration.partition_epoch,
            });
        }
        let followers = self.followers();
        let lagging = followers.lagging(self.node_id, &registration.isr, now_ms, lag_ms);
        let hw = self.log.high_watermark();
        let joining: Vec<i32> = registration
            .replicas
            .iter()
            .copied()
            .filter(|r| !registration.isr.contains(r))
            .filter(|r| followers.may_join_isr(*r, hw, state.epoch_start_offset, now_ms, lag_ms))
            .collect();
        drop(followers);
        if lagging.is_empty() && joining.is_empty() {
            return None;
        }
        let mut new_isr: Vec<i32> = registration
            .isr
            .iter()
            .copied()
            .filter(|r| !lagging.contains(r))
            .chain(joining)
            .collect();
        new_isr.sort_unstable();
        let change = IsrChange {
            new_isr: new_isr.clone(),
            leader_epoch: registration.leader_epoch,
            partition_epoch: registration.partition_epoch,
        };
        state.pending_isr = Some(PendingIsr {
            isr: new_isr,
            sent_at_ms: now_ms,
            resend: false,
        });
        Some(change)
    }

    /// The ISR change in flight did not commit on this sending:
    /// `error_code` is the controller's answer for this partition, `None`
    /// when none came. Only a refusal saying it was not applied drops it
    /// (a replica it would have added then no longer holds the high
    /// watermark back, and the next change is computed afresh); otherwise
    /// it stays in flight, sent again at the next check unless the answer
    /// says this broker's metadata is behind (then after the timeout).
    pub fn isr_change_failed(&self, error_code: Option<i32>) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let is = |e: ResponseError| error_code == Some(i32::from(e.code()));
        if is(ResponseError::IneligibleReplica) || is(ResponseError::OperationNotAttempted) {
            state.pending_isr = None;
            self.maybe_advance_high_watermark(&state);
            return;
        }
        let metadata_behind = [
            ResponseError::InvalidUpdateVersion,
            ResponseError::FencedLeaderEpoch,
            ResponseError::NotLeaderOrFollower,
            ResponseError::UnknownTopicOrPartition,
            ResponseError::UnknownTopicId,
            ResponseError::InvalidRequest,
            ResponseError::NewLeaderElected,
        ]
        .into_iter()
        .any(is);
        if let Some(pending) = state.pending_isr.as_mut() {
            pending.resend = !metadata_behind;
        }
    }
}
