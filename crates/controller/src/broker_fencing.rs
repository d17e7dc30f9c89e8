//! Broker fencing: the partition changes when a broker stops (or starts
//! again) being usable.
//!
//! Fencing (an expired session), controlled shutdown and unfencing are
//! broker lifecycle changes, but what they write is mostly partition
//! changes: the broker leaves ISRs and leadership moves, decided by
//! [`PartitionChangeBuilder`]. They live here, apart from the topic requests
//! of [`replication_control`](crate::replication_control), because they are
//! driven by broker sessions in
//! [`ClusterControl`](crate::cluster_control::ClusterControl), their only
//! caller.
//!
//! A broker with a failed log dir (and another still online) stays
//! registered and unfenced, but reports the replicas it can no longer serve in its heartbeats (Kafka's
//! OfflineLogDirs, KIP-858; Kraft's metadata has no replica-to-dir
//! assignment, so the broker lists the partitions). [`leave_offline_replicas`]
//! gives those replicas the fencing treatment, and only those. A broker
//! whose every dir failed asks to be fenced in its heartbeat, so nothing
//! new is placed on it.
//!
//! Every function is pure. Data enters as the current [`MetadataImage`]
//! (the controller's `latest`, including its uncommitted writes) and a
//! broker id; what leaves is the records to append (`FenceBrokerRecord`,
//! `BrokerControlledShutdownRecord`, `UnfenceBrokerRecord` and
//! `PartitionChangeRecord`s), or a count. The image still shows the broker
//! as it was, so these functions treat it as unusable (or usable, when
//! unfencing) explicitly.

use kraft_metadata::{record, MetadataImage};
use kraft_proto::controller::OfflinePartitions;
use kraft_proto::metadata::{
    metadata_record::Record, BrokerControlledShutdownRecord, FenceBrokerRecord, MetadataRecord,
    UnfenceBrokerRecord,
};

use uuid::Uuid;

use crate::partition_change::PartitionChangeBuilder;
use crate::placement::is_usable;

/// Fences a broker: `FenceBrokerRecord`, then every partition takes it out
/// of its ISR (unless it is the last member) and moves leadership off it.
/// Empty if the broker is unknown or already fenced.
pub fn fence_broker(image: &MetadataImage, broker_id: i32) -> Vec<MetadataRecord> {
    let Some(broker) = image.cluster().broker(broker_id).filter(|b| !b.fenced) else {
        return Vec::new();
    };
    // Leadership moves first and the fence last: a fence too large for one
    // Raft entry is committed in several, and if leadership is lost half
    // way the broker is still unfenced, so the next session expiry redoes
    // what is left.
    let mut records = leave_partitions(image, broker_id);
    records.push(record(Record::FenceBroker(FenceBrokerRecord {
        broker_id,
        broker_epoch: broker.epoch,
    })));
    records
}

/// Starts (or continues) a controlled shutdown: `BrokerControlledShutdownRecord`
/// the first time, then the same partition changes as fencing, wherever
/// they are still needed. Where no other ISR member can lead, the
/// partition goes leaderless, as in Kafka, so the shutdown can finish.
/// Empty if the broker is unknown or fenced.
pub fn controlled_shutdown(image: &MetadataImage, broker_id: i32) -> Vec<MetadataRecord> {
    let Some(broker) = image.cluster().broker(broker_id).filter(|b| !b.fenced) else {
        return Vec::new();
    };
    let mut records = Vec::new();
    if !broker.in_controlled_shutdown {
        records.push(record(Record::BrokerControlledShutdown(
            BrokerControlledShutdownRecord {
                broker_id,
                broker_epoch: broker.epoch,
            },
        )));
    }
    records.extend(leave_partitions(image, broker_id));
    records
}

/// The partition changes for `broker_id` leaving: out of ISRs (but never
/// emptying one) and not leading, with the broker counted as unusable.
fn leave_partitions(image: &MetadataImage, broker_id: i32) -> Vec<MetadataRecord> {
    let usable = |b: i32| b != broker_id && is_usable(image, b);
    let mut records = Vec::new();
    for topic in image.topics().topics() {
        for (&partition_id, partition) in topic.partitions() {
            if partition.isr.contains(&broker_id) || partition.leader == broker_id {
                records.extend(
                    PartitionChangeBuilder::new(topic.id(), partition_id, partition, &usable)
                        .remove_from_isr(broker_id)
                        .build(),
                );
            }
        }
    }
    records
}

/// Moves `broker_id` off the replicas it reported `offline` (their log
/// dir failed): out of each one's ISR (never emptying it) and not leading
/// it, the broker counted unusable for these partitions only, as if it
/// were fenced for them. Its other replicas are untouched. Empty once
/// nothing is left to move, so a broker may report the same partitions in
/// every heartbeat; unknown topics and partitions are skipped.
pub fn leave_offline_replicas(
    image: &MetadataImage,
    broker_id: i32,
    offline: &[OfflinePartitions],
) -> Vec<MetadataRecord> {
    let usable = |b: i32| b != broker_id && is_usable(image, b);
    let mut records = Vec::new();
    for entry in offline {
        let Ok(topic_id) = Uuid::from_slice(&entry.topic_id) else {
            continue;
        };
        let Some(topic) = image.topics().topic(topic_id) else {
            continue;
        };
        for index in &entry.partitions {
            let Some(partition) = topic.partitions().get(index) else {
                continue;
            };
            if partition.isr.contains(&broker_id) || partition.leader == broker_id {
                records.extend(
                    PartitionChangeBuilder::new(topic_id, *index, partition, &usable)
                        .remove_from_isr(broker_id)
                        .build(),
                );
            }
        }
    }
    records
}

