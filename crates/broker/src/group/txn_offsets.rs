//! Offsets committed inside a transaction (TxnOffsetCommit), on a loaded
//! shard: written to the partition as a transactional batch of the
//! producer, held pending until the transaction's marker reaches the
//! partition, then committed or dropped ([`ShardData::complete_txn`]).
//!
//! In: the group, member, producer id and epoch and the offsets (from
//! `handlers/txn_offset_commit.rs`); markers appended to this partition
//! (from [`super::GroupCoordinator::complete_txn`]). Out: one error code
//! per offset, once the batch is replicated; the group's offsets.
//!
//! The batch goes through the log's producer checks like a producer's own
//! (its sequence continues the producer's last one on this partition), so
//! a fenced or stale producer epoch is refused there, and under the same
//! KIP-890 guard as a produced batch: the handler first asks the
//! transaction coordinator whether the group's partition is in the
//! transaction.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::member::MemberRef;
use super::shard::{Shard, TxnProducer};
use super::shard_data::{CommittedOffset, GroupEntry};
use super::shard_ops::{offset_records, OffsetCommit};
use crate::replica::now_ms;

/// The producer of a TxnOffsetCommit.
#[derive(Clone, Copy, Debug)]
pub struct TxnCommitter {
    pub producer_id: i64,
    pub epoch: i16,
    /// The KIP-890 guard from [`Shard::start_txn_verification`], once the
    /// transaction coordinator confirmed (0: the transaction was open on
    /// this partition already).
    pub verification: u64,
}

impl Shard {
    /// TxnOffsetCommit: one error code per offset. A request without
    /// member, generation or instance id is not checked against the group's
    /// members, as in Kafka; one with them is, as an OffsetCommit.
    pub async fn txn_commit(
        self: &Arc<Self>,
        group_id: &str,
        who: &MemberRef,
        producer: TxnCommitter,
        offsets: Vec<OffsetCommit>,
        max_metadata_bytes: usize,
    ) -> Vec<i16> {
        let now = now_ms();
        let mut results = vec![0; offsets.len()];
        let anonymous =
            who.generation_id < 0 && who.member_id.is_empty() && who.group_instance_id.is_none();
        let (appended, accepted) = {
            let mut inner = self.lock();
            let timings = self.timings;
            let entry = inner
                .data
                .groups
                .entry(group_id.to_string())
                .or_insert_with(|| GroupEntry::new(group_id, timings, now));
            let checked = if anonymous {
                entry.group.check_alive()
            } else {
                entry.group.check_commit(who, now)
            };
            if let Err(code) = checked {
                return vec![code; offsets.len()];
            }
            let (records, accepted) =
                offset_records(group_id, &offsets, max_metadata_bytes, &mut results);
            if records.is_empty() {
                return results;
            }
            let txn = TxnProducer {
                producer_id: producer.producer_id,
                epoch: producer.epoch,
                base_sequence: self
                    .partition
                    .log()
                    .next_sequence(producer.producer_id, producer.epoch),
                verification: Some(producer.verification),
            };
            let appended = match self.append_of(&records, Some(txn)) {
                Ok(appended) => appended,
                Err(code) => {
                    for i in accepted {
                        results[i] = code;
                    }
                    return results;
                }
            };
            // Pending from the append on, so a marker that follows finds
            // them whatever the order of the replies.
            for (k, &i) in accepted.iter().enumerate() {
                let o = &offsets[i];
                inner.data.add_pending(
                    group_id,
                    producer.producer_id,
                    (o.topic.clone(), o.partition),
                    CommittedOffset {
                        value: o.value.clone(),
                        record_offset: appended.first_offset + k as i64,
                    },
                    timings,
                    now,
                );
            }
            (appended, accepted)
        };
        self.poke();
        if let Err(code) = self.replicated(appended).await {
            let written: BTreeSet<i64> = (appended.first_offset..appended.end_offset).collect();
            self.lock()
                .data
                .drop_pending(group_id, producer.producer_id, &written);
            for i in accepted {
                results[i] = code;
            }
        }
        results
    }

    /// Starts a KIP-890 verification of `producer_id`'s offsets write on
    /// this partition: `None` if its transaction is open here already, else
    /// the guard to commit with once the transaction coordinator confirmed
    /// the partition is in the transaction (AddOffsetsToTxn added it).
    pub fn start_txn_verification(&self, producer_id: i64) -> Option<u64> {
        self.partition.log().start_txn_verification(producer_id)
    }

    /// A COMMIT or ABORT marker of `producer_id`, appended to this
    /// partition at `marker_offset` in `leader_epoch` and replicated.
    pub fn complete_txn(
        &self,
        producer_id: i64,
        commit: bool,
        marker_offset: i64,
        leader_epoch: i32,
    ) {
        if leader_epoch != self.leader_epoch {
            return;
        }
        self.lock()
            .data
            .complete_txn(producer_id, commit, marker_offset);
    }

    /// Whether an open transaction wrote an offset of `group_id` for this
    /// partition (OffsetFetch's `require_stable`).
    pub fn unstable(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        self.lock()
            .data
            .groups
            .get(group_id)
            .is_some_and(|e| e.has_pending(topic, partition))
    }
}
