//! EndTxn (key 26, v0–v4): a transactional producer commits or aborts its
//! transaction.
//!
//! In: the transactional id, producer id and epoch, and commit or abort.
//! Out: an error code, once PrepareCommit or PrepareAbort is stored in
//! `__transaction_state` and replicated; the coordinator then writes the
//! markers to every partition of the transaction and stores
//! CompleteCommit or CompleteAbort on its own ([`crate::txn::ops::end`]).
//! A retried EndTxn of a transaction that already ended the same way
//! succeeds. Errors as Kafka's: NOT_COORDINATOR,
//! COORDINATOR_LOAD_IN_PROGRESS, INVALID_PRODUCER_ID_MAPPING,
//! PRODUCER_FENCED (INVALID_PRODUCER_EPOCH below v2),
//! CONCURRENT_TRANSACTIONS, INVALID_TXN_STATE; an empty transactional id
//! is INVALID_REQUEST.

use kafka_protocol::messages::{ApiKey, EndTxnRequest, EndTxnResponse, RequestHeader};

use super::support::transactions::{check_transactional_id, error_code};
use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Kind, Shape};
use crate::txn::ops;

/// Serves EndTxn.
pub struct EndTxnHandler;

impl Handler for EndTxnHandler {
    const API_KEY: ApiKey = ApiKey::EndTxn;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 4;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 3,
        fields: &[
            field(0, i16::MAX, Kind::String),
            field(0, i16::MAX, Kind::Int64),
            field(0, i16::MAX, Kind::Int16),
            field(0, i16::MAX, Kind::Bool),
        ],
    };
    type Request = EndTxnRequest;
    type Response = EndTxnResponse;

    async fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: EndTxnRequest,
    ) -> EndTxnResponse {
        let outcome = match check_transactional_id(&request.transactional_id) {
            Ok(()) => {
                ops::end(
                    &ctx.transactions,
                    &request.transactional_id,
                    request.producer_id.0,
                    request.producer_epoch,
                    request.committed,
                )
                .await
            }
            Err(e) => Err(e),
        };
        let code = match outcome {
            Ok(()) => 0,
            Err(e) => error_code(e, header.request_api_version, 2),
        };
        EndTxnResponse::default().with_error_code(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ProducerId, TransactionalId};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use crate::handlers::support::shape::check;

    #[test]
    fn the_declared_shape_matches_the_wire() {
        for version in EndTxnHandler::MIN_VERSION..=EndTxnHandler::MAX_VERSION {
            let request = EndTxnRequest::default()
                .with_transactional_id(TransactionalId(StrBytes::from_static_str("tx")))
                .with_producer_id(ProducerId(5))
                .with_producer_epoch(1)
                .with_committed(true);
            let mut body = bytes::BytesMut::new();
            request.encode(&mut body, version).unwrap();
            let shape = EndTxnHandler::REQUEST_SHAPE;
            assert_eq!(check(&shape, version, &body), Ok(()), "v{version}");
            assert!(check(&shape, version, &body[..body.len() - 1]).is_err());
            let mut buf = bytes::BytesMut::new();
            EndTxnResponse::default()
                .with_error_code(1)
                .encode(&mut buf, version)
                .unwrap();
        }
    }
}
