//! Heartbeat (key 12, v0–v4): a member says it is alive, and learns
//! whether its group is rebalancing.
//!
//! In: group id, generation, member id, `group.instance.id` (v3+). Out: an
//! error code: NONE, REBALANCE_IN_PROGRESS (rejoin), UNKNOWN_MEMBER_ID,
//! ILLEGAL_GENERATION, FENCED_INSTANCE_ID, NOT_COORDINATOR,
//! COORDINATOR_LOAD_IN_PROGRESS. A heartbeat moves the member's session
//! deadline on by its session timeout.

use kafka_protocol::messages::{ApiKey, HeartbeatRequest, HeartbeatResponse, RequestHeader};

use super::support::groups::shard;
use super::Handler;
use crate::context::BrokerContext;
use crate::group::MemberRef;
use crate::handlers::support::shape::{field, Kind, Shape};

/// Serves Heartbeat.
pub struct HeartbeatHandler;

impl Handler for HeartbeatHandler {
    const API_KEY: ApiKey = ApiKey::Heartbeat;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 4;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 4,
        fields: &[
            field(0, i16::MAX, Kind::String),
            field(0, i16::MAX, Kind::Int32),
            field(0, i16::MAX, Kind::String),
            field(3, i16::MAX, Kind::String),
        ],
    };
    type Request = HeartbeatRequest;
    type Response = HeartbeatResponse;

    async fn handle(
        ctx: &BrokerContext,
        _header: &RequestHeader,
        request: HeartbeatRequest,
    ) -> HeartbeatResponse {
        let group = request.group_id.0.to_string();
        let code = match shard(ctx, &group) {
            Err(code) => code,
            Ok(shard) => shard.heartbeat(
                &group,
                &MemberRef {
                    member_id: request.member_id.to_string(),
                    group_instance_id: request.group_instance_id.as_ref().map(|i| i.to_string()),
                    generation_id: request.generation_id,
                },
            ),
        };
        HeartbeatResponse::default().with_error_code(code)
    }
}
