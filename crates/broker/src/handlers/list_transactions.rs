//! ListTransactions (key 66, v0–v1): the transactional ids this broker
//! coordinates (`kafka-transactions.sh list` asks every broker).
//!
//! In: state filters (Kafka's names; empty: any), producer id filters
//! (empty: any) and, from v1, a duration filter (only transactions open
//! longer than that many ms; -1: any). Out: each matching id with its
//! producer id and state, the state filters that name no state, and
//! COORDINATOR_LOAD_IN_PROGRESS while one of this broker's
//! `__transaction_state` partitions is still loading. Read from the
//! coordinator's memory ([`crate::txn`]); nothing is written.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ApiKey, ListTransactionsRequest, ListTransactionsResponse, ProducerId, RequestHeader,
    TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Kind, Shape};
use crate::replica::now_ms;
use crate::txn::records::TxnState;

const STATES: [TxnState; 8] = [
    TxnState::Empty,
    TxnState::Ongoing,
    TxnState::PrepareCommit,
    TxnState::PrepareAbort,
    TxnState::CompleteCommit,
    TxnState::CompleteAbort,
    TxnState::Dead,
    TxnState::PrepareEpochFence,
];

/// Serves ListTransactions.
pub struct ListTransactionsHandler;

impl Handler for ListTransactionsHandler {
    const API_KEY: ApiKey = ApiKey::ListTransactions;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 1;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 0,
        fields: &[
            field(0, i16::MAX, Kind::StringArray),
            field(0, i16::MAX, Kind::Int64Array),
            field(1, i16::MAX, Kind::Int64),
        ],
    };
    type Request = ListTransactionsRequest;
    type Response = ListTransactionsResponse;

    async fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: ListTransactionsRequest,
    ) -> ListTransactionsResponse {
        let mut wanted = Vec::new();
        let mut unknown = Vec::new();
        for filter in &request.state_filters {
            match STATES.iter().find(|s| s.name() == filter.as_str()) {
                Some(state) => wanted.push(*state),
                None => unknown.push(filter.clone()),
            }
        }
        let duration = if header.request_api_version >= 1 {
            request.duration_filter
        } else {
            -1
        };
        let now = now_ms();
        let (shards, loading) = ctx.transactions.shards();
        let mut states = Vec::new();
        for shard in shards {
            let matching = shard.select(|m| {
                (request.state_filters.is_empty() || wanted.contains(&m.state))
                    && (request.producer_id_filters.is_empty()
                        || request
                            .producer_id_filters
                            .contains(&ProducerId(m.producer_id)))
                    && (duration < 0 || (m.start_ms >= 0 && now - m.start_ms >= duration))
            });
            states.extend(matching.into_iter().map(|(id, m)| {
                TransactionState::default()
                    .with_transactional_id(TransactionalId(StrBytes::from_string(id)))
                    .with_producer_id(ProducerId(m.producer_id))
                    .with_transaction_state(StrBytes::from_static_str(m.state.name()))
            }));
        }
        let code = if loading {
            ResponseError::CoordinatorLoadInProgress.code()
        } else {
            0
        };
        ListTransactionsResponse::default()
            .with_error_code(code)
            .with_unknown_state_filters(unknown)
            .with_transaction_states(states)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Encodable;

    use crate::handlers::support::shape::check;

    #[test]
    fn requests_and_responses_fit_the_wire() {
        for version in 0..=1 {
            let request = ListTransactionsRequest::default()
                .with_state_filters(vec![StrBytes::from_static_str("Ongoing")])
                .with_producer_id_filters(vec![ProducerId(3), ProducerId(4)])
                .with_duration_filter(if version >= 1 { 10 } else { -1 });
            let mut body = bytes::BytesMut::new();
            request.encode(&mut body, version).unwrap();
            let shape = ListTransactionsHandler::REQUEST_SHAPE;
            assert_eq!(check(&shape, version, &body), Ok(()), "v{version}");
            assert!(check(&shape, version, &body[..body.len() - 1]).is_err());
            let response = ListTransactionsResponse::default()
                .with_unknown_state_filters(vec![StrBytes::from_static_str("x")])
                .with_transaction_states(vec![TransactionState::default()
                    .with_transactional_id(TransactionalId(StrBytes::from_static_str("t")))
                    .with_transaction_state(StrBytes::from_static_str("Ongoing"))]);
            let mut buf = bytes::BytesMut::new();
            response.encode(&mut buf, version).unwrap();
        }
    }
}
