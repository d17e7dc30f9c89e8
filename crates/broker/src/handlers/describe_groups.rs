//! DescribeGroups (key 15, v0–v6): the state, protocol and members of
//! groups this broker coordinates.
//!
//! In: group ids. Out: per group its state (`Empty`, `PreparingRebalance`,
//! `CompletingRebalance`, `Stable`, `Dead`), protocol type, protocol (while
//! Stable) and members with client id, host, `group.instance.id` (v4+)
//! and — while Stable — their metadata and assignment. A group that does
//! not exist is `Dead` (v6: GROUP_ID_NOT_FOUND). Errors per group:
//! INVALID_GROUP_ID, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{
    ApiKey, DescribeGroupsRequest, DescribeGroupsResponse, RequestHeader,
};

use super::support::groups::{shard, strb};
use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Kind, Shape};

/// `authorized_operations` when the client did not ask for them.
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

/// Serves DescribeGroups.
pub struct DescribeGroupsHandler;

impl Handler for DescribeGroupsHandler {
    const API_KEY: ApiKey = ApiKey::DescribeGroups;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 6;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 5,
        fields: &[
            field(0, i16::MAX, Kind::StringArray),
            field(3, i16::MAX, Kind::Bool),
        ],
    };
    type Request = DescribeGroupsRequest;
    type Response = DescribeGroupsResponse;

    async fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: DescribeGroupsRequest,
    ) -> DescribeGroupsResponse {
        let version = header.request_api_version;
        let groups = request
            .groups
            .into_iter()
            .map(|id| {
                let base = DescribedGroup::default()
                    .with_group_id(id.clone())
                    .with_authorized_operations(OPERATIONS_NOT_REQUESTED);
                let summary = match shard(ctx, &id.0) {
                    Err(code) => return base.with_error_code(code).with_group_state(strb("Dead")),
                    Ok(shard) => shard.describe(&id.0),
                };
                let Some(summary) = summary else {
                    let dead = base.with_group_state(strb("Dead"));
                    return if version >= 6 {
                        dead.with_error_code(ResponseError::GroupIdNotFound.code())
                            .with_error_message(Some(strb(format!(
                                "group {} not found",
                                id.0.as_str()
                            ))))
                    } else {
                        dead
                    };
                };
                let members = summary
                    .members
                    .into_iter()
                    .map(|m| {
                        DescribedGroupMember::default()
                            .with_member_id(strb(m.member_id))
                            .with_group_instance_id(if version >= 4 {
                                m.group_instance_id.map(strb)
                            } else {
                                None
                            })
                            .with_client_id(strb(m.client_id))
                            .with_client_host(strb(m.client_host))
                            .with_member_metadata(m.metadata)
                            .with_member_assignment(m.assignment)
                    })
                    .collect();
                base.with_group_state(strb(summary.state.name()))
                    .with_protocol_type(strb(summary.protocol_type))
                    .with_protocol_data(strb(summary.protocol))
                    .with_members(members)
            })
            .collect();
        DescribeGroupsResponse::default().with_groups(groups)
    }
}
