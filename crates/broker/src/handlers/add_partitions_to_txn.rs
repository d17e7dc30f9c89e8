//! AddPartitionsToTxn (key 24, v0–v5): a transactional producer names the
//! partitions it is about to write in its transaction (v0–v3, the client
//! path); from v4 (KIP-890, broker to coordinator; v5 only adds an error
//! code, TRANSACTION_ABORTABLE, that Kraft never needs to send) a batch of
//! transactions, each either added the same way or, with `verify_only`,
//! only checked: a partition leader asks before it appends a transaction's
//! first batch (`crate::txn::verify`), and a partition not in the ongoing
//! transaction is INVALID_TXN_STATE.
//!
//! In: the transactional id, producer id and epoch, and topics with
//! partitions (per transaction from v4). Out: per partition an error code. Every partition must
//! exist (else UNKNOWN_TOPIC_OR_PARTITION, and the others
//! OPERATION_NOT_ATTEMPTED, as Kafka answers); then they join the
//! transaction, which opens if none was ([`crate::txn::ops::add_partitions`]),
//! stored in `__transaction_state` and replicated before the answer. A
//! coordinator error is every partition's code: NOT_COORDINATOR,
//! COORDINATOR_LOAD_IN_PROGRESS, INVALID_PRODUCER_ID_MAPPING,
//! PRODUCER_FENCED (INVALID_PRODUCER_EPOCH below v2),
//! CONCURRENT_TRANSACTIONS, INVALID_TXN_STATE; an empty transactional id
//! is INVALID_REQUEST.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, RequestHeader,
};

use super::support::transactions::{check_transactional_id, error_code};
use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Field, Kind, Shape};
use crate::metadata_cache::CacheQueries;
use crate::txn::ops;

const TOPIC: &[Field] = &[
    field(0, i16::MAX, Kind::String),
    field(0, i16::MAX, Kind::Int32Array),
];

const TRANSACTION: &[Field] = &[
    field(4, i16::MAX, Kind::String),
    field(4, i16::MAX, Kind::Int64),
    field(4, i16::MAX, Kind::Int16),
    field(4, i16::MAX, Kind::Bool),
    field(4, i16::MAX, Kind::StructArray(TOPIC)),
];

/// Serves AddPartitionsToTxn.
pub struct AddPartitionsToTxnHandler;

impl Handler for AddPartitionsToTxnHandler {
    const API_KEY: ApiKey = ApiKey::AddPartitionsToTxn;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 5;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 3,
        fields: &[
            field(4, i16::MAX, Kind::StructArray(TRANSACTION)),
            field(0, 3, Kind::String),
            field(0, 3, Kind::Int64),
            field(0, 3, Kind::Int16),
            field(0, 3, Kind::StructArray(TOPIC)),
        ],
    };
    type Request = AddPartitionsToTxnRequest;
    type Response = AddPartitionsToTxnResponse;

    async fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: AddPartitionsToTxnRequest,
    ) -> AddPartitionsToTxnResponse {
        let version = header.request_api_version;
        if version <= 3 {
            let results = answer(
                ctx,
                version,
                Transaction {
                    id: &request.v3_and_below_transactional_id,
                    producer_id: request.v3_and_below_producer_id.0,
                    epoch: request.v3_and_below_producer_epoch,
                    verify_only: false,
                    topics: &request.v3_and_below_topics,
                },
            )
            .await;
            return AddPartitionsToTxnResponse::default()
                .with_results_by_topic_v3_and_below(results);
        }
        let mut results = Vec::with_capacity(request.transactions.len());
        for t in &request.transactions {
            let topic_results = answer(
                ctx,
                version,
                Transaction {
                    id: &t.transactional_id,
                    producer_id: t.producer_id.0,
                    epoch: t.producer_epoch,
                    verify_only: t.verify_only,
                    topics: &t.topics,
                },
            )
            .await;
            results.push(
                AddPartitionsToTxnResult::default()
                    .with_transactional_id(t.transactional_id.clone())
                    .with_topic_results(topic_results),
            );
        }
        AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
    }
}

/// One transaction of a request.
struct Transaction<'a> {
    id: &'a str,
    producer_id: i64,
    epoch: i16,
    verify_only: bool,
    topics: &'a [AddPartitionsToTxnTopic],
}

