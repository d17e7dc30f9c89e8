//! Partition reassignment (KIP-455): Kafka's AlterPartitionReassignments
//! and ListPartitionReassignments on the controller.
//!
//! Pure. Data enters as the controller's [`MetadataImage`] and a request;
//! what leaves is `PartitionChangeRecord`s (for alter) and a response.
//!
//! # The state machine
//!
//! A partition whose replicas are `R` (its *original* replicas: the current
//! replicas minus any being added) gets a target `T`:
//! `replicas = T ++ (R − T)`, `adding_replicas = T − R`,
//! `removing_replicas = R − T`. The ISR stays as it is (less any broker no
//! longer a replica). Brokers see themselves in `replicas` and start
//! fetching. When every adding replica is in the ISR, which happens through
//! the leader's AlterPartition, the [`PartitionChangeBuilder`] finishes the
//! reassignment in that same change: `replicas = T`, the ISR loses the
//! removed replicas, both lists are cleared, and a leader outside `T` gives
//! way to the first usable in-sync replica of `T` (a new leader epoch). A
//! target that adds nothing (a shrink or a reordering) finishes at once.
//!
//! A new target while one is in progress starts again from `R`: replicas
//! the old target was adding and the new one does not name are dropped.
//! Cancelling (no replicas) goes back to `R` (in the order `replicas` has
//! them, so brokers the target kept come first, as in Kafka) and an ISR
//! without the adding replicas; a cancellation that would leave no in-sync replica would need
//! an unclean election and is refused (INVALID_REPLICA_ASSIGNMENT), as in
//! Kafka with unclean election disabled.
//!
//! # Errors, per partition
//!
//! Named twice: INVALID_REQUEST. Unknown topic or partition:
//! UNKNOWN_TOPIC_OR_PARTITION. A target that is empty, repeats a broker or
//! names an unregistered one: INVALID_REPLICA_ASSIGNMENT. A target of
//! another size when the request keeps the replication factor:
//! INVALID_REPLICATION_FACTOR. Cancelling where nothing runs:
//! NO_REASSIGNMENT_IN_PROGRESS.

use std::collections::HashSet;

use kafka_protocol::ResponseError;
use kraft_metadata::{MetadataImage, PartitionRegistration};
use kraft_proto::controller::{
    AlterReassignmentsRequest, AlterReassignmentsResponse, ListReassignmentsRequest,
    ListReassignmentsResponse, OngoingReassignment, ReassignmentResult, ReassignmentTarget,
    ReplicaAssignment,
};
use kraft_proto::metadata::MetadataRecord;
use uuid::Uuid;

use crate::controller_result::ControllerResult;
use crate::error::{code, ControllerError};
use crate::partition_change::PartitionChangeBuilder;
use crate::placement::{is_usable, validate_manual_assignment};

/// Starts, replaces or cancels reassignments; see the module docs.
pub fn alter_reassignments(
    image: &MetadataImage,
    request: &AlterReassignmentsRequest,
) -> ControllerResult<AlterReassignmentsResponse> {
    let mut seen = HashSet::new();
    let repeated: HashSet<(&str, i32)> = request
        .targets
        .iter()
        .map(|t| (t.topic.as_str(), t.partition))
        .filter(|key| !seen.insert(*key))
        .collect();
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(request.targets.len());
    for target in &request.targets {
        let outcome = if repeated.contains(&(target.topic.as_str(), target.partition)) {
            Err(ControllerError::new(
                code(ResponseError::InvalidRequest),
                format!(
                    "Partition {}-{} appears more than once in the request.",
                    target.topic, target.partition
                ),
            ))
        } else {
            reassign(image, target, request.keep_replication_factor)
        };
        let (error_code, error_message) = match outcome {
            Ok(record) => {
                records.extend(record);
                (0, String::new())
            }
            Err(e) => (e.code, e.message),
        };
        results.push(ReassignmentResult {
            topic: target.topic.clone(),
            partition: target.partition,
            error_code,
            error_message,
        });
    }
    ControllerResult::new(records, AlterReassignmentsResponse { results })
}

fn reassign(
    image: &MetadataImage,
    target: &ReassignmentTarget,
    keep_replication_factor: bool,
) -> Result<Option<MetadataRecord>, ControllerError> {
    let name = target.topic.as_str();
    let found = image
        .topics()
        .topic_by_name(name)
        .and_then(|t| Some((t.id(), t.partition(target.partition)?)));
    let Some((topic_id, partition)) = found else {
        return Err(ControllerError::new(
            code(ResponseError::UnknownTopicOrPartition),
            format!("No such partition as {name}-{}.", target.partition),
        ));
    };
    if target.replicas.is_empty() {
        cancel(image, topic_id, target.partition, partition)
    } else {
        start(image, topic_id, target, partition, keep_replication_factor)
    }
}

