//! AddOffsetsToTxn (key 25, v0–v4): a transactional producer says it will
//! commit a group's offsets in its transaction (`send_offsets_to_transaction`).
//!
//! In: the transactional id, producer id and epoch, and the group. Out: an
//! error code. The group's `__consumer_offsets` partition joins the
//! transaction like a partition of AddPartitionsToTxn
//! ([`crate::txn::ops::add_partitions`]), so the transaction's markers reach
//! it. Errors as Kafka's: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
//! INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED (INVALID_PRODUCER_EPOCH
//! below v2), CONCURRENT_TRANSACTIONS, INVALID_TXN_STATE; an empty
//! transactional id or group is INVALID_REQUEST.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, ApiKey, RequestHeader,
};
use kraft_metadata::CONSUMER_OFFSETS;

use super::support::transactions::{check_transactional_id, error_code};
use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Kind, Shape};
use crate::txn::ops;

/// Serves AddOffsetsToTxn.
pub struct AddOffsetsToTxnHandler;

impl Handler for AddOffsetsToTxnHandler {
    const API_KEY: ApiKey = ApiKey::AddOffsetsToTxn;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 4;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 3,
        fields: &[
            field(0, i16::MAX, Kind::String),
            field(0, i16::MAX, Kind::Int64),
            field(0, i16::MAX, Kind::Int16),
            field(0, i16::MAX, Kind::String),
        ],
    };
    type Request = AddOffsetsToTxnRequest;
    type Response = AddOffsetsToTxnResponse;

    async fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: AddOffsetsToTxnRequest,
    ) -> AddOffsetsToTxnResponse {
        let code = match add(ctx, &request).await {
            Ok(()) => 0,
            Err(e) => error_code(e, header.request_api_version, 2),
        };
        AddOffsetsToTxnResponse::default().with_error_code(code)
    }
}

async fn add(ctx: &BrokerContext, request: &AddOffsetsToTxnRequest) -> Result<(), ResponseError> {
    check_transactional_id(&request.transactional_id)?;
    if request.group_id.is_empty() {
        return Err(ResponseError::InvalidRequest);
    }
    let partition = ctx.groups.partition_for(&request.group_id);
    ops::add_partitions(
        &ctx.transactions,
        &request.transactional_id,
        request.producer_id.0,
        request.producer_epoch,
        &[(CONSUMER_OFFSETS.to_string(), partition)],
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{GroupId, ProducerId, TransactionalId};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use crate::handlers::support::shape::check;

    #[test]
    fn the_declared_shape_matches_the_wire() {
        for version in AddOffsetsToTxnHandler::MIN_VERSION..=AddOffsetsToTxnHandler::MAX_VERSION {
            let request = AddOffsetsToTxnRequest::default()
                .with_transactional_id(TransactionalId(StrBytes::from_static_str("tx")))
                .with_producer_id(ProducerId(5))
                .with_producer_epoch(1)
                .with_group_id(GroupId(StrBytes::from_static_str("g")));
            let mut body = bytes::BytesMut::new();
            request.encode(&mut body, version).unwrap();
            let shape = AddOffsetsToTxnHandler::REQUEST_SHAPE;
            assert_eq!(check(&shape, version, &body), Ok(()), "v{version}");
            assert!(check(&shape, version, &body[..body.len() - 1]).is_err());
            let mut buf = bytes::BytesMut::new();
            AddOffsetsToTxnResponse::default()
                .with_error_code(1)
                .encode(&mut buf, version)
                .unwrap();
        }
    }
}
