//! One handler per Kafka API, and the registry that lists them.
//!
//! Each API lives in its own file as a type implementing [`Handler`]: its
//! API key, the versions it serves, its request and response types, and an
//! async `handle` that turns a decoded request into a response using the
//! [`BrokerContext`]. The [`registry!`] invocation below names every
//! handler exactly once; from it come [`SUPPORTED_APIS`] (which ApiVersions
//! answers with, so the advertised list can never drift from what is
//! served) and [`dispatch`] (which decodes a body, runs the handler and
//! encodes the response).
//!
//! In: a decoded request header and the undecoded body bytes from
//! [`crate::kafka::request`]. Out: the encoded response frame payload. A
//! body that does not decode is a [`RequestError`] (the connection closes);
//! every other problem is an error code inside the response.

use std::future::Future;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::context::BrokerContext;
use crate::handlers::support::encode_response;
use crate::handlers::support::shape::{check, Shape};
use crate::handlers::support::RequestError;

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_partition_reassignments;
pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_producers;
pub mod describe_transactions;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod produce;
pub mod support;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod write_txn_markers;

/// A Kafka API served by this broker.
pub trait Handler {
    /// The API this handler serves.
    const API_KEY: ApiKey;
    /// The oldest version served.
    const MIN_VERSION: i16;
    /// The newest version served.
    const MAX_VERSION: i16;
    /// The request's wire layout, checked before decoding (see
    /// [`crate::handlers::support::shape`]: it keeps absurd array lengths from reaching
    /// kafka-protocol's preallocating decoder).
    const REQUEST_SHAPE: Shape;
    /// The decoded request.
    type Request: Decodable + Send;
    /// The response to encode.
    type Response: Encodable + Send;

    /// Answers one request of version `version` (already checked to be in
    /// `MIN_VERSION..=MAX_VERSION`).
    fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: Self::Request,
    ) -> impl Future<Output = Self::Response> + Send;

    /// Whether the client waits for a response (Produce with acks=0 does
    /// not: nothing is sent back).
    fn expects_response(_request: &Self::Request) -> bool {
        true
    }

    /// For a request that gets no response: whether it failed. Like Kafka,
    /// the broker then closes the connection, so the client notices and
    /// refreshes its metadata.
    fn failed(_response: &Self::Response) -> bool {
        false
    }
}

/// An API and the versions this broker serves of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SupportedApi {
    pub api_key: ApiKey,
    pub min_version: i16,
    pub max_version: i16,
}

/// The served range of `api`, if a handler serves it.
pub fn supported_api(api: ApiKey) -> Option<SupportedApi> {
    SUPPORTED_APIS.iter().copied().find(|s| s.api_key == api)
}

/// Decodes `body` as `H`'s request, runs `H` and encodes its response
/// (`None`: the client expects none).
async fn run<H: Handler>(
    ctx: &BrokerContext,
    header: &RequestHeader,
    mut body: Bytes,
) -> Result<Option<BytesMut>, RequestError> {
    let version = header.request_api_version;
    check(&H::REQUEST_SHAPE, version, &body).map_err(|e| RequestError::Malformed {
        api: H::API_KEY,
        version,
        part: "body",
        reason: e.to_string(),
    })?;
    let request = H::Request::decode(&mut body, version).map_err(|e| RequestError::Malformed {
        api: H::API_KEY,
        version,
        part: "body",
        reason: e.to_string(),
    })?;
    if !body.is_empty() {
        tracing::debug!(api = ?H::API_KEY, version, trailing = body.len(), "ignoring bytes after the request body");
    }
    let expects_response = H::expects_response(&request);
    let response = H::handle(ctx, header, request).await;
    if !expects_response {
        if H::failed(&response) {
            return Err(RequestError::FailedWithoutResponse { api: H::API_KEY });
        }
        return Ok(None);
    }
    encode_response(H::API_KEY, version, header.correlation_id, &response).map(Some)
}

/// Lists every handler once: builds [`SUPPORTED_APIS`] and [`dispatch`].
macro_rules! registry {
    ($($handler:ty),+ $(,)?) => {
        /// Every API this broker serves, with its version range.
        pub const SUPPORTED_APIS: &[SupportedApi] = &[$(SupportedApi {
            api_key: <$handler as Handler>::API_KEY,
            min_version: <$handler as Handler>::MIN_VERSION,
            max_version: <$handler as Handler>::MAX_VERSION,
        }),+];

        /// Runs the handler registered for `api` on `body`; `None` when the
        /// client expects no response.
        pub async fn dispatch(
            ctx: &BrokerContext,
            api: ApiKey,
            header: &RequestHeader,
            body: Bytes,
        ) -> Result<Option<BytesMut>, RequestError> {
            $(if api == <$handler as Handler>::API_KEY {
                return run::<$handler>(ctx, header, body).await;
            })+
            Err(RequestError::UnsupportedApi(api))
        }
    };
}

registry! {
    api_versions::ApiVersionsHandler,
    metadata::MetadataHandler,
    create_topics::CreateTopicsHandler,
    delete_topics::DeleteTopicsHandler,
    create_partitions::CreatePartitionsHandler,
    describe_cluster::DescribeClusterHandler,
    describe_configs::DescribeConfigsHandler,
    incremental_alter_configs::IncrementalAlterConfigsHandler,
    produce::ProduceHandler,
    init_producer_id::InitProducerIdHandler,
    add_partitions_to_txn::AddPartitionsToTxnHandler,
    add_offsets_to_txn::AddOffsetsToTxnHandler,
    end_txn::EndTxnHandler,
    txn_offset_commit::TxnOffsetCommitHandler,
    describe_transactions::DescribeTransactionsHandler,
    describe_producers::DescribeProducersHandler,
    list_transactions::ListTransactionsHandler,
    fetch::FetchHandler,
    list_offsets::ListOffsetsHandler,
    elect_leaders::ElectLeadersHandler,
    alter_partition_reassignments::AlterPartitionReassignmentsHandler,
    list_partition_reassignments::ListPartitionReassignmentsHandler,
    find_coordinator::FindCoordinatorHandler,
    join_group::JoinGroupHandler,
    sync_group::SyncGroupHandler,
    heartbeat::HeartbeatHandler,
    leave_group::LeaveGroupHandler,
    offset_commit::OffsetCommitHandler,
    offset_fetch::OffsetFetchHandler,
    list_groups::ListGroupsHandler,
    describe_groups::DescribeGroupsHandler,
    delete_groups::DeleteGroupsHandler,
    offset_delete::OffsetDeleteHandler,
    write_txn_markers::WriteTxnMarkersHandler,
}

#[cfg(test)]
mod tests;
