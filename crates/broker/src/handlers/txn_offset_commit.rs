//! TxnOffsetCommit (key 28, v0–v4): a transactional producer commits a
//! group's consumed offsets inside its transaction
//! (`send_offsets_to_transaction`), after AddOffsetsToTxn put the group's
//! `__consumer_offsets` partition into the transaction.
//!
//! In: transactional id, group id, producer id and epoch, from v3 the
//! member id, generation and `group.instance.id` of the consumer (checked
//! as OffsetCommit checks them; a request without them is not), and per
//! topic and partition the offset, leader epoch (v2+) and metadata. The
//! offsets are written to the group's partition as a transactional batch
//! of the producer and stay pending ([`crate::group::txn_offsets`]) until
//! the transaction's marker commits or drops them; the answer waits until
//! the batch is replicated.
//!
//! Out: one error code per partition: NONE, UNKNOWN_TOPIC_OR_PARTITION,
//! OFFSET_METADATA_TOO_LARGE, the group's (ILLEGAL_GENERATION,
//! UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, NOT_COORDINATOR,
//! COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE), the
//! producer's where the log refuses its batch (PRODUCER_FENCED, which
//! clients before v2 get as INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE), and
//! INVALID_REQUEST for an empty transactional id.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};

use super::support::groups::{shard, CommitPlan};
use super::support::transactions::error_code;
use super::Handler;
use crate::context::BrokerContext;
use crate::group::{MemberRef, Shard, TxnCommitter};
use crate::handlers::support::shape::{field, Field, Kind, Shape};
use crate::replica::now_ms;
use crate::txn::TxnWrite;
use kraft_metadata::CONSUMER_OFFSETS;

const PARTITION: &[Field] = &[
    field(0, i16::MAX, Kind::Int32),
    field(0, i16::MAX, Kind::Int64),
    field(2, i16::MAX, Kind::Int32),
    field(0, i16::MAX, Kind::String),
];
const TOPIC: &[Field] = &[
    field(0, i16::MAX, Kind::String),
    field(0, i16::MAX, Kind::StructArray(PARTITION)),
];

/// Serves TxnOffsetCommit.
pub struct TxnOffsetCommitHandler;

/// KIP-890: the guard the offsets are written under. Unless the
/// producer's transaction is open on the group's partition already, its
/// coordinator must confirm the partition is in the transaction
/// (AddOffsetsToTxn added it); a refusal is INVALID_TXN_STATE, and a
/// coordinator that cannot answer now COORDINATOR_NOT_AVAILABLE, which
/// clients retry.
async fn verify(
    ctx: &BrokerContext,
    shard: &Shard,
    request: &TxnOffsetCommitRequest,
) -> Result<u64, i16> {
    let producer_id = request.producer_id.0;
    let Some(guard) = shard.start_txn_verification(producer_id) else {
        return Ok(0);
    };
    let write = TxnWrite {
        transactional_id: &request.transactional_id,
        producer_id,
        epoch: request.producer_epoch,
        topic: CONSUMER_OFFSETS,
        partition: shard.index(),
    };
    match ctx.transactions.verify(write).await {
        Ok(()) => Ok(guard),
        Err(code) if code == ResponseError::NotEnoughReplicas.code() => {
            Err(ResponseError::CoordinatorNotAvailable.code())
        }
        Err(code) => Err(code),
    }
}

