//! [`PartitionChangeBuilder`]: the one place that decides how a partition's
//! ISR, replicas and leader change, and writes the `PartitionChangeRecord`
//! that says so.
//!
//! Data enters as a partition's current [`PartitionRegistration`] (from the
//! image), the targets a caller sets (ISR, replicas, preferred election) and
//! a predicate saying which brokers may lead. What leaves is
//! `Some(record)` when anything differs from the current registration, or
//! `None` when nothing would change (the controller never writes a change
//! record that changes nothing; replaying one would still bump the
//! partition epoch).
//!
//! # Leader election
//!
//! A broker is *acceptable* as leader if it is in the target ISR and the
//! caller's predicate calls it usable (registered, unfenced, not in
//! controlled shutdown, and not the broker being fenced or shut down right
//! now, which the image does not show yet). The current leader stays while
//! it is acceptable; otherwise the first acceptable replica in replica order
//! leads; if there is none the leader is [`NO_LEADER`]. There is no unclean
//! election: a broker outside the ISR never leads.
//!
//! # Reassignment (KIP-455)
//!
//! While a reassignment runs, `replicas` is the target followed by the
//! replicas being removed, `adding_replicas` the target replicas that were
//! not replicas before and `removing_replicas` the old ones not in the
//! target. Every build finishes a reassignment that can finish: once every
//! adding replica is in the ISR (and some ISR member outside
//! `removing_replicas` can lead, if the partition has a leader now), the
//! removing replicas leave `replicas` and the ISR, and both lists are
//! cleared. An AlterPartition that adds the last new replica to the ISR thus
//! completes the reassignment in the same record.

use bytes::Bytes;
use kraft_metadata::{record, PartitionRegistration, NO_LEADER};
use kraft_proto::metadata::{
    metadata_record::Record, BrokerIds, MetadataRecord, PartitionChangeRecord,
};
use uuid::Uuid;

/// How the builder picks the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Election {
    /// Keep the current leader while it is acceptable.
    KeepCurrent,
    /// Move leadership to the preferred (first) replica if it is acceptable.
    Preferred,
}

/// A partition's replica lists while a change is being built.
struct Reassignment {
    replicas: Vec<i32>,
    isr: Vec<i32>,
    adding: Vec<i32>,
    removing: Vec<i32>,
}

/// Builds the change record for one partition; see the module docs.
pub struct PartitionChangeBuilder<'a> {
    topic_id: Uuid,
    partition_id: i32,
    current: &'a PartitionRegistration,
    is_usable: &'a dyn Fn(i32) -> bool,
    target_isr: Option<Vec<i32>>,
    target_replicas: Option<Vec<i32>>,
    target_adding: Option<Vec<i32>>,
    target_removing: Option<Vec<i32>>,
    election: Election,
}

impl<'a> PartitionChangeBuilder<'a> {
    /// A builder that changes nothing yet. `is_usable(broker)` says whether a
    /// broker may lead (see the module docs).
    pub fn new(
        topic_id: Uuid,
        partition_id: i32,
        current: &'a PartitionRegistration,
        is_usable: &'a dyn Fn(i32) -> bool,
    ) -> Self {
        Self {
            topic_id,
            partition_id,
            current,
            is_usable,
            target_isr: None,
            target_replicas: None,
            target_adding: None,
            target_removing: None,
            election: Election::KeepCurrent,
        }
    }

    /// Replaces the ISR.
    pub fn set_target_isr(mut self, isr: Vec<i32>) -> Self {
        self.target_isr = Some(isr);
        self
    }

    /// Replaces the replica list; the ISR is then cut down to the new
    /// replicas.
    pub fn set_target_replicas(mut self, replicas: Vec<i32>) -> Self {
        self.target_replicas = Some(replicas);
        self
    }

    /// Replaces the replicas a reassignment is adding.
    pub fn set_target_adding(mut self, adding: Vec<i32>) -> Self {
        self.target_adding = Some(adding);
        self
    }

    /// Replaces the replicas a reassignment is removing.
    pub fn set_target_removing(mut self, removing: Vec<i32>) -> Self {
        self.target_removing = Some(removing);
        self
    }

    /// Takes `broker_id` out of the ISR, unless it is the only member: as in
    /// Kafka, the ISR never shrinks to empty, so the last in-sync replica is
    /// remembered for when it comes back.
    pub fn remove_from_isr(self, broker_id: i32) -> Self {
        let isr = self.target_isr.as_ref().unwrap_or(&self.current.isr);
        if !isr.contains(&broker_id) || isr.len() <= 1 {
            return self;
        }
        let shrunk = isr.iter().copied().filter(|b| *b != broker_id).collect();
        self.set_target_isr(shrunk)
    }

