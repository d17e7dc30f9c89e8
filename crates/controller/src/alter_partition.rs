//! AlterPartition (KIP-497): a partition leader asks the controller to
//! change the ISR of partitions it leads.
//!
//! Pure, like every manager. Data enters as the controller's `latest`
//! [`MetadataImage`] and an [`AlterPartitionRequest`]; what leaves is one
//! `PartitionChangeRecord` per partition whose ISR changes, plus a response
//! carrying, per partition, an error code and the partition's state after
//! the request (leader, leader epoch, partition epoch, ISR). The leader
//! applies the new ISR only when it sees the record in its metadata.
//!
//! # Checks, in order
//!
//! - The request's `broker_epoch` must be the broker's registration epoch:
//!   otherwise the whole request fails with STALE_BROKER_EPOCH.
//! - Per partition: a partition named twice is INVALID_REQUEST; an unknown
//!   topic id or partition is UNKNOWN_TOPIC_OR_PARTITION; a sender that is
//!   not the leader is NOT_LEADER_OR_FOLLOWER; a stale leader epoch is
//!   FENCED_LEADER_EPOCH; a stale partition epoch is INVALID_UPDATE_VERSION;
//!   an ISR that is empty, repeats a broker, names a non-replica or leaves
//!   out the leader is INVALID_REQUEST; a broker newly added to the ISR that
//!   is unregistered, fenced or shutting down is INELIGIBLE_REPLICA.
//!
//! An ISR change never changes the leader (no new leader epoch), except
//! when it completes a reassignment that removes the leader: the record then
//! also elects a leader among the target replicas and the sender gets
//! NEW_LEADER_ELECTED (with the new state), as in Kafka. An unchanged ISR
//! answers the current state and writes nothing.

use std::collections::HashSet;

use kafka_protocol::ResponseError;
use kraft_metadata::{MetadataImage, PartitionRegistration};
use kraft_proto::controller::{
    AlterPartitionItem, AlterPartitionRequest, AlterPartitionResponse, AlterPartitionResult,
};
use kraft_proto::metadata::{metadata_record::Record, MetadataRecord};
use uuid::Uuid;

use crate::controller_result::ControllerResult;
use crate::error::{code, ControllerError};
use crate::partition_change::PartitionChangeBuilder;
use crate::placement::is_usable;

/// Serves an AlterPartition request; see the module docs.
pub fn alter_partition(
    image: &MetadataImage,
    request: &AlterPartitionRequest,
) -> Result<ControllerResult<AlterPartitionResponse>, ControllerError> {
    let broker_id = request.broker_id;
    match image.cluster().broker(broker_id) {
        Some(b) if b.epoch == request.broker_epoch => {}
        Some(b) => {
            return Err(ControllerError::new(
                code(ResponseError::StaleBrokerEpoch),
                format!(
                    "Broker {broker_id} sent AlterPartition with epoch {}, but its registration has epoch {}.",
                    request.broker_epoch, b.epoch
                ),
            ))
        }
        None => {
            return Err(ControllerError::new(
                code(ResponseError::StaleBrokerEpoch),
                format!("Broker {broker_id} is not registered."),
            ))
        }
    }
    let mut seen = HashSet::new();
    let repeated: HashSet<(&[u8], i32)> = request
        .partitions
        .iter()
        .map(|p| (p.topic_id.as_ref(), p.partition))
        .filter(|key| !seen.insert(*key))
        .collect();
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(request.partitions.len());
    for item in &request.partitions {
        let mut result = AlterPartitionResult {
            topic_id: item.topic_id.clone(),
            partition: item.partition,
            ..Default::default()
        };
        if repeated.contains(&(item.topic_id.as_ref(), item.partition)) {
            result.error_code = code(ResponseError::InvalidRequest);
            results.push(result);
            continue;
        }
        let found = Uuid::from_slice(&item.topic_id)
            .ok()
            .and_then(|id| Some((id, image.topics().partition(id, item.partition)?)));
        let Some((topic_id, partition)) = found else {
            result.error_code = code(ResponseError::UnknownTopicOrPartition);
            results.push(result);
            continue;
        };
        let outcome = alter_one(image, broker_id, topic_id, partition, item);
        let (code, state) = match outcome {
            Ok(None) => (0, partition.clone()),
            Ok(Some((record, after))) => {
                records.push(record);
                let code = if after.leader == broker_id {
                    0
                } else {
                    code(ResponseError::NewLeaderElected)
                };
                (code, after)
            }
            Err(code) => (code, partition.clone()),
        };
        result.error_code = code;
        result.leader_id = state.leader;
        result.leader_epoch = state.leader_epoch;
        result.partition_epoch = state.partition_epoch;
        result.isr = state.isr;
        results.push(result);
    }
    Ok(ControllerResult::new(
        records,
        AlterPartitionResponse {
            partitions: results,
        },
    ))
}

/// One partition's change: `None` if the ISR is already what is asked,
/// else the record and the registration after it; or an error code.
fn alter_one(
    image: &MetadataImage,
    broker_id: i32,
    topic_id: Uuid,
    partition: &PartitionRegistration,
    item: &AlterPartitionItem,
) -> Result<Option<(MetadataRecord, PartitionRegistration)>, i32> {
    if partition.leader != broker_id {
        return Err(code(ResponseError::NotLeaderOrFollower));
    }
    if item.leader_epoch != partition.leader_epoch {
        return Err(code(ResponseError::FencedLeaderEpoch));
    }
    if item.partition_epoch != partition.partition_epoch {
        return Err(code(ResponseError::InvalidUpdateVersion));
    }
    let new_isr = &item.new_isr;
    let mut members = HashSet::new();
    if new_isr.is_empty()
        || !new_isr.iter().all(|b| members.insert(*b))
        || !new_isr.iter().all(|b| partition.replicas.contains(b))
        || !new_isr.contains(&partition.leader)
    {
        return Err(code(ResponseError::InvalidRequest));
    }
    if new_isr
        .iter()
        .any(|b| !partition.isr.contains(b) && !is_usable(image, *b))
    {
        return Err(code(ResponseError::IneligibleReplica));
    }
    // The sender stays usable as leader: an ISR change is not an election.
    let usable = |b: i32| b == broker_id || is_usable(image, b);
    let Some(record) = PartitionChangeBuilder::new(topic_id, item.partition, partition, &usable)
        .set_target_isr(new_isr.clone())
        .build()
    else {
        return Ok(None);
    };
    let Some(Record::PartitionChange(change)) = &record.record else {
        return Ok(None);
    };
    // The builder's record always merges (epochs far from overflow are the
    // only failure); an overflow is reported as a stale epoch.
    let after = partition
        .merge(topic_id, change)
        .map_err(|_| code(ResponseError::InvalidUpdateVersion))?;
    Ok(Some((record, after)))
}

#[cfg(test)]
mod tests;
