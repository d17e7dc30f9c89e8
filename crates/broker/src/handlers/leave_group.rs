//! LeaveGroup (key 13, v0–v5): members leave a group, which then
//! rebalances without them.
//!
//! In: group id and one member id (v0–v2), or a batch of members by
//! member id and/or `group.instance.id` (v3+; an admin removes a static
//! member by instance id alone). Out: a top-level error code (the
//! coordinator's, or for v0–v2 the member's) and, from v3, one code per
//! member: NONE, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID.

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{ApiKey, LeaveGroupRequest, LeaveGroupResponse, RequestHeader};

use super::support::groups::{shard, strb};
use super::Handler;
use crate::context::BrokerContext;
use crate::group::MemberRef;
use crate::handlers::support::shape::{field, Field, Kind, Shape};

const MEMBER: &[Field] = &[
    field(3, i16::MAX, Kind::String),
    field(3, i16::MAX, Kind::String),
    field(5, i16::MAX, Kind::String),
];

/// Serves LeaveGroup.
pub struct LeaveGroupHandler;

impl Handler for LeaveGroupHandler {
    const API_KEY: ApiKey = ApiKey::LeaveGroup;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 5;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 4,
        fields: &[
            field(0, i16::MAX, Kind::String),
            field(0, 2, Kind::String),
            field(3, i16::MAX, Kind::StructArray(MEMBER)),
        ],
    };
    type Request = LeaveGroupRequest;
    type Response = LeaveGroupResponse;

    async fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: LeaveGroupRequest,
    ) -> LeaveGroupResponse {
        let version = header.request_api_version;
        let group = request.group_id.0.to_string();
        let members: Vec<MemberRef> = if version >= 3 {
            request
                .members
                .iter()
                .map(|m| MemberRef {
                    member_id: m.member_id.to_string(),
                    group_instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
                    generation_id: -1,
                })
                .collect()
        } else {
            vec![MemberRef {
                member_id: request.member_id.to_string(),
                group_instance_id: None,
                generation_id: -1,
            }]
        };
        let shard = match shard(ctx, &group) {
            Ok(shard) => shard,
            Err(code) => return LeaveGroupResponse::default().with_error_code(code),
        };
        let results = shard.leave(&group, &members);
        if version < 3 {
            let code = results.first().copied().unwrap_or(0);
            return LeaveGroupResponse::default().with_error_code(code);
        }
        let responses = members
            .into_iter()
            .zip(results)
            .map(|(m, code)| {
                MemberResponse::default()
                    .with_member_id(strb(m.member_id))
                    .with_group_instance_id(m.group_instance_id.map(strb))
                    .with_error_code(code)
            })
            .collect();
        LeaveGroupResponse::default().with_members(responses)
    }
}