    /// Preferred leader election: lead from the first replica if it is
    /// acceptable, even when the current leader is acceptable too.
    pub fn elect_preferred_leader(mut self) -> Self {
        self.election = Election::Preferred;
        self
    }

    /// The change record, or `None` if nothing changes.
    pub fn build(self) -> Option<MetadataRecord> {
        let current = self.current;
        let replicas = self
            .target_replicas
            .clone()
            .unwrap_or_else(|| current.replicas.clone());
        let mut isr = self
            .target_isr
            .clone()
            .unwrap_or_else(|| current.isr.clone());
        if self.target_replicas.is_some() {
            isr.retain(|b| replicas.contains(b));
        }
        let mut reassignment = Reassignment {
            replicas,
            isr,
            adding: (self.target_adding.clone()).unwrap_or_else(|| current.adding_replicas.clone()),
            removing: (self.target_removing.clone())
                .unwrap_or_else(|| current.removing_replicas.clone()),
        };
        self.complete_reassignment(&mut reassignment);
        let Reassignment {
            replicas,
            isr,
            adding,
            removing,
        } = reassignment;
        let leader = self.elect(&replicas, &isr);

        let mut change = PartitionChangeRecord {
            topic_id: Bytes::copy_from_slice(self.topic_id.as_bytes()),
            partition_id: self.partition_id,
            ..Default::default()
        };
        let mut changed = false;
        if isr != current.isr {
            change.isr = Some(BrokerIds { ids: isr });
            changed = true;
        }
        if replicas != current.replicas {
            change.replicas = Some(BrokerIds { ids: replicas });
            changed = true;
        }
        if adding != current.adding_replicas {
            change.adding_replicas = Some(BrokerIds { ids: adding });
            changed = true;
        }
        if removing != current.removing_replicas {
            change.removing_replicas = Some(BrokerIds { ids: removing });
            changed = true;
        }
        if leader != current.leader {
            change.leader = Some(leader);
            changed = true;
        }
        changed.then(|| record(Record::PartitionChange(change)))
    }

    /// Finishes a reassignment in progress when it can; see the module docs.
    fn complete_reassignment(&self, r: &mut Reassignment) {
        if r.adding.is_empty() && r.removing.is_empty() {
            return;
        }
        let kept = |ids: &[i32]| -> Vec<i32> {
            ids.iter()
                .copied()
                .filter(|b| !r.removing.contains(b))
                .collect()
        };
        let isr = kept(&r.isr);
        if isr.is_empty() || r.adding.iter().any(|b| !isr.contains(b)) {
            return;
        }
        let replicas = kept(&r.replicas);
        // Never finish into a leaderless partition while one can lead now.
        let could_lead = |isr: &[i32]| isr.iter().any(|b| *b != NO_LEADER && (self.is_usable)(*b));
        if self.current.has_leader() && could_lead(&r.isr) && !could_lead(&isr) {
            return;
        }
        r.replicas = replicas;
        r.isr = isr;
        r.adding.clear();
        r.removing.clear();
    }

    fn elect(&self, replicas: &[i32], isr: &[i32]) -> i32 {
        let acceptable = |b: i32| b != NO_LEADER && isr.contains(&b) && (self.is_usable)(b);
        if self.election == Election::Preferred {
            if let Some(&preferred) = replicas.first() {
                if acceptable(preferred) {
                    return preferred;
                }
            }
        }
        if acceptable(self.current.leader) {
            return self.current.leader;
        }
        replicas
            .iter()
            .copied()
            .find(|b| acceptable(*b))
            .unwrap_or(NO_LEADER)
    }
}

/// Images for tests, built by replaying records (the only way an image is
/// made).
#[cfg(test)]
pub(crate) mod test_image {
    use bytes::Bytes;
    use kraft_metadata::{record, MetadataDelta, MetadataImage};
    use kraft_proto::metadata::{
        metadata_record::Record, Endpoint, FenceBrokerRecord, MetadataRecord, PartitionRecord,
        RecordBatch, RegisterBrokerRecord, TopicRecord,
    };
    use uuid::Uuid;

    /// Broker `id`'s epoch in test images.
    pub fn epoch(id: i32) -> i64 {
        100 + i64::from(id)
    }

    /// Registers broker `id`, unfenced, with epoch [`epoch`]`(id)`.
    pub fn broker(id: i32, rack: Option<&str>) -> MetadataRecord {
        record(Record::RegisterBroker(RegisterBrokerRecord {
            broker_id: id,
            incarnation_id: Bytes::copy_from_slice(Uuid::from_u128(id as u128 + 1).as_bytes()),
            broker_epoch: epoch(id),
            endpoints: vec![Endpoint {
                name: "PLAINTEXT".into(),
                host: "localhost".into(),
                port: 9092 + id,
                security_protocol: "PLAINTEXT".into(),
            }],
            rack: rack.map(str::to_string),
            fenced: false,
            in_controlled_shutdown: false,
        }))
    }

