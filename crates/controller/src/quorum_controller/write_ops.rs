//! The write path of the [`QuorumController`]: what a [`WriteOp`] computes
//! and how its records reach Raft.
//!
//! [`QuorumController::execute`] maps each operation to its manager
//! (cluster, replication, configs, partitions, elections, reassignments,
//! producer ids),
//! which computes the records and the response from the `latest` image.
//! [`QuorumController::write`] then replays those records into `latest` (so
//! the next write sees them) and proposes them, each Raft entry stamped
//! with the controller's term so Raft refuses it once that term is over;
//! the reply waits in `proposing` for the last entry to commit. The
//! controller's own writes (no-ops, bootstrap, fencing, leader balancing)
//! take the same path without a reply.
//!
//! A Raft entry is the unit that commits whole or not at all, so a user's
//! operation ([`Atomicity::Atomic`]: topics, partitions, configs,
//! reassignments, registration, AlterPartition) is always one entry; it is
//! bounded instead (Kafka's 10,000 partitions per CreateTopics). Writes
//! made of independent per-partition changes ([`Atomicity::Divisible`]:
//! fencing, controlled shutdown, elections, leader balancing), whose every
//! prefix is a consistent state, are split at `MAX_RECORDS_PER_ENTRY`, so
//! fencing a broker that hosts a million partitions does not stall the Raft
//! thread in one huge entry.

use std::time::Instant;

use kafka_protocol::ResponseError;
use kraft_metadata::MetadataDelta;
use kraft_proto::controller::controller_response::Body as ResponseBody;
use kraft_proto::controller::{
    AllocateProducerIdsRequest, AlterConfigsRequest, AlterPartitionRequest,
    AlterReassignmentsRequest, BrokerHeartbeatRequest, BrokerRegistrationRequest,
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, ElectLeadersRequest,
    ListReassignmentsRequest, WriteResponse,
};
use kraft_proto::metadata::{MetadataRecord, RecordBatch};
use prost::Message as _;

use super::{PendingWrite, QuorumController, WriteReply};
use crate::controller_result::ControllerResult;
use crate::error::{code, ControllerError};
use crate::replication_control::{self, TopicDefaults};
use crate::{alter_partition, config_control, leader_election, producer_id_control, reassignment};

/// The most records one entry of a divisible write carries (Kafka's
/// `max.records.per.user.op` is the same number).
const MAX_RECORDS_PER_ENTRY: usize = 10_000;

/// Whether a write's records must commit together (one Raft entry) or may
/// be split (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Atomicity {
    Atomic,
    Divisible,
}

/// The operations that go through the active controller.
#[derive(Debug)]
pub enum WriteOp {
    AlterConfigs(AlterConfigsRequest),
    RegisterBroker(BrokerRegistrationRequest),
    BrokerHeartbeat(BrokerHeartbeatRequest),
    CreateTopics(CreateTopicsRequest),
    DeleteTopics(DeleteTopicsRequest),
    CreatePartitions(CreatePartitionsRequest),
    AlterPartition(AlterPartitionRequest),
    ElectLeaders(ElectLeadersRequest),
    AlterReassignments(AlterReassignmentsRequest),
    /// A read, answered from the committed image.
    ListReassignments(ListReassignmentsRequest),
    /// A block of producer ids for a broker.
    AllocateProducerIds(AllocateProducerIdsRequest),
}

impl WriteOp {
    /// Heartbeats (controlled shutdown, offline replicas) and elections
    /// change partitions independently; everything else is all or nothing.
    pub fn atomicity(&self) -> Atomicity {
        match self {
            WriteOp::BrokerHeartbeat(_) | WriteOp::ElectLeaders(_) => Atomicity::Divisible,
            _ => Atomicity::Atomic,
        }
    }
}

