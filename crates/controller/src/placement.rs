//! Replica placement: which brokers host each new partition, preferred
//! leader first, following Kafka's rack-aware
//! `AdminUtils.assignReplicasToBrokers`; and the checks a manual
//! assignment must pass.
//!
//! Data enters as the usable brokers (unfenced, not in controlled shutdown;
//! [`usable_brokers`] reads them from an image) with their racks, a start
//! offset, the first partition id, the partition count and the replication
//! factor. What leaves is one replica list per partition, or a Kafka error.
//! Pure and deterministic: the same inputs give the same placement, so the
//! caller picks the start offset (a hash of the topic name, say) to spread
//! leaders across topics.
//!
//! # The algorithm
//!
//! Brokers are arranged rack-alternated (racks sorted, brokers by id within
//! a rack, one from each rack in turn), e.g. racks a:{1,2} b:{3} c:{4} give
//! `[1, 3, 4, 2]`. Partition `p`'s leader is broker `(p + start) % n` of
//! that list, so leaders go round-robin. Followers are taken at a shift from
//! the leader that grows every `n` partitions, skipping a broker whose rack
//! already has a replica while some rack has none, and a broker already
//! chosen. Brokers without a rack count as one rack of their own; with no
//! racks at all this is Kafka's rack-unaware placement.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use kafka_protocol::ResponseError;
use kraft_metadata::MetadataImage;
use kraft_proto::controller::ReplicaAssignment;

use crate::error::{code, ControllerError};

/// The most partitions one operation may add (Kafka's
/// `MAX_PARTITIONS_PER_BATCH`): a user operation is one atomic Raft entry,
/// which must stay a reasonable size.
pub const MAX_NEW_PARTITIONS: i32 = 10_000;

/// A broker that can take new replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsableBroker {
    pub id: i32,
    pub rack: Option<String>,
}

/// Whether `broker_id` is registered, unfenced and not shutting down.
pub fn is_usable(image: &MetadataImage, broker_id: i32) -> bool {
    image
        .cluster()
        .broker(broker_id)
        .is_some_and(|b| !b.fenced && !b.in_controlled_shutdown)
}

/// The brokers new replicas may go to, by id.
pub fn usable_brokers(image: &MetadataImage) -> Vec<UsableBroker> {
    image
        .cluster()
        .unfenced_brokers()
        .filter(|b| !b.in_controlled_shutdown)
        .map(|b| UsableBroker {
            id: b.id,
            rack: b.rack.clone(),
        })
        .collect()
}