impl Handler for TxnOffsetCommitHandler {
    const API_KEY: ApiKey = ApiKey::TxnOffsetCommit;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 4;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 3,
        fields: &[
            field(0, i16::MAX, Kind::String),
            field(0, i16::MAX, Kind::String),
            field(0, i16::MAX, Kind::Int64),
            field(0, i16::MAX, Kind::Int16),
            field(3, i16::MAX, Kind::Int32),
            field(3, i16::MAX, Kind::String),
            field(3, i16::MAX, Kind::String),
            field(0, i16::MAX, Kind::StructArray(TOPIC)),
        ],
    };
    type Request = TxnOffsetCommitRequest;
    type Response = TxnOffsetCommitResponse;

    fn failed(response: &TxnOffsetCommitResponse) -> bool {
        response
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .any(|p| p.error_code != 0)
    }

    async fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: TxnOffsetCommitRequest,
    ) -> TxnOffsetCommitResponse {
        let version = header.request_api_version;
        let group = request.group_id.0.to_string();
        let image = ctx.cache.image();
        let now = now_ms();
        let mut plan = CommitPlan::new(
            &image,
            request.topics.iter().map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        (
                            p.partition_index,
                            p.committed_offset,
                            p.committed_leader_epoch,
                            p.committed_metadata.as_deref(),
                        )
                    })
                    .collect();
                (&*t.name.0, partitions)
            }),
            now,
        );
        let offsets = std::mem::take(&mut plan.offsets);
        let results = if request.transactional_id.is_empty() {
            vec![ResponseError::InvalidRequest.code(); offsets.len()]
        } else {
            match shard(ctx, &group) {
                Err(code) => vec![code; offsets.len()],
                Ok(_) if offsets.is_empty() => Vec::new(),
                Ok(shard) => match verify(ctx, &shard, &request).await {
                    Err(code) => vec![code; offsets.len()],
                    Ok(verification) => {
                        let who = MemberRef {
                            member_id: request.member_id.to_string(),
                            group_instance_id: request
                                .group_instance_id
                                .as_ref()
                                .map(|i| i.to_string()),
                            generation_id: request.generation_id,
                        };
                        let producer = TxnCommitter {
                            producer_id: request.producer_id.0,
                            epoch: request.producer_epoch,
                            verification,
                        };
                        let max = ctx.groups.config().offset_metadata_max_bytes;
                        shard
                            .txn_commit(&group, &who, producer, offsets, max)
                            .await
                            .into_iter()
                            .map(|code| match ResponseError::try_from_code(code) {
                                Some(e) => error_code(e, version, 2),
                                None => code,
                            })
                            .collect()
                    }
                },
            }
        };
        let codes = plan.codes_with(results);
        let topics = request
            .topics
            .into_iter()
            .zip(codes)
            .map(|(topic, topic_codes)| {
                let partitions = topic
                    .partitions
                    .iter()
                    .zip(topic_codes)
                    .map(|(p, code)| {
                        TxnOffsetCommitResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(code)
                    })
                    .collect();
                TxnOffsetCommitResponseTopic::default()
                    .with_name(topic.name)
                    .with_partitions(partitions)
            })
            .collect();
        TxnOffsetCommitResponse::default().with_topics(topics)
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{GroupId, ProducerId, TopicName, TransactionalId};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::*;
    use crate::handlers::support::shape::check;

    #[test]
    fn the_declared_shape_matches_the_wire_and_every_response_encodes() {
        let s = |v: &'static str| StrBytes::from_static_str(v);
        for version in TxnOffsetCommitHandler::MIN_VERSION..=TxnOffsetCommitHandler::MAX_VERSION {
            let mut request = TxnOffsetCommitRequest::default()
                .with_transactional_id(TransactionalId(s("tx")))
                .with_group_id(GroupId(s("g")))
                .with_producer_id(ProducerId(3))
                .with_producer_epoch(1)
                .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                    .with_name(TopicName(s("t")))
                    .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(2)
                        .with_committed_offset(7)
                        .with_committed_leader_epoch(if version >= 2 { 4 } else { -1 })
                        .with_committed_metadata(Some(s("m")))])]);
            if version >= 3 {
                request = request
                    .with_generation_id(5)
                    .with_member_id(s("member"))
                    .with_group_instance_id(Some(s("instance")));
            }
            let mut body = bytes::BytesMut::new();
            request.encode(&mut body, version).expect("encode");
            let shape = TxnOffsetCommitHandler::REQUEST_SHAPE;
            assert_eq!(check(&shape, version, &body), Ok(()), "v{version}");
            assert!(check(&shape, version, &body[..body.len() - 1]).is_err());
            let response = TxnOffsetCommitResponse::default().with_topics(vec![
                TxnOffsetCommitResponseTopic::default()
                    .with_name(TopicName(s("t")))
                    .with_partitions(vec![TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(2)
                        .with_error_code(ResponseError::InvalidTxnState.code())]),
            ]);
            let mut buf = bytes::BytesMut::new();
            response.encode(&mut buf, version).expect("encode response");
        }
    }
}
