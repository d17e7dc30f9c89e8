//! SyncGroup (key 14, v0–v5): after a rebalance's JoinGroup, each member
//! asks for its assignment; the leader brings everyone's.
//!
//! In: group id, generation, member id, `group.instance.id` (v3+),
//! protocol type and name (v5+, checked against the group's) and, from
//! the leader, one assignment per member. The leader's assignment is
//! written to `__consumer_offsets` and every parked SyncGroup of the
//! generation is answered once it is replicated. Out: the member's
//! assignment, or UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
//! REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID, INCONSISTENT_GROUP_PROTOCOL,
//! NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestHeader, SyncGroupRequest, SyncGroupResponse};

use super::support::groups::{shard, strb};
use super::Handler;
use crate::context::BrokerContext;
use crate::group::{SyncRequest, SyncResult};
use crate::handlers::support::shape::{field, Field, Kind, Shape};

const ASSIGNMENT: &[Field] = &[
    field(0, i16::MAX, Kind::String),
    field(0, i16::MAX, Kind::Bytes),
];

/// Serves SyncGroup.
pub struct SyncGroupHandler;

impl Handler for SyncGroupHandler {
    const API_KEY: ApiKey = ApiKey::SyncGroup;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 5;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 4,
        fields: &[
            field(0, i16::MAX, Kind::String),
            field(0, i16::MAX, Kind::Int32),
            field(0, i16::MAX, Kind::String),
            field(3, i16::MAX, Kind::String),
            field(5, i16::MAX, Kind::String),
            field(5, i16::MAX, Kind::String),
            field(0, i16::MAX, Kind::StructArray(ASSIGNMENT)),
        ],
    };
    type Request = SyncGroupRequest;
    type Response = SyncGroupResponse;

    async fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: SyncGroupRequest,
    ) -> SyncGroupResponse {
        let version = header.request_api_version;
        let group = request.group_id.0.to_string();
        let result = match shard(ctx, &group) {
            Err(code) => SyncResult::error(code),
            Ok(shard) => {
                let req = SyncRequest {
                    member_id: request.member_id.to_string(),
                    group_instance_id: request.group_instance_id.as_ref().map(|i| i.to_string()),
                    generation_id: request.generation_id,
                    protocol_type: request.protocol_type.as_ref().map(|t| t.to_string()),
                    protocol_name: request.protocol_name.as_ref().map(|n| n.to_string()),
                    assignments: request
                        .assignments
                        .iter()
                        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
                        .collect(),
                };
                shard
                    .sync(&group, req)
                    .await
                    .unwrap_or_else(|_| SyncResult::error(ResponseError::NotCoordinator.code()))
            }
        };
        tracing::debug!(%group, version, member = %request.member_id.as_str(), generation = request.generation_id, error = result.error, assignment = result.assignment.len(), "SyncGroup answered");
        response(result, version)
    }
}

fn response(result: SyncResult, version: i16) -> SyncGroupResponse {
    let mut response = SyncGroupResponse::default()
        .with_error_code(result.error)
        .with_assignment(result.assignment);
    if version >= 5 {
        response = response
            .with_protocol_type(result.protocol_type.map(strb))
            .with_protocol_name(result.protocol_name.map(strb));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn responses_encode_at_every_served_version() {
        for version in SyncGroupHandler::MIN_VERSION..=SyncGroupHandler::MAX_VERSION {
            let result = SyncResult {
                error: 0,
                protocol_type: Some("consumer".into()),
                protocol_name: Some("range".into()),
                assignment: bytes::Bytes::from_static(b"a"),
            };
            let mut buf = bytes::BytesMut::new();
            response(result, version)
                .encode(&mut buf, version)
                .unwrap_or_else(|e| panic!("SyncGroup v{version}: {e}"));
        }
    }
}
