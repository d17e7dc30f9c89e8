//! InitProducerId (key 22, v0–v5): gives an idempotent producer its
//! producer id and epoch.
//!
//! In: a transactional id (null for an idempotent producer), a transaction
//! timeout and, from v3, the producer's current id and epoch (-1/-1 for a
//! new producer; KIP-360). Out: a producer id and epoch, or an error code.
//!
//! Without a transactional id, as Kafka's transaction coordinator does, a
//! producer always gets a new id from the broker's block (see
//! [`crate::producer_ids`]) and epoch 0, whatever id and epoch it sends:
//! an idempotent producer bumps its epoch itself (KIP-360) and the
//! partition logs accept a new epoch starting at sequence 0. While no
//! block can be had from the controller the answer is the retriable
//! COORDINATOR_LOAD_IN_PROGRESS.
//!
//! With a transactional id the id's transaction coordinator answers
//! ([`crate::txn::ops::init`]): a new id gets a producer id at epoch 0; a
//! known one its epoch bumped (a new producer id once the epoch runs out),
//! fencing older producers of the id, after aborting the transaction they
//! left open (its markers written). A transaction still being committed or
//! aborted is CONCURRENT_TRANSACTIONS; a timeout above
//! `transaction.max.timeout.ms` (or below 1) INVALID_TRANSACTION_TIMEOUT;
//! from v3, a producer id and epoch that are not the id's current ones
//! PRODUCER_FENCED (INVALID_PRODUCER_EPOCH below v4, as Kafka answers
//! clients before KIP-588); NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS
//! from a broker that does not (yet) coordinate the id. An id and epoch of
//! which only one is -1, or an empty transactional id, is INVALID_REQUEST.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId, RequestHeader,
};

use super::support::transactions::{check_transactional_id, error_code};
use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Kind, Shape};
use crate::lifecycle::BrokerState;
use crate::txn::ops;

/// Serves InitProducerId.
pub struct InitProducerIdHandler;

impl Handler for InitProducerIdHandler {
    const API_KEY: ApiKey = ApiKey::InitProducerId;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 5;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 2,
        fields: &[
            field(0, i16::MAX, Kind::String),
            field(0, i16::MAX, Kind::Int32),
            field(3, i16::MAX, Kind::Int64),
            field(3, i16::MAX, Kind::Int16),
        ],
    };
    type Request = InitProducerIdRequest;
    type Response = InitProducerIdResponse;

    fn failed(response: &InitProducerIdResponse) -> bool {
        response.error_code != 0
    }

    async fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: InitProducerIdRequest,
    ) -> InitProducerIdResponse {
        match init(ctx, &request).await {
            Ok((producer_id, epoch)) => response(0)
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(epoch),
            Err(error) => response(error_code(error, header.request_api_version, 4)),
        }
    }
}

fn response(code: i16) -> InitProducerIdResponse {
    InitProducerIdResponse::default()
        .with_error_code(code)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

async fn init(
    ctx: &BrokerContext,
    request: &InitProducerIdRequest,
) -> Result<(i64, i16), ResponseError> {
    if (request.producer_id.0 == -1) != (request.producer_epoch == -1) {
        return Err(ResponseError::InvalidRequest);
    }
    let Some(id) = &request.transactional_id else {
        return Ok((new_producer_id(ctx).await?, 0));
    };
    check_transactional_id(id)?;
    let expected =
        (request.producer_id.0 != -1).then_some((request.producer_id.0, request.producer_epoch));
    ops::init(
        &ctx.transactions,
        id,
        request.transaction_timeout_ms,
        expected,
        || new_producer_id(ctx),
    )
    .await
}

/// A producer id from this broker's block.
async fn new_producer_id(ctx: &BrokerContext) -> Result<i64, ResponseError> {
    let epoch = match *ctx.state.borrow() {
        BrokerState::Fenced { epoch }
        | BrokerState::Running { epoch }
        | BrokerState::ShuttingDown { epoch } => Some(epoch),
        _ => None,
    };
    ctx.producer_ids
        .generate(
            &ctx.controller,
            ctx.node_id,
            epoch,
            ctx.config.write_timeout,
        )
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "InitProducerId: no producer id");
            ResponseError::CoordinatorLoadInProgress
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::TransactionalId;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use crate::handlers::support::shape::check;

    #[test]
    fn the_declared_shape_matches_the_wire() {
        for version in InitProducerIdHandler::MIN_VERSION..=InitProducerIdHandler::MAX_VERSION {
            let request = InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("tx"))))
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(if version >= 3 { 5 } else { -1 }))
                .with_producer_epoch(if version >= 3 { 2 } else { -1 });
            let mut body = bytes::BytesMut::new();
            request.encode(&mut body, version).unwrap();
            let shape = InitProducerIdHandler::REQUEST_SHAPE;
            assert_eq!(check(&shape, version, &body), Ok(()), "v{version}");
            assert!(
                check(&shape, version, &body[..body.len() - 1]).is_err(),
                "v{version}"
            );
        }
    }

    #[test]
    fn responses_encode_at_every_served_version() {
        for version in InitProducerIdHandler::MIN_VERSION..=InitProducerIdHandler::MAX_VERSION {
            let mut buf = bytes::BytesMut::new();
            response(0)
                .with_producer_id(ProducerId(7))
                .encode(&mut buf, version)
                .unwrap_or_else(|e| panic!("InitProducerId v{version}: {e}"));
        }
    }
}
