//! DescribeTransactions (key 65, v0): the state of transactional ids this
//! broker coordinates (`kafka-transactions.sh describe`).
//!
//! In: transactional ids. Out: per id its state as Kafka names it
//! (Empty, Ongoing, PrepareCommit, CompleteCommit, ...), timeout, start
//! time (-1 without an open transaction), producer id and epoch, and the
//! partitions in its transaction; or an error code: NOT_COORDINATOR or
//! COORDINATOR_LOAD_IN_PROGRESS from a broker that does not (yet)
//! coordinate the id, TRANSACTIONAL_ID_NOT_FOUND for an id without state,
//! INVALID_REQUEST for an empty id. Read from the coordinator's memory
//! ([`crate::txn`]); nothing is written.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    ApiKey, DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, RequestHeader,
    TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use super::support::transactions::check_transactional_id;
use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Kind, Shape};

/// Serves DescribeTransactions.
pub struct DescribeTransactionsHandler;

impl Handler for DescribeTransactionsHandler {
    const API_KEY: ApiKey = ApiKey::DescribeTransactions;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 0;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 0,
        fields: &[field(0, i16::MAX, Kind::StringArray)],
    };
    type Request = DescribeTransactionsRequest;
    type Response = DescribeTransactionsResponse;

    async fn handle(
        ctx: &BrokerContext,
        _header: &RequestHeader,
        request: DescribeTransactionsRequest,
    ) -> DescribeTransactionsResponse {
        let states = request
            .transactional_ids
            .iter()
            .map(|id| describe(ctx, id))
            .collect();
        DescribeTransactionsResponse::default().with_transaction_states(states)
    }
}

fn describe(ctx: &BrokerContext, id: &TransactionalId) -> TransactionState {
    let failed = |e: ResponseError| {
        TransactionState::default()
            .with_transactional_id(id.clone())
            .with_error_code(e.code())
            .with_transaction_state(StrBytes::from_static_str(""))
            .with_transaction_start_time_ms(-1)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if let Err(e) = check_transactional_id(id) {
        return failed(e);
    }
    let shard = match ctx.transactions.shard_for(id) {
        Ok(shard) => shard,
        Err(e) => return failed(e),
    };
    let Some(m) = shard.get(id) else {
        return failed(ResponseError::TransactionalIdNotFound);
    };
    let value = m.to_value();
    TransactionState::default()
        .with_transactional_id(id.clone())
        .with_error_code(0)
        .with_transaction_state(StrBytes::from_static_str(value.state.name()))
        .with_transaction_timeout_ms(value.timeout_ms)
        .with_transaction_start_time_ms(value.start_ms)
        .with_producer_id(ProducerId(value.producer_id))
        .with_producer_epoch(value.producer_epoch)
        .with_topics(
            value
                .partitions
                .into_iter()
                .map(|(topic, partitions)| {
                    TopicData::default()
                        .with_topic(TopicName(StrBytes::from_string(topic)))
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Encodable;

    use crate::handlers::support::shape::check;

    #[test]
    fn requests_and_responses_fit_the_wire() {
        let request = DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(StrBytes::from_static_str("tx"))]);
        let mut body = bytes::BytesMut::new();
        request.encode(&mut body, 0).unwrap();
        let shape = DescribeTransactionsHandler::REQUEST_SHAPE;
        assert_eq!(check(&shape, 0, &body), Ok(()));
        assert!(check(&shape, 0, &body[..body.len() - 1]).is_err());
        let response = DescribeTransactionsResponse::default().with_transaction_states(vec![
            TransactionState::default()
                .with_transactional_id(TransactionalId(StrBytes::from_static_str("tx")))
                .with_transaction_state(StrBytes::from_static_str("Ongoing"))
                .with_topics(vec![TopicData::default()
                    .with_topic(TopicName(StrBytes::from_static_str("t")))
                    .with_partitions(vec![0, 1])]),
        ]);
        let mut buf = bytes::BytesMut::new();
        response.encode(&mut buf, 0).unwrap();
    }
}