/// Unfences a broker: `UnfenceBrokerRecord`, then leaders for leaderless
/// partitions whose ISR holds it. Empty if unknown or not fenced.
pub fn unfence_broker(image: &MetadataImage, broker_id: i32) -> Vec<MetadataRecord> {
    let Some(broker) = image.cluster().broker(broker_id).filter(|b| b.fenced) else {
        return Vec::new();
    };
    let mut records = vec![record(Record::UnfenceBroker(UnfenceBrokerRecord {
        broker_id,
        broker_epoch: broker.epoch,
    }))];
    let shutting_down = broker.in_controlled_shutdown;
    let usable = |b: i32| {
        if b == broker_id {
            !shutting_down
        } else {
            is_usable(image, b)
        }
    };
    for topic in image.topics().topics() {
        for (&partition_id, partition) in topic.partitions() {
            if !partition.has_leader() && partition.isr.contains(&broker_id) {
                records.extend(
                    PartitionChangeBuilder::new(topic.id(), partition_id, partition, &usable)
                        .build(),
                );
            }
        }
    }
    records
}

/// How many partitions `broker_id` leads.
pub fn leader_count(image: &MetadataImage, broker_id: i32) -> usize {
    image
        .topics()
        .topics()
        .flat_map(|t| t.partitions().values())
        .filter(|p| p.leader == broker_id)
        .count()
}

#[cfg(test)]
mod tests {
    use kraft_metadata::NO_LEADER;
    use uuid::Uuid;

    use super::*;
    use crate::partition_change::test_image::{apply, topic_image};
    use crate::placement::usable_brokers;

    #[test]
    fn fencing_moves_leaders_and_keeps_the_last_isr_member() {
        let img = topic_image();
        let records = fence_broker(&img, 1);
        assert_eq!(records.len(), 3, "fence + partitions 0 and 1");
        let after = apply(&img, &records);
        let id = Uuid::from_u128(1);
        let p0 = after.topics().partition(id, 0).unwrap();
        assert_eq!(
            (p0.isr.clone(), p0.leader, p0.leader_epoch),
            (vec![2, 3], 2, 1)
        );
        let p1 = after.topics().partition(id, 1).unwrap();
        assert_eq!((p1.isr.clone(), p1.leader), (vec![1], NO_LEADER));
        assert_eq!(after.topics().partition(id, 2).unwrap().partition_epoch, 0);
        assert!(after.cluster().broker(1).unwrap().fenced);
        assert!(fence_broker(&after, 1).is_empty(), "already fenced");
        assert!(fence_broker(&after, 9).is_empty(), "unknown");

        // Unfencing brings the last ISR member back as leader.
        let records = unfence_broker(&after, 1);
        assert_eq!(records.len(), 2);
        let back = apply(&after, &records);
        assert_eq!(back.topics().partition(id, 1).unwrap().leader, 1);
        assert_eq!(
            back.topics().partition(id, 0).unwrap().leader,
            2,
            "no change where a leader exists"
        );
        assert!(unfence_broker(&back, 1).is_empty());
    }

    #[test]
    fn offline_replicas_leave_the_isr_and_leadership_moves() {
        let img = topic_image();
        let id = Uuid::from_u128(1);
        let offline = [OfflinePartitions {
            topic_id: bytes::Bytes::copy_from_slice(id.as_bytes()),
            partitions: vec![0, 1, 99],
        }];
        let records = leave_offline_replicas(&img, 1, &offline);
        assert_eq!(records.len(), 2, "partitions 0 and 1; 99 is unknown");
        let after = apply(&img, &records);
        let p0 = after.topics().partition(id, 0).unwrap();
        assert_eq!((p0.isr.clone(), p0.leader), (vec![2, 3], 2));
        let p1 = after.topics().partition(id, 1).unwrap();
        assert_eq!(
            (p1.isr.clone(), p1.leader),
            (vec![1], NO_LEADER),
            "the last ISR member stays, leaderless"
        );
        assert!(
            !after.cluster().broker(1).unwrap().fenced,
            "the broker stays unfenced"
        );
        assert!(
            leave_offline_replicas(&after, 1, &offline).is_empty(),
            "reporting them again changes nothing"
        );
        assert!(leave_offline_replicas(&img, 1, &[]).is_empty());
    }

    #[test]
    fn controlled_shutdown_moves_leadership_once() {
        let img = topic_image();
        assert_eq!(leader_count(&img, 1), 2);
        let records = controlled_shutdown(&img, 1);
        assert!(matches!(
            records[0].record,
            Some(Record::BrokerControlledShutdown(_))
        ));
        let after = apply(&img, &records);
        assert!(after.cluster().broker(1).unwrap().in_controlled_shutdown);
        assert_eq!(leader_count(&after, 1), 0);
        let id = Uuid::from_u128(1);
        assert_eq!(after.topics().partition(id, 0).unwrap().leader, 2);
        assert_eq!(after.topics().partition(id, 1).unwrap().isr, vec![1]);
        assert!(
            controlled_shutdown(&after, 1).is_empty(),
            "nothing left to do"
        );
        // A shutting-down broker takes no new replicas.
        assert_eq!(usable_brokers(&after).len(), 2);
    }
}