    pub fn fence(id: i32) -> MetadataRecord {
        record(Record::FenceBroker(FenceBrokerRecord {
            broker_id: id,
            broker_epoch: epoch(id),
        }))
    }

    pub fn topic(name: &str, id: Uuid) -> MetadataRecord {
        record(Record::Topic(TopicRecord {
            name: name.into(),
            topic_id: Bytes::copy_from_slice(id.as_bytes()),
        }))
    }

    pub fn partition(
        id: Uuid,
        p: i32,
        replicas: &[i32],
        isr: &[i32],
        leader: i32,
    ) -> MetadataRecord {
        record(Record::Partition(PartitionRecord {
            topic_id: Bytes::copy_from_slice(id.as_bytes()),
            partition_id: p,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            ..Default::default()
        }))
    }

    /// Brokers 1, 2 and 3 and topic `t` (id 1) with partitions 0
    /// (replicas and ISR 1, 2, 3; leader 1), 1 (replicas 2, 1; ISR 1;
    /// leader 1) and 2 (replicas and ISR 3, 2; leader 3).
    pub fn topic_image() -> MetadataImage {
        let id = Uuid::from_u128(1);
        image(vec![
            broker(1, None),
            broker(2, None),
            broker(3, None),
            topic("t", id),
            partition(id, 0, &[1, 2, 3], &[1, 2, 3], 1),
            partition(id, 1, &[2, 1], &[1], 1),
            partition(id, 2, &[3, 2], &[3, 2], 3),
        ])
    }

    /// The image of `records` committed as one batch at offset 1.
    pub fn image(records: Vec<MetadataRecord>) -> MetadataImage {
        let mut delta = MetadataDelta::new(MetadataImage::empty());
        delta
            .replay_batch(1, &RecordBatch { records })
            .expect("test records replay");
        delta.apply()
    }

