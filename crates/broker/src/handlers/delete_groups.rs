//! DeleteGroups (key 42, v0–v2): removes empty groups and their committed
//! offsets.
//!
//! In: group ids. Each group's coordinator writes tombstones for the group
//! and every offset it committed, and answers once they are replicated.
//! Out: per group NONE, NON_EMPTY_GROUP (it has members),
//! GROUP_ID_NOT_FOUND, INVALID_GROUP_ID, NOT_COORDINATOR,
//! COORDINATOR_LOAD_IN_PROGRESS or COORDINATOR_NOT_AVAILABLE.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{ApiKey, DeleteGroupsRequest, DeleteGroupsResponse, RequestHeader};

use super::support::groups::shard;
use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Kind, Shape};

/// Serves DeleteGroups.
pub struct DeleteGroupsHandler;

impl Handler for DeleteGroupsHandler {
    const API_KEY: ApiKey = ApiKey::DeleteGroups;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 2;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 2,
        fields: &[field(0, i16::MAX, Kind::StringArray)],
    };
    type Request = DeleteGroupsRequest;
    type Response = DeleteGroupsResponse;

    async fn handle(
        ctx: &BrokerContext,
        _header: &RequestHeader,
        request: DeleteGroupsRequest,
    ) -> DeleteGroupsResponse {
        let mut results = Vec::with_capacity(request.groups_names.len());
        for id in request.groups_names {
            let code = match shard(ctx, &id.0) {
                Ok(shard) => shard.delete(&id.0).await,
                Err(code) => code,
            };
            results.push(
                DeletableGroupResult::default()
                    .with_group_id(id)
                    .with_error_code(code),
            );
        }
        DeleteGroupsResponse::default().with_results(results)
    }
}