/// Places `num_partitions` partitions numbered from `first_partition`
/// with `replication_factor` replicas each; see the module docs.
pub fn place_replicas(
    brokers: &[UsableBroker],
    start: usize,
    first_partition: i32,
    num_partitions: i32,
    replication_factor: i32,
) -> Result<Vec<Vec<i32>>, ControllerError> {
    if num_partitions <= 0 {
        return Err(ControllerError::new(
            code(ResponseError::InvalidPartitions),
            "Number of partitions was set to an invalid non-positive value.",
        ));
    }
    if num_partitions > MAX_NEW_PARTITIONS {
        return Err(ControllerError::new(
            code(ResponseError::InvalidPartitions),
            format!("Cannot add {num_partitions} partitions in one operation; the limit is {MAX_NEW_PARTITIONS}."),
        ));
    }
    if replication_factor <= 0 {
        return Err(ControllerError::new(
            code(ResponseError::InvalidReplicationFactor),
            "Replication factor must be larger than 0, or -1 to use the default value.",
        ));
    }
    let n = brokers.len();
    let rf = usize::try_from(replication_factor).unwrap_or(usize::MAX);
    if rf > n {
        return Err(ControllerError::new(
            code(ResponseError::InvalidReplicationFactor),
            format!(
                "Unable to replicate the partition {rf} time(s): The target replication factor \
                 of {rf} cannot be reached because only {n} broker(s) are registered."
            ),
        ));
    }

    let (arranged, rack_of) = rack_alternated(brokers);
    let num_racks = rack_of.values().collect::<BTreeSet<_>>().len();
    let start_index = start % n;
    let mut shift = start % n;
    let first = usize::try_from(first_partition.max(0)).unwrap_or(0);
    let count = usize::try_from(num_partitions).unwrap_or(0);
    let mut out = Vec::with_capacity(count);
    for partition in first..first + count {
        if partition > 0 && partition % n == 0 {
            shift += 1;
        }
        let leader_index = (partition + start_index) % n;
        let leader = arranged[leader_index];
        let mut replicas = vec![leader];
        let mut racks = BTreeSet::from([&rack_of[&leader]]);
        let mut k = 0;
        while replicas.len() < rf {
            // Every run of n - 1 steps visits every other broker once, so a
            // fit turns up within that many steps for each follower.
            if k > n * rf {
                return Err(ControllerError::new(
                    code(ResponseError::UnknownServerError),
                    "replica placement found no broker for a follower (a bug)",
                ));
            }
            let candidate = arranged[follower_index(leader_index, shift * num_racks, k, n)];
            let rack = &rack_of[&candidate];
            if (!racks.contains(rack) || racks.len() == num_racks) && !replicas.contains(&candidate)
            {
                replicas.push(candidate);
                racks.insert(rack);
            }
            k += 1;
        }
        out.push(replicas);
    }
    Ok(out)
}

/// Kafka's `replicaIndex`: the broker `1 + (shift + k) % (n - 1)` places
/// after the leader, never the leader itself.
fn follower_index(leader_index: usize, shift: usize, k: usize, n: usize) -> usize {
    let step = 1 + (shift + k) % (n - 1).max(1);
    (leader_index + step) % n
}

/// Brokers ordered one per rack in turn, and each broker's rack.
fn rack_alternated(brokers: &[UsableBroker]) -> (Vec<i32>, BTreeMap<i32, Option<String>>) {
    let mut by_rack: BTreeMap<Option<String>, Vec<i32>> = BTreeMap::new();
    for b in brokers {
        by_rack.entry(b.rack.clone()).or_default().push(b.id);
    }
    let mut racks: Vec<std::vec::IntoIter<i32>> = by_rack
        .into_values()
        .map(|mut ids| {
            ids.sort_unstable();
            ids.into_iter()
        })
        .collect();
    let mut arranged = Vec::with_capacity(brokers.len());
    while arranged.len() < brokers.len() {
        for rack in &mut racks {
            arranged.extend(rack.next());
        }
    }
    let rack_of = brokers.iter().map(|b| (b.id, b.rack.clone())).collect();
    (arranged, rack_of)
}

