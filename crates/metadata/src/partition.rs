//! One partition's replica assignment and leadership, and the rule for
//! merging a `PartitionChangeRecord` into it.
//!
//! # Epoch rule (mirrors Kafka's `PartitionRegistration.merge`)
//!
//! - Every `PartitionChangeRecord` bumps `partition_epoch` by exactly 1, even
//!   if the fields it carries equal the current values: the record itself is
//!   the change. (The controller never writes a change record that changes
//!   nothing.)
//! - A present `leader` field bumps `leader_epoch` by exactly 1, even if it
//!   names the current leader: the controller uses that to start a new
//!   leader epoch (e.g. to fence a zombie leader). An absent `leader` leaves
//!   both leader and leader epoch alone.
//! - Absent list fields are unchanged; a present list (possibly empty)
//!   replaces the current one.
//!
//! An epoch that would pass `i32::MAX` is an error, never a wrap or a panic.

use kraft_proto::metadata::{
    metadata_record::Record, MetadataRecord, PartitionChangeRecord, PartitionRecord,
};
use uuid::Uuid;

use crate::record::uuid_bytes;
use crate::{record, MetadataError};

/// `leader` when no replica can lead.
pub const NO_LEADER: i32 = -1;

/// The replica assignment and leadership of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PartitionRegistration {
    /// Assigned replicas; the first is the preferred leader.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas being removed by a reassignment.
    pub removing_replicas: Vec<i32>,
    /// Replicas being added by a reassignment.
    pub adding_replicas: Vec<i32>,
    /// The leader, or [`NO_LEADER`].
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

impl PartitionRegistration {
    /// The registration a `PartitionRecord` describes (its topic and
    /// partition ids are the caller's business).
    pub fn from_record(r: &PartitionRecord) -> Self {
        Self {
            replicas: r.replicas.clone(),
            isr: r.isr.clone(),
            removing_replicas: r.removing_replicas.clone(),
            adding_replicas: r.adding_replicas.clone(),
            leader: r.leader,
            leader_epoch: r.leader_epoch,
            partition_epoch: r.partition_epoch,
        }
    }

    /// The `PartitionRecord` that recreates this registration exactly.
    pub fn to_record(&self, topic_id: Uuid, partition_id: i32) -> MetadataRecord {
        record(Record::Partition(PartitionRecord {
            topic_id: uuid_bytes(topic_id),
            partition_id,
            replicas: self.replicas.clone(),
            isr: self.isr.clone(),
            leader: self.leader,
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            removing_replicas: self.removing_replicas.clone(),
            adding_replicas: self.adding_replicas.clone(),
        }))
    }

    /// This registration with `change` merged in, following the epoch rule
    /// in the module docs. `topic_id` only names the partition in errors.
    pub fn merge(
        &self,
        topic_id: Uuid,
        change: &PartitionChangeRecord,
    ) -> Result<Self, MetadataError> {
        let overflow = |which| MetadataError::EpochOverflow {
            topic_id,
            partition_id: change.partition_id,
            which,
        };
        let mut next = self.clone();
        next.partition_epoch = self
            .partition_epoch
            .checked_add(1)
            .ok_or_else(|| overflow("partition"))?;
        if let Some(leader) = change.leader {
            next.leader = leader;
            next.leader_epoch = self
                .leader_epoch
                .checked_add(1)
                .ok_or_else(|| overflow("leader"))?;
        }
        if let Some(ids) = &change.replicas {
            next.replicas = ids.ids.clone();
        }
        if let Some(ids) = &change.isr {
            next.isr = ids.ids.clone();
        }
        if let Some(ids) = &change.removing_replicas {
            next.removing_replicas = ids.ids.clone();
        }
        if let Some(ids) = &change.adding_replicas {
            next.adding_replicas = ids.ids.clone();
        }
        Ok(next)
    }

    /// Whether `broker_id` is an assigned replica.
    pub fn has_replica(&self, broker_id: i32) -> bool {
        self.replicas.contains(&broker_id)
    }

    /// Whether the partition has a leader.
    pub fn has_leader(&self) -> bool {
        self.leader != NO_LEADER
    }
}

#[cfg(test)]
mod tests {
    use kraft_proto::metadata::BrokerIds;

    use super::*;

    fn base() -> PartitionRegistration {
        PartitionRegistration {
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            leader: 1,
            leader_epoch: 4,
            partition_epoch: 7,
            ..Default::default()
        }
    }

    fn change() -> PartitionChangeRecord {
        PartitionChangeRecord {
            partition_id: 0,
            ..Default::default()
        }
    }

    #[test]
    fn isr_change_bumps_partition_epoch_only() {
        let next = base()
            .merge(
                Uuid::nil(),
                &PartitionChangeRecord {
                    isr: Some(BrokerIds { ids: vec![1, 2] }),
                    ..change()
                },
            )
            .unwrap();
        assert_eq!(next.isr, vec![1, 2]);
        assert_eq!(
            (next.leader, next.leader_epoch, next.partition_epoch),
            (1, 4, 8)
        );
        assert_eq!(next.replicas, vec![1, 2, 3]);
    }

    #[test]
    fn present_leader_bumps_leader_epoch_even_if_unchanged() {
        let same = base()
            .merge(
                Uuid::nil(),
                &PartitionChangeRecord {
                    leader: Some(1),
                    ..change()
                },
            )
            .unwrap();
        assert_eq!(
            (same.leader, same.leader_epoch, same.partition_epoch),
            (1, 5, 8)
        );
        let moved = base()
            .merge(
                Uuid::nil(),
                &PartitionChangeRecord {
                    leader: Some(NO_LEADER),
                    ..change()
                },
            )
            .unwrap();
        assert_eq!((moved.leader, moved.leader_epoch), (NO_LEADER, 5));
        assert!(!moved.has_leader());
    }

    #[test]
    fn empty_change_still_bumps_partition_epoch() {
        let next = base().merge(Uuid::nil(), &change()).unwrap();
        assert_eq!(
            next,
            PartitionRegistration {
                partition_epoch: 8,
                ..base()
            }
        );
    }

    #[test]
    fn epoch_overflow_is_an_error() {
        let full = PartitionRegistration {
            leader_epoch: i32::MAX,
            ..base()
        };
        assert!(matches!(
            full.merge(
                Uuid::nil(),
                &PartitionChangeRecord {
                    leader: Some(2),
                    ..change()
                }
            ),
            Err(MetadataError::EpochOverflow {
                which: "leader",
                ..
            })
        ));
        let full = PartitionRegistration {
            partition_epoch: i32::MAX,
            ..base()
        };
        assert!(full.merge(Uuid::nil(), &change()).is_err());
    }
}
