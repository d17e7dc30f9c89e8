//! FindCoordinator (key 10, v0–v6): which broker coordinates a group.
//!
//! In: a key (v0–v3) or a batch of keys (v4+) and the key type (v1+):
//! 0 for a group, 1 for a transactional id. Out: per key the coordinator's
//! node id, host and port on this listener — the leader of the group's
//! `__consumer_offsets` partition, or of the transactional id's
//! `__transaction_state` partition — or an error code.
//!
//! The first request for a group creates `__consumer_offsets` (see
//! [`ensure_offsets_topic`]), the first for a transactional id
//! `__transaction_state` ([`ensure_transaction_state_topic`]); until the
//! topic exists with a live leader for the key's partition the answer is
//! COORDINATOR_NOT_AVAILABLE, which clients retry. An unknown key type is
//! INVALID_REQUEST.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{
    ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, RequestHeader,
};

use super::support::groups::{ensure_offsets_topic, strb};
use super::support::internal_topics::ensure_transaction_state_topic;
use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Kind, Shape};
use crate::metadata_cache::CacheQueries;
use kraft_metadata::{CONSUMER_OFFSETS, TRANSACTION_STATE};

const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;

/// Serves FindCoordinator.
pub struct FindCoordinatorHandler;

impl Handler for FindCoordinatorHandler {
    const API_KEY: ApiKey = ApiKey::FindCoordinator;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 6;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 3,
        fields: &[
            field(0, 3, Kind::String),
            field(1, i16::MAX, Kind::Int8),
            field(4, i16::MAX, Kind::StringArray),
        ],
    };
    type Request = FindCoordinatorRequest;
    type Response = FindCoordinatorResponse;

    async fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: FindCoordinatorRequest,
    ) -> FindCoordinatorResponse {
        let version = header.request_api_version;
        let keys: Vec<String> = if version >= 4 {
            request
                .coordinator_keys
                .iter()
                .map(|k| k.to_string())
                .collect()
        } else {
            vec![request.key.to_string()]
        };
        let mut coordinators = Vec::with_capacity(keys.len());
        for key in keys {
            coordinators.push(find(ctx, request.key_type, &key).await);
        }
        if version >= 4 {
            return FindCoordinatorResponse::default().with_coordinators(coordinators);
        }
        let c = coordinators.pop().unwrap_or_default();
        let mut response = FindCoordinatorResponse::default()
            .with_error_code(c.error_code)
            .with_node_id(c.node_id)
            .with_host(c.host)
            .with_port(c.port);
        if version >= 1 {
            response = response.with_error_message(c.error_message);
        }
        response
    }
}

/// The coordinator of one key.
async fn find(ctx: &BrokerContext, key_type: i8, key: &str) -> Coordinator {
    let failed = |code: i16, message: String| {
        Coordinator::default()
            .with_key(strb(key))
            .with_node_id(BrokerId(-1))
            .with_host(strb(""))
            .with_port(-1)
            .with_error_code(code)
            .with_error_message(Some(strb(message)))
    };
    let (topic, partition, created) = match key_type {
        GROUP_KEY => (
            CONSUMER_OFFSETS,
            ctx.groups.partition_for(key),
            ensure_offsets_topic(ctx).await,
        ),
        TRANSACTION_KEY => (
            TRANSACTION_STATE,
            ctx.transactions.partition_for(key),
            ensure_transaction_state_topic(ctx).await,
        ),
        other => {
            return failed(
                ResponseError::InvalidRequest.code(),
                format!("unknown coordinator key type {other}"),
            )
        }
    };
    if let Err((code, message)) = created {
        return failed(code, message);
    }
    let image = ctx.cache.image();
    let leader = image
        .partitions_of(topic)
        .and_then(|ps| ps.into_iter().find(|(p, _)| *p == partition))
        .map(|(_, registration)| registration.leader)
        .filter(|leader| *leader >= 0 && image.is_broker_alive(*leader));
    let endpoint = leader.and_then(|id| {
        image
            .broker_endpoint(id, &ctx.listener_name)
            .map(|e| (id, e.host.clone(), e.port))
    });
    match endpoint {
        Some((id, host, port)) => Coordinator::default()
            .with_key(strb(key))
            .with_node_id(BrokerId(id))
            .with_host(strb(host))
            .with_port(i32::from(port))
            .with_error_code(0)
            .with_error_message(None),
        None => failed(
            ResponseError::CoordinatorNotAvailable.code(),
            format!("{topic}-{partition} has no live leader"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn responses_encode_at_every_served_version() {
        for version in FindCoordinatorHandler::MIN_VERSION..=FindCoordinatorHandler::MAX_VERSION {
            let c = Coordinator::default()
                .with_key(strb("g"))
                .with_node_id(BrokerId(1))
                .with_host(strb("h"))
                .with_port(9092)
                .with_error_message(Some(strb("m")));
            let response = if version >= 4 {
                FindCoordinatorResponse::default().with_coordinators(vec![c])
            } else {
                let r = FindCoordinatorResponse::default()
                    .with_node_id(c.node_id)
                    .with_host(c.host)
                    .with_port(c.port);
                if version >= 1 {
                    r.with_error_message(c.error_message)
                } else {
                    r
                }
            };
            let mut buf = bytes::BytesMut::new();
            response
                .encode(&mut buf, version)
                .unwrap_or_else(|e| panic!("FindCoordinator v{version}: {e}"));
        }
    }
}