impl QuorumController {
    /// Computes an operation's records and response from `latest`.
    pub(super) fn execute(
        &mut self,
        op: WriteOp,
    ) -> Result<ControllerResult<ResponseBody>, ControllerError> {
        match op {
            WriteOp::AlterConfigs(request) => {
                let records = config_control::alter_configs(&self.latest, &request.changes)?;
                let response = ResponseBody::Write(WriteResponse::default());
                Ok(if request.validate_only {
                    ControllerResult::response_only(response)
                } else {
                    ControllerResult::new(records, response)
                })
            }
            WriteOp::RegisterBroker(request) => {
                let result =
                    self.cluster
                        .register_broker(&self.latest, &request, Instant::now())?;
                Ok(map_response(result, ResponseBody::BrokerRegistration))
            }
            WriteOp::BrokerHeartbeat(request) => {
                let result = self
                    .cluster
                    .heartbeat(&self.latest, &request, Instant::now())?;
                Ok(map_response(result, ResponseBody::BrokerHeartbeat))
            }
            WriteOp::CreateTopics(request) => {
                let defaults = TopicDefaults {
                    num_partitions: self.settings.default_num_partitions,
                    replication_factor: self.settings.default_replication_factor,
                };
                let result = replication_control::create_topics(&self.latest, &request, &defaults);
                Ok(map_response(result, ResponseBody::CreateTopics))
            }
            WriteOp::DeleteTopics(request) => {
                let result = replication_control::delete_topics(&self.latest, &request);
                Ok(map_response(result, ResponseBody::DeleteTopics))
            }
            WriteOp::CreatePartitions(request) => {
                let result = replication_control::create_partitions(&self.latest, &request);
                Ok(map_response(result, ResponseBody::CreatePartitions))
            }
            WriteOp::AlterPartition(request) => {
                let result = alter_partition::alter_partition(&self.latest, &request)?;
                Ok(map_response(result, ResponseBody::AlterPartition))
            }
            WriteOp::ElectLeaders(request) => {
                let result = leader_election::elect_leaders(&self.latest, &request)?;
                Ok(map_response(result, ResponseBody::ElectLeaders))
            }
            WriteOp::AlterReassignments(request) => {
                let result = reassignment::alter_reassignments(&self.latest, &request);
                Ok(map_response(result, ResponseBody::AlterReassignments))
            }
            WriteOp::AllocateProducerIds(request) => {
                let result = producer_id_control::allocate_producer_ids(&self.latest, &request)?;
                Ok(map_response(result, ResponseBody::AllocateProducerIds))
            }
            WriteOp::ListReassignments(request) => {
                let response = reassignment::list_reassignments(&self.committed, &request);
                Ok(ControllerResult::response_only(
                    ResponseBody::ListReassignments(response),
                ))
            }
        }
    }

    /// Replays `records` into `latest` and proposes them: one entry, or
    /// several for a large divisible write.
    pub(super) fn write(
        &mut self,
        records: Vec<MetadataRecord>,
        reply: Option<(WriteReply, ResponseBody)>,
        atomicity: Atomicity,
    ) {
        if records.is_empty() {
            if let Some((reply, response)) = reply {
                let _ = reply.send(Ok((response, self.latest.offset())));
            }
            return;
        }
        let batch = RecordBatch { records };
        let mut delta = MetadataDelta::new(self.latest.clone());
        if let Err(e) = batch.records.iter().try_for_each(|r| delta.replay(r)) {
            // A manager produced records that do not replay: a bug. Refuse
            // the write rather than commit a log no one can load.
            tracing::error!(error = %e, "controller generated records that do not replay");
            if let Some((reply, _)) = reply {
                let _ = reply.send(Err(ControllerError::new(
                    code(ResponseError::UnknownServerError),
                    e.to_string(),
                )));
            }
            return;
        }
        self.latest = delta.apply();
        // The answer waits for the last entry.
        let chunks: Vec<&[MetadataRecord]> = match atomicity {
            Atomicity::Atomic => vec![&batch.records[..]],
            Atomicity::Divisible => batch.records.chunks(MAX_RECORDS_PER_ENTRY).collect(),
        };
        let last = chunks.len() - 1;
        let mut reply = reply;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let token = self.next_token;
            self.next_token += 1;
            let reply = if i == last { reply.take() } else { None };
            self.proposing.insert(token, PendingWrite { reply });
            let entry = RecordBatch {
                records: chunk.to_vec(),
            };
            // Stamped with the term `latest` belongs to: Raft appends it
            // only while this node still leads that term.
            self.raft.propose(token, self.term, entry.encode_to_vec());
        }
    }
}

fn map_response<T>(
    result: ControllerResult<T>,
    body: impl FnOnce(T) -> ResponseBody,
) -> ControllerResult<ResponseBody> {
    ControllerResult::new(result.records, body(result.response))
}