/// Adds (or, `verify_only`, checks) one transaction's partitions; the
/// results by topic.
async fn answer(
    ctx: &BrokerContext,
    version: i16,
    txn: Transaction<'_>,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let image = ctx.cache.image();
    let exists = |topic: &str, partition: i32| {
        image
            .partitions_of(topic)
            .is_some_and(|ps| ps.iter().any(|(p, _)| *p == partition))
    };
    let mut partitions = Vec::new();
    let mut unknown = false;
    for topic in txn.topics {
        for &p in &topic.partitions {
            // A check answers from the transaction's state alone: a
            // partition this broker's cache has not seen yet (an offsets
            // partition just created, say) may still be in it.
            unknown |= !txn.verify_only && !exists(&topic.name, p);
            partitions.push((topic.name.to_string(), p));
        }
    }
    // Per partition in request order: its code.
    let codes: Vec<i16> = if unknown {
        partitions
            .iter()
            .map(|(t, p)| {
                if exists(t, *p) {
                    ResponseError::OperationNotAttempted.code()
                } else {
                    ResponseError::UnknownTopicOrPartition.code()
                }
            })
            .collect()
    } else {
        let outcome = match check_transactional_id(txn.id) {
            Err(e) => Err(e),
            Ok(()) if txn.verify_only => ops::verify_partitions(
                &ctx.transactions,
                txn.id,
                txn.producer_id,
                txn.epoch,
                &partitions,
            ),
            Ok(()) => ops::add_partitions(
                &ctx.transactions,
                txn.id,
                txn.producer_id,
                txn.epoch,
                &partitions,
            )
            .await
            .map(|()| vec![0; partitions.len()]),
        };
        match outcome {
            Ok(codes) => codes,
            Err(e) => vec![error_code(e, version, 2); partitions.len()],
        }
    };
    let mut codes = codes.into_iter();
    txn.topics
        .iter()
        .map(|topic| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(topic.name.clone())
                .with_results_by_partition(
                    topic
                        .partitions
                        .iter()
                        .map(|&p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(p)
                                .with_partition_error_code(codes.next().unwrap_or(0))
                        })
                        .collect(),
                )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTransaction;
    use kafka_protocol::messages::{ProducerId, TopicName, TransactionalId};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use crate::handlers::support::shape::check;

    #[test]
    fn the_declared_shape_matches_the_wire() {
        let max = AddPartitionsToTxnHandler::MAX_VERSION;
        for version in AddPartitionsToTxnHandler::MIN_VERSION..=max {
            let topics = vec![AddPartitionsToTxnTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![0, 3])];
            let request = if version >= 4 {
                AddPartitionsToTxnRequest::default().with_transactions(vec![
                    AddPartitionsToTxnTransaction::default()
                        .with_transactional_id(TransactionalId(StrBytes::from_static_str("tx")))
                        .with_producer_id(ProducerId(5))
                        .with_producer_epoch(1)
                        .with_verify_only(true)
                        .with_topics(topics),
                ])
            } else {
                AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(TransactionalId(StrBytes::from_static_str(
                        "tx",
                    )))
                    .with_v3_and_below_producer_id(ProducerId(5))
                    .with_v3_and_below_producer_epoch(1)
                    .with_v3_and_below_topics(topics)
            };
            let mut body = bytes::BytesMut::new();
            request.encode(&mut body, version).unwrap();
            let shape = AddPartitionsToTxnHandler::REQUEST_SHAPE;
            assert_eq!(check(&shape, version, &body), Ok(()), "v{version}");
            assert!(check(&shape, version, &body[..body.len() - 1]).is_err());
            let results = vec![AddPartitionsToTxnTopicResult::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_results_by_partition(vec![AddPartitionsToTxnPartitionResult::default()
                    .with_partition_index(0)
                    .with_partition_error_code(1)])];
            let response = if version >= 4 {
                AddPartitionsToTxnResponse::default().with_results_by_transaction(vec![
                    AddPartitionsToTxnResult::default()
                        .with_transactional_id(TransactionalId(StrBytes::from_static_str("tx")))
                        .with_topic_results(results),
                ])
            } else {
                AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
            };
            let mut buf = bytes::BytesMut::new();
            response.encode(&mut buf, version).unwrap();
        }
    }
}