/// The replicas before any reassignment in progress started, in order.
fn original_replicas(partition: &PartitionRegistration) -> Vec<i32> {
    without(&partition.replicas, &partition.adding_replicas)
}

/// `ids` minus `gone`, in `ids`' order.
fn without(ids: &[i32], gone: &[i32]) -> Vec<i32> {
    ids.iter().copied().filter(|b| !gone.contains(b)).collect()
}

fn start(
    image: &MetadataImage,
    topic_id: Uuid,
    target: &ReassignmentTarget,
    partition: &PartitionRegistration,
    keep_replication_factor: bool,
) -> Result<Option<MetadataRecord>, ControllerError> {
    let assignment = ReplicaAssignment {
        partition_index: target.partition,
        broker_ids: target.replicas.clone(),
    };
    validate_manual_assignment(image, &[assignment], target.partition, None)?;
    let original = original_replicas(partition);
    let wanted = &target.replicas;
    if keep_replication_factor && wanted.len() != original.len() {
        return Err(ControllerError::new(
            code(ResponseError::InvalidReplicationFactor),
            format!(
                "The replication factor is changed from {} to {}, and the request does not allow that.",
                original.len(),
                wanted.len()
            ),
        ));
    }
    let adding = without(wanted, &original);
    let removing = without(&original, wanted);
    let replicas: Vec<i32> = wanted.iter().chain(&removing).copied().collect();
    if !partition.isr.iter().any(|b| replicas.contains(b)) {
        return Err(ControllerError::new(
            code(ResponseError::InvalidReplicaAssignment),
            format!(
                "Reassigning {}-{} to {wanted:?} would leave it with no in-sync replica.",
                target.topic, target.partition
            ),
        ));
    }
    let usable = |b: i32| is_usable(image, b);
    Ok(
        PartitionChangeBuilder::new(topic_id, target.partition, partition, &usable)
            .set_target_replicas(replicas)
            .set_target_adding(adding)
            .set_target_removing(removing)
            .build(),
    )
}

fn cancel(
    image: &MetadataImage,
    topic_id: Uuid,
    partition_id: i32,
    partition: &PartitionRegistration,
) -> Result<Option<MetadataRecord>, ControllerError> {
    if partition.adding_replicas.is_empty() && partition.removing_replicas.is_empty() {
        return Err(ControllerError::new(
            code(ResponseError::NoReassignmentInProgress),
            "No partition reassignment is in progress for this partition.",
        ));
    }
    let isr = without(&partition.isr, &partition.adding_replicas);
    if isr.is_empty() {
        return Err(ControllerError::new(
            code(ResponseError::InvalidReplicaAssignment),
            "Unable to revert the reassignment: every in-sync replica is one being added, so it would need an unclean leader election.",
        ));
    }
    let usable = |b: i32| is_usable(image, b);
    Ok(
        PartitionChangeBuilder::new(topic_id, partition_id, partition, &usable)
            .set_target_replicas(original_replicas(partition))
            .set_target_isr(isr)
            .set_target_adding(Vec::new())
            .set_target_removing(Vec::new())
            .build(),
    )
}

/// The reassignments in progress among the named partitions (every one
/// when none is named), by topic then partition. Names that do not exist,
/// or are not being reassigned, are left out, as in Kafka.
pub fn list_reassignments(
    image: &MetadataImage,
    request: &ListReassignmentsRequest,
) -> ListReassignmentsResponse {
    let ongoing = |topic: &str, partition_id: i32, p: &PartitionRegistration| {
        (!p.adding_replicas.is_empty() || !p.removing_replicas.is_empty()).then(|| {
            OngoingReassignment {
                topic: topic.to_string(),
                partition: partition_id,
                replicas: p.replicas.clone(),
                adding_replicas: p.adding_replicas.clone(),
                removing_replicas: p.removing_replicas.clone(),
            }
        })
    };
    let mut reassignments: Vec<OngoingReassignment> = if request.partitions.is_empty() {
        image
            .topics()
            .topics()
            .flat_map(|t| {
                t.partitions()
                    .iter()
                    .filter_map(move |(id, p)| ongoing(t.name(), *id, p))
            })
            .collect()
    } else {
        let mut wanted = HashSet::new();
        request
            .partitions
            .iter()
            .flat_map(|named| {
                named
                    .partitions
                    .iter()
                    .map(move |p| (named.topic.as_str(), *p))
            })
            .filter(|key| wanted.insert(*key))
            .filter_map(|(topic, id)| {
                let p = image.topics().topic_by_name(topic)?.partition(id)?;
                ongoing(topic, id, p)
            })
            .collect()
    };
    reassignments.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    ListReassignmentsResponse { reassignments }
}

#[cfg(test)]
mod tests;