/// Checks a manual assignment of the partitions `first_partition..` and
/// returns their replica lists in partition order. Every partition index
/// must appear once with no gaps, every list must be non-empty, name only
/// registered brokers (fenced ones are allowed; they are just not put in the
/// ISR), never name a broker twice, and have the same length as the others
/// and as `expected_rf` when given (an existing topic's replication factor).
pub fn validate_manual_assignment(
    image: &MetadataImage,
    assignments: &[ReplicaAssignment],
    first_partition: i32,
    expected_rf: Option<usize>,
) -> Result<Vec<Vec<i32>>, ControllerError> {
    let invalid = |msg: String| {
        Err(ControllerError::new(
            code(ResponseError::InvalidReplicaAssignment),
            msg,
        ))
    };
    let mut sorted: Vec<&ReplicaAssignment> = assignments.iter().collect();
    sorted.sort_by_key(|a| a.partition_index);
    let mut expected_rf = expected_rf;
    let mut out = Vec::with_capacity(sorted.len());
    for (offset, assignment) in sorted.into_iter().enumerate() {
        let expected_index = i64::from(first_partition) + offset as i64;
        if i64::from(assignment.partition_index) != expected_index {
            return invalid(format!(
                "The manual partition assignment has partition {} where partition \
                 {expected_index} was expected: partitions must be numbered from \
                 {first_partition} with no gaps or repeats.",
                assignment.partition_index
            ));
        }
        let replicas = &assignment.broker_ids;
        if replicas.is_empty() {
            return invalid(format!(
                "The manual partition assignment includes an empty replica list for partition {}.",
                assignment.partition_index
            ));
        }
        let mut seen = HashSet::new();
        for &broker in replicas {
            if !seen.insert(broker) {
                return invalid(format!(
                    "The manual partition assignment specifies broker {broker} more than once \
                     for partition {}.",
                    assignment.partition_index
                ));
            }
            if image.cluster().broker(broker).is_none() {
                return invalid(format!(
                    "The manual partition assignment includes broker {broker}, but no such \
                     broker is registered."
                ));
            }
        }
        match expected_rf {
            Some(rf) if rf != replicas.len() => {
                return invalid(format!(
                    "The manual partition assignment includes a partition with {} replica(s), \
                     but this is not consistent with previous partitions, which have {rf} \
                     replica(s).",
                    replicas.len()
                ));
            }
            _ => expected_rf = Some(replicas.len()),
        }
        out.push(replicas.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition_change::test_image::{broker, fence, image};

    fn brokers(spec: &[(i32, Option<&str>)]) -> Vec<UsableBroker> {
        spec.iter()
            .map(|(id, rack)| UsableBroker {
                id: *id,
                rack: rack.map(str::to_string),
            })
            .collect()
    }

    fn count_leaders(placement: &[Vec<i32>]) -> BTreeMap<i32, usize> {
        let mut counts = BTreeMap::new();
        for replicas in placement {
            *counts.entry(replicas[0]).or_default() += 1;
        }
        counts
    }

    #[test]
    fn rack_unaware_matches_kafka_and_spreads_leaders() {
        let b = brokers(&[(0, None), (1, None), (2, None), (3, None), (4, None)]);
        let placed = place_replicas(&b, 0, 0, 10, 3).unwrap();
        // Kafka's AdminUtilsTest with fixed start index 0.
        assert_eq!(placed[0], vec![0, 1, 2]);
        assert_eq!(placed[1], vec![1, 2, 3]);
        assert_eq!(placed[4], vec![4, 0, 1]);
        assert_eq!(placed[5], vec![0, 2, 3]);
        assert!(count_leaders(&placed).values().all(|c| *c == 2));
        for replicas in &placed {
            let distinct: BTreeSet<_> = replicas.iter().collect();
            assert_eq!(distinct.len(), 3, "{replicas:?}");
        }
    }

    #[test]
    fn rack_aware_puts_replicas_on_different_racks() {
        let b = brokers(&[
            (1, Some("a")),
            (2, Some("a")),
            (3, Some("b")),
            (4, Some("b")),
            (5, Some("c")),
            (6, Some("c")),
        ]);
        let rack = |id: i32| b.iter().find(|x| x.id == id).unwrap().rack.clone();
        let placed = place_replicas(&b, 3, 0, 12, 3).unwrap();
        for replicas in &placed {
            let racks: BTreeSet<_> = replicas.iter().map(|id| rack(*id)).collect();
            assert_eq!(racks.len(), 3, "{replicas:?} spans every rack");
        }
        assert!(count_leaders(&placed).values().all(|c| *c == 2));
        let mut replica_counts = BTreeMap::<i32, usize>::new();
        for id in placed.iter().flatten() {
            *replica_counts.entry(*id).or_default() += 1;
        }
        assert!(
            replica_counts.values().all(|c| *c == 6),
            "{replica_counts:?}"
        );
    }

    #[test]
    fn uneven_racks_still_spread_before_repeating_a_rack() {
        let b = brokers(&[(1, Some("a")), (2, Some("a")), (3, Some("b"))]);
        for replicas in place_replicas(&b, 0, 0, 6, 2).unwrap() {
            let racks: BTreeSet<_> = replicas
                .iter()
                .map(|id| if *id == 3 { "b" } else { "a" })
                .collect();
            assert_eq!(racks.len(), 2, "{replicas:?}");
        }
    }

    #[test]
    fn placement_is_deterministic_and_start_rotates_leaders() {
        let b = brokers(&[(1, None), (2, None), (3, None)]);
        assert_eq!(
            place_replicas(&b, 7, 0, 4, 2).unwrap(),
            place_replicas(&b, 7, 0, 4, 2).unwrap()
        );
        assert_eq!(place_replicas(&b, 0, 0, 1, 1).unwrap(), vec![vec![1]]);
        assert_eq!(place_replicas(&b, 1, 0, 1, 1).unwrap(), vec![vec![2]]);
        // Continuing a topic: partition ids carry on the rotation.
        assert_eq!(place_replicas(&b, 0, 2, 1, 1).unwrap(), vec![vec![3]]);
    }

    #[test]
    fn bad_counts_are_rejected() {
        let b = brokers(&[(1, None), (2, None)]);
        let err = place_replicas(&b, 0, 0, 1, 3).unwrap_err();
        assert_eq!(err.code, code(ResponseError::InvalidReplicationFactor));
        assert_eq!(
            err.message,
            "Unable to replicate the partition 3 time(s): The target replication factor of 3 \
             cannot be reached because only 2 broker(s) are registered."
        );
        assert_eq!(
            place_replicas(&b, 0, 0, 1, 0).unwrap_err().code,
            code(ResponseError::InvalidReplicationFactor)
        );
        assert_eq!(
            place_replicas(&b, 0, 0, 0, 1).unwrap_err().code,
            code(ResponseError::InvalidPartitions)
        );
        assert_eq!(
            place_replicas(&b, 0, 0, i32::MAX, 1).unwrap_err().code,
            code(ResponseError::InvalidPartitions)
        );
        assert_eq!(
            place_replicas(&[], 0, 0, 1, 1).unwrap_err().code,
            code(ResponseError::InvalidReplicationFactor)
        );
    }

    #[test]
    fn usable_brokers_skip_fenced() {
        let img = image(vec![broker(1, Some("r")), broker(2, None), fence(2)]);
        assert_eq!(usable_brokers(&img), brokers(&[(1, Some("r"))]));
        assert!(is_usable(&img, 1));
        assert!(!is_usable(&img, 2));
        assert!(!is_usable(&img, 3));
    }

    #[test]
    fn manual_assignments_are_checked() {
        let img = image(vec![broker(1, None), broker(2, None), broker(3, None)]);
        let a = |p: i32, ids: &[i32]| ReplicaAssignment {
            partition_index: p,
            broker_ids: ids.to_vec(),
        };
        let ok = validate_manual_assignment(&img, &[a(1, &[2, 3]), a(0, &[1, 2])], 0, None);
        assert_eq!(ok.unwrap(), vec![vec![1, 2], vec![2, 3]]);
        let later = validate_manual_assignment(&img, &[a(3, &[1])], 3, Some(1));
        assert_eq!(later.unwrap(), vec![vec![1]]);
        for (bad, rf) in [
            (vec![a(0, &[1]), a(2, &[2])], None),
            (vec![a(0, &[1]), a(0, &[2])], None),
            (vec![a(0, &[])], None),
            (vec![a(0, &[1, 1])], None),
            (vec![a(0, &[9])], None),
            (vec![a(0, &[1, 2]), a(1, &[1])], None),
            (vec![a(0, &[1, 2])], Some(3)),
        ] {
            let err = validate_manual_assignment(&img, &bad, 0, rf).unwrap_err();
            assert_eq!(
                err.code,
                code(ResponseError::InvalidReplicaAssignment),
                "{bad:?}"
            );
        }
    }
}
