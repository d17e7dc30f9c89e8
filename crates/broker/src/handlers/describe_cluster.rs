//! DescribeCluster (key 60, v0–v2): the cluster id, the "controller" id
//! and the brokers, from the metadata cache.
//!
//! In: the request (v1+ `endpoint_type`: only 1 = brokers is served; v2
//! `include_fenced_brokers`). Out: alive brokers (fenced ones too when
//! asked, flagged `is_fenced`) with their endpoint on this listener and
//! their rack. As in Kafka's KRaft mode, clients are never told which node
//! is the active controller: the reported id is this broker (or another
//! alive broker), see [`reported_controller_id`].

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse, RequestHeader,
};
use kafka_protocol::protocol::StrBytes;

use super::support::cluster::reported_controller_id;
use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Kind, Shape};

/// `endpoint_type` for broker endpoints.
const BROKER_ENDPOINTS: i8 = 1;

/// Serves DescribeCluster.
pub struct DescribeClusterHandler;

impl Handler for DescribeClusterHandler {
    const API_KEY: ApiKey = ApiKey::DescribeCluster;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 2;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 0,
        fields: &[
            field(0, i16::MAX, Kind::Bool),
            field(1, i16::MAX, Kind::Int8),
            field(2, i16::MAX, Kind::Bool),
        ],
    };
    type Request = DescribeClusterRequest;
    type Response = DescribeClusterResponse;

    async fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: DescribeClusterRequest,
    ) -> DescribeClusterResponse {
        let version = header.request_api_version;
        let response = DescribeClusterResponse::default()
            .with_cluster_id(StrBytes::from_string(ctx.cluster_id.clone()));
        if version >= 1 && request.endpoint_type != BROKER_ENDPOINTS {
            return response
                .with_error_code(ResponseError::UnsupportedEndpointType.code())
                .with_error_message(Some(StrBytes::from_string(format!(
                    "endpoint type {} is not served by a broker",
                    request.endpoint_type
                ))));
        }
        let include_fenced = version >= 2 && request.include_fenced_brokers;
        let image = ctx.cache.image();
        let brokers = image
            .cluster()
            .brokers()
            .filter(|b| include_fenced || !b.fenced)
            .filter_map(|b| {
                let endpoint = b.endpoint(&ctx.listener_name)?;
                Some(
                    DescribeClusterBroker::default()
                        .with_broker_id(BrokerId(b.id))
                        .with_host(StrBytes::from_string(endpoint.host.clone()))
                        .with_port(i32::from(endpoint.port))
                        .with_rack(b.rack.clone().map(StrBytes::from_string))
                        .with_is_fenced(include_fenced && b.fenced),
                )
            })
            .collect();
        response
            .with_controller_id(BrokerId(reported_controller_id(ctx, &image)))
            .with_brokers(brokers)
    }
}
