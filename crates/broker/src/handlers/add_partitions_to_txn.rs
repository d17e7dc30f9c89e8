//! AddPartitionsToTxn (key 24, v0–v3): a transactional producer names the
//! partitions it is about to write in its transaction (the client path;
//! KIP-890's batched, broker-to-coordinator v4+ is not served).
//!
//! In: the transactional id, producer id and epoch, and topics with
//! partitions. Out: per partition an error code. Every partition must
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
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
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

/// Serves AddPartitionsToTxn.
pub struct AddPartitionsToTxnHandler;

impl Handler for AddPartitionsToTxnHandler {
    const API_KEY: ApiKey = ApiKey::AddPartitionsToTxn;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 3;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 3,
        fields: &[
            field(0, i16::MAX, Kind::String),
            field(0, i16::MAX, Kind::Int64),
            field(0, i16::MAX, Kind::Int16),
            field(0, i16::MAX, Kind::StructArray(TOPIC)),
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
        let image = ctx.cache.image();
        let exists = |topic: &str, partition: i32| {
            image
                .partitions_of(topic)
                .is_some_and(|ps| ps.iter().any(|(p, _)| *p == partition))
        };
        let mut partitions = Vec::new();
        let mut unknown = false;
        for topic in &request.v3_and_below_topics {
            for &p in &topic.partitions {
                unknown |= !exists(&topic.name, p);
                partitions.push((topic.name.to_string(), p));
            }
        }
        let outcome = if unknown {
            None
        } else {
            Some(
                match check_transactional_id(&request.v3_and_below_transactional_id) {
                    Ok(()) => {
                        ops::add_partitions(
                            &ctx.transactions,
                            &request.v3_and_below_transactional_id,
                            request.v3_and_below_producer_id.0,
                            request.v3_and_below_producer_epoch,
                            &partitions,
                        )
                        .await
                    }
                    Err(e) => Err(e),
                },
            )
        };
        let code_of = |topic: &str, partition: i32| match &outcome {
            Some(Ok(())) => 0,
            Some(Err(e)) => error_code(*e, version, 2),
            None if exists(topic, partition) => ResponseError::OperationNotAttempted.code(),
            None => ResponseError::UnknownTopicOrPartition.code(),
        };
        let results = request
            .v3_and_below_topics
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
                                    .with_partition_error_code(code_of(&topic.name, p))
                            })
                            .collect(),
                    )
            })
            .collect();
        AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    use kafka_protocol::messages::{ProducerId, TopicName, TransactionalId};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use crate::handlers::support::shape::check;

    #[test]
    fn the_declared_shape_matches_the_wire() {
        let max = AddPartitionsToTxnHandler::MAX_VERSION;
        for version in AddPartitionsToTxnHandler::MIN_VERSION..=max {
            let request = AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(TransactionalId(StrBytes::from_static_str(
                    "tx",
                )))
                .with_v3_and_below_producer_id(ProducerId(5))
                .with_v3_and_below_producer_epoch(1)
                .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("t")))
                    .with_partitions(vec![0, 3])]);
            let mut body = bytes::BytesMut::new();
            request.encode(&mut body, version).unwrap();
            let shape = AddPartitionsToTxnHandler::REQUEST_SHAPE;
            assert_eq!(check(&shape, version, &body), Ok(()), "v{version}");
            assert!(check(&shape, version, &body[..body.len() - 1]).is_err());
            let response = AddPartitionsToTxnResponse::default()
                .with_results_by_topic_v3_and_below(vec![AddPartitionsToTxnTopicResult::default()
                    .with_name(TopicName(StrBytes::from_static_str("t")))
                    .with_results_by_partition(vec![AddPartitionsToTxnPartitionResult::default(
                    )
                    .with_partition_index(0)
                    .with_partition_error_code(1)])]);
            let mut buf = bytes::BytesMut::new();
            response.encode(&mut buf, version).unwrap();
        }
    }
}