    /// `image` with `records` replayed on top (same offset).
    pub fn apply(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
        let mut delta = MetadataDelta::new(image.clone());
        for r in records {
            delta.replay(r).expect("generated records replay");
        }
        delta.apply()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionRegistration {
        PartitionRegistration {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            ..Default::default()
        }
    }

    fn change(r: Option<MetadataRecord>) -> PartitionChangeRecord {
        match r.and_then(|r| r.record) {
            Some(Record::PartitionChange(c)) => c,
            other => panic!("expected a partition change, got {other:?}"),
        }
    }

    const ALL: &dyn Fn(i32) -> bool = &|_| true;

    #[test]
    fn nothing_to_change_builds_none() {
        let p = reg(&[1, 2, 3], &[1, 2, 3], 1);
        let id = Uuid::from_u128(7);
        assert!(PartitionChangeBuilder::new(id, 0, &p, ALL)
            .build()
            .is_none());
        let same = PartitionChangeBuilder::new(id, 0, &p, ALL)
            .set_target_isr(vec![1, 2, 3])
            .set_target_replicas(vec![1, 2, 3])
            .elect_preferred_leader()
            .build();
        assert!(same.is_none());
        // Leaderless with nobody usable: still nothing to do.
        let offline = reg(&[1], &[1], NO_LEADER);
        let none: &dyn Fn(i32) -> bool = &|_| false;
        assert!(PartitionChangeBuilder::new(id, 0, &offline, none)
            .build()
            .is_none());
    }

    #[test]
    fn isr_shrink_keeps_an_acceptable_leader() {
        let p = reg(&[1, 2, 3], &[1, 2, 3], 1);
        let c = change(
            PartitionChangeBuilder::new(Uuid::from_u128(7), 4, &p, ALL)
                .remove_from_isr(3)
                .build(),
        );
        assert_eq!(c.partition_id, 4);
        assert_eq!(c.isr, Some(BrokerIds { ids: vec![1, 2] }));
        assert_eq!(c.leader, None);
        assert_eq!(c.replicas, None);
    }

    #[test]
    fn unusable_leader_moves_to_first_usable_isr_replica_in_replica_order() {
        let p = reg(&[3, 1, 2], &[2, 1, 3], 3);
        let not3: &dyn Fn(i32) -> bool = &|b| b != 3;
        let c = change(
            PartitionChangeBuilder::new(Uuid::nil(), 0, &p, not3)
                .remove_from_isr(3)
                .build(),
        );
        assert_eq!(c.leader, Some(1));
        assert_eq!(c.isr, Some(BrokerIds { ids: vec![2, 1] }));
    }

    #[test]
    fn last_isr_member_stays_and_leader_goes_to_none() {
        let p = reg(&[1, 2], &[1], 1);
        let not1: &dyn Fn(i32) -> bool = &|b| b != 1;
        let c = change(
            PartitionChangeBuilder::new(Uuid::nil(), 0, &p, not1)
                .remove_from_isr(1)
                .build(),
        );
        assert_eq!(c.isr, None, "the ISR never shrinks to empty");
        assert_eq!(c.leader, Some(NO_LEADER), "no unclean election of 2");
    }

    #[test]
    fn leaderless_partition_elects_when_an_isr_member_is_usable() {
        let p = reg(&[1, 2], &[2], NO_LEADER);
        let c = change(PartitionChangeBuilder::new(Uuid::nil(), 0, &p, ALL).build());
        assert_eq!(c.leader, Some(2));
    }

    #[test]
    fn preferred_election_moves_back_to_first_replica() {
        let p = reg(&[1, 2, 3], &[1, 2, 3], 2);
        let c = change(
            PartitionChangeBuilder::new(Uuid::nil(), 0, &p, ALL)
                .elect_preferred_leader()
                .build(),
        );
        assert_eq!(c.leader, Some(1));
        // Without asking, an acceptable leader stays.
        assert!(PartitionChangeBuilder::new(Uuid::nil(), 0, &p, ALL)
            .build()
            .is_none());
    }

    fn reassigning(
        replicas: &[i32],
        isr: &[i32],
        leader: i32,
        adding: &[i32],
        removing: &[i32],
    ) -> PartitionRegistration {
        PartitionRegistration {
            adding_replicas: adding.to_vec(),
            removing_replicas: removing.to_vec(),
            ..reg(replicas, isr, leader)
        }
    }

    #[test]
    fn isr_growth_finishes_a_reassignment_only_when_every_adding_replica_is_in() {
        // {1,2} -> {3,4}: replicas [3,4,1,2], adding [3,4], removing [1,2].
        let p = reassigning(&[3, 4, 1, 2], &[1, 2], 1, &[3, 4], &[1, 2]);
        let partial = change(
            PartitionChangeBuilder::new(Uuid::nil(), 0, &p, ALL)
                .set_target_isr(vec![1, 2, 3])
                .build(),
        );
        assert_eq!(partial.isr, Some(BrokerIds { ids: vec![1, 2, 3] }));
        assert_eq!(
            (partial.replicas, partial.adding_replicas, partial.leader),
            (None, None, None)
        );

        let done = change(
            PartitionChangeBuilder::new(Uuid::nil(), 0, &p, ALL)
                .set_target_isr(vec![1, 2, 3, 4])
                .build(),
        );
        assert_eq!(done.replicas, Some(BrokerIds { ids: vec![3, 4] }));
        assert_eq!(done.isr, Some(BrokerIds { ids: vec![3, 4] }));
        assert_eq!(done.adding_replicas, Some(BrokerIds { ids: vec![] }));
        assert_eq!(done.removing_replicas, Some(BrokerIds { ids: vec![] }));
        assert_eq!(done.leader, Some(3), "the old leader was removed");
    }

    #[test]
    fn a_finished_reassignment_keeps_a_leader_that_stays() {
        // {1,2} -> {1,3}: replicas [1,3,2], adding [3], removing [2].
        let p = reassigning(&[1, 3, 2], &[1, 2], 1, &[3], &[2]);
        let c = change(
            PartitionChangeBuilder::new(Uuid::nil(), 0, &p, ALL)
                .set_target_isr(vec![1, 2, 3])
                .build(),
        );
        assert_eq!(c.replicas, Some(BrokerIds { ids: vec![1, 3] }));
        assert_eq!(c.isr, Some(BrokerIds { ids: vec![1, 3] }));
        assert_eq!(c.leader, None, "no new leader epoch");
    }

    #[test]
    fn a_reassignment_never_finishes_into_a_leaderless_partition() {
        // The only target replica in the ISR cannot lead yet.
        let p = reassigning(&[3, 1], &[1], 1, &[3], &[1]);
        let not3: &dyn Fn(i32) -> bool = &|b| b != 3;
        let c = change(
            PartitionChangeBuilder::new(Uuid::nil(), 0, &p, not3)
                .set_target_isr(vec![1, 3])
                .build(),
        );
        assert_eq!(c.isr, Some(BrokerIds { ids: vec![1, 3] }));
        assert_eq!((c.replicas, c.leader), (None, None));
    }

    #[test]
    fn new_replicas_cut_the_isr() {
        let p = reg(&[1, 2, 3], &[1, 2, 3], 1);
        let c = change(
            PartitionChangeBuilder::new(Uuid::nil(), 0, &p, ALL)
                .set_target_replicas(vec![2, 3, 4])
                .build(),
        );
        assert_eq!(c.replicas, Some(BrokerIds { ids: vec![2, 3, 4] }));
        assert_eq!(c.isr, Some(BrokerIds { ids: vec![2, 3] }));
        assert_eq!(c.leader, Some(2));
    }
}
