//! JoinGroup (key 11, v0–v9): a member joins (or rejoins) a group; the
//! answer waits until the rebalance completes, like Kafka's delayed join.
//!
//! In: group id, session and rebalance timeouts (v0 has no rebalance
//! timeout: the session timeout serves), member id (empty the first
//! time), `group.instance.id` (v5+) and the member's protocols with their
//! metadata. Out: the generation, protocol, leader, the member's id and —
//! for the leader — every member's metadata; or an error:
//! INVALID_GROUP_ID, INVALID_SESSION_TIMEOUT (outside
//! `group.min/max.session.timeout.ms`), MEMBER_ID_REQUIRED (v4+: join again
//! with the given id), UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID,
//! INCONSISTENT_GROUP_PROTOCOL, NOT_COORDINATOR,
//! COORDINATOR_LOAD_IN_PROGRESS.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{ApiKey, JoinGroupRequest, JoinGroupResponse, RequestHeader};
use uuid::Uuid;

use super::support::groups::{client_id, shard, strb};
use super::Handler;
use crate::context::BrokerContext;
use crate::group::{JoinRequest, JoinResult, Protocol};
use crate::handlers::support::shape::{field, Field, Kind, Shape};

const PROTOCOL: &[Field] = &[
    field(0, i16::MAX, Kind::String),
    field(0, i16::MAX, Kind::Bytes),
];

/// Serves JoinGroup.
pub struct JoinGroupHandler;

impl Handler for JoinGroupHandler {
    const API_KEY: ApiKey = ApiKey::JoinGroup;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 9;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 6,
        fields: &[
            field(0, i16::MAX, Kind::String),
            field(0, i16::MAX, Kind::Int32),
            field(1, i16::MAX, Kind::Int32),
            field(0, i16::MAX, Kind::String),
            field(5, i16::MAX, Kind::String),
            field(0, i16::MAX, Kind::String),
            field(0, i16::MAX, Kind::StructArray(PROTOCOL)),
            field(8, i16::MAX, Kind::String),
        ],
    };
    type Request = JoinGroupRequest;
    type Response = JoinGroupResponse;

    async fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: JoinGroupRequest,
    ) -> JoinGroupResponse {
        let version = header.request_api_version;
        let member_id = request.member_id.to_string();
        let group = request.group_id.0.to_string();
        let config = ctx.groups.config();
        let session = request.session_timeout_ms;
        let result = match shard(ctx, &group) {
            Err(code) => JoinResult::error(&member_id, code),
            Ok(_)
                if session < config.min_session_timeout_ms
                    || session > config.max_session_timeout_ms =>
            {
                JoinResult::error(&member_id, ResponseError::InvalidSessionTimeout.code())
            }
            Ok(shard) => {
                let client = client_id(header);
                let instance = request.group_instance_id.as_ref().map(|i| i.to_string());
                let prefix = instance.clone().unwrap_or_else(|| client.clone());
                let new_member_id = format!("{prefix}-{}", Uuid::new_v4());
                let req = JoinRequest {
                    member_id: member_id.clone(),
                    group_instance_id: instance,
                    client_id: client,
                    // The listener does not tell handlers the peer address.
                    client_host: String::new(),
                    session_timeout_ms: session,
                    rebalance_timeout_ms: if version >= 1 {
                        request.rebalance_timeout_ms
                    } else {
                        session
                    },
                    protocol_type: request.protocol_type.to_string(),
                    protocols: request
                        .protocols
                        .iter()
                        .map(|p| Protocol {
                            name: p.name.to_string(),
                            metadata: p.metadata.clone(),
                        })
                        .collect(),
                    require_known_member_id: version >= 4,
                };
                shard
                    .join(&group, req, &new_member_id)
                    .await
                    .unwrap_or_else(|_| {
                        JoinResult::error(&member_id, ResponseError::NotCoordinator.code())
                    })
            }
        };
        tracing::debug!(%group, version, member = %result.member_id, error = result.error, generation = result.generation_id, leader = %result.leader, members = result.members.len(), "JoinGroup answered");
        response(result, version)
    }
}

/// The response for `result` at `version` (fields a version cannot carry
/// are left at their defaults).
fn response(result: JoinResult, version: i16) -> JoinGroupResponse {
    let members = result
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(strb(m.member_id))
                .with_group_instance_id(if version >= 5 {
                    m.group_instance_id.map(strb)
                } else {
                    None
                })
                .with_metadata(m.metadata)
        })
        .collect();
    let protocol_name = match result.protocol_name {
        Some(name) => Some(strb(name)),
        None if version < 7 => Some(strb("")),
        None => None,
    };
    JoinGroupResponse::default()
        .with_error_code(result.error)
        .with_generation_id(result.generation_id)
        .with_protocol_type(if version >= 7 {
            result.protocol_type.map(strb)
        } else {
            None
        })
        .with_protocol_name(protocol_name)
        .with_leader(strb(result.leader))
        .with_skip_assignment(version >= 9 && result.skip_assignment)
        .with_member_id(strb(result.member_id))
        .with_members(members)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::member::JoinedMember;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn responses_encode_at_every_served_version() {
        for version in JoinGroupHandler::MIN_VERSION..=JoinGroupHandler::MAX_VERSION {
            for result in [
                JoinResult::error("m", ResponseError::UnknownMemberId.code()),
                JoinResult {
                    error: 0,
                    generation_id: 3,
                    protocol_type: Some("consumer".into()),
                    protocol_name: Some("range".into()),
                    leader: "m".into(),
                    member_id: "m".into(),
                    members: vec![JoinedMember {
                        member_id: "m".into(),
                        group_instance_id: Some("i".into()),
                        metadata: bytes::Bytes::from_static(b"x"),
                    }],
                    skip_assignment: true,
                },
            ] {
                let mut buf = bytes::BytesMut::new();
                response(result, version)
                    .encode(&mut buf, version)
                    .unwrap_or_else(|e| panic!("JoinGroup v{version}: {e}"));
            }
        }
    }
}
