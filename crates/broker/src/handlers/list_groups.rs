//! ListGroups (key 16, v0–v5): the groups this broker coordinates. As in
//! Kafka, a client lists every broker's groups by asking every broker.
//!
//! In: optional filters on state (v4+) and type (v5+; every group here is
//! `classic`), matched case-insensitively. Out: group id, protocol type,
//! state (v4+) and type (v5+) of each group in the `__consumer_offsets`
//! partitions this broker has loaded; COORDINATOR_LOAD_IN_PROGRESS while
//! one of them is still loading.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    ApiKey, GroupId, ListGroupsRequest, ListGroupsResponse, RequestHeader,
};

use super::support::groups::strb;
use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Kind, Shape};

/// The group type of every group this coordinator runs.
const CLASSIC: &str = "classic";

/// Serves ListGroups.
pub struct ListGroupsHandler;

impl Handler for ListGroupsHandler {
    const API_KEY: ApiKey = ApiKey::ListGroups;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 5;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 3,
        fields: &[
            field(4, i16::MAX, Kind::StringArray),
            field(5, i16::MAX, Kind::StringArray),
        ],
    };
    type Request = ListGroupsRequest;
    type Response = ListGroupsResponse;

    async fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: ListGroupsRequest,
    ) -> ListGroupsResponse {
        let version = header.request_api_version;
        let (shards, loading) = ctx.groups.shards();
        let type_ok = request.types_filter.is_empty()
            || request
                .types_filter
                .iter()
                .any(|t| t.eq_ignore_ascii_case(CLASSIC));
        let mut groups: Vec<ListedGroup> = Vec::new();
        if type_ok {
            for shard in shards {
                for g in shard.list() {
                    let state = g.state.name();
                    if !request.states_filter.is_empty()
                        && !request
                            .states_filter
                            .iter()
                            .any(|s| s.eq_ignore_ascii_case(state))
                    {
                        continue;
                    }
                    let mut listed = ListedGroup::default()
                        .with_group_id(GroupId(strb(g.group_id)))
                        .with_protocol_type(strb(g.protocol_type));
                    if version >= 4 {
                        listed = listed.with_group_state(strb(state));
                    }
                    if version >= 5 {
                        listed = listed.with_group_type(strb(CLASSIC));
                    }
                    groups.push(listed);
                }
            }
        }
        groups.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
        let error = if loading {
            ResponseError::CoordinatorLoadInProgress.code()
        } else {
            0
        };
        ListGroupsResponse::default()
            .with_error_code(error)
            .with_groups(groups)
    }
}
