//! The `request_frame` target: one Kafka request frame (without its length
//! prefix) through the request path of a combined node: header, version
//! check, shape check, decode and the handler itself, with the node's real
//! state behind it.
//!
//! In: any bytes. Out: nothing; an error answer or a closed connection is
//! fine, a panic or a hang is not. The node is started once per process
//! (a one-node [`TestCluster`] on its own runtime) and keeps whatever the
//! inputs did to it, as a long-running broker would. Each request gets
//! [`REQUEST_TIMEOUT`]: a long poll or a join that waits for other members
//! is dropped then, as a client disconnecting would drop it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kraft_broker::handlers::{self, Handler};
use kraft_broker::kafka::request::serve_request;
use kraft_broker::BrokerContext;
use kraft_testkit::TestCluster;
use tokio::runtime::Runtime;

/// How long one request may run.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(200);

struct Node {
    runtime: Runtime,
    context: Arc<BrokerContext>,
    _cluster: TestCluster,
}

fn node() -> Option<&'static Node> {
    static NODE: OnceLock<Option<Node>> = OnceLock::new();
    NODE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .ok()?;
        let cluster = runtime.block_on(async {
            let cluster = TestCluster::builder(1).combined().start().await.ok()?;
            cluster.wait_for_brokers().await.ok()?;
            Some(cluster)
        })?;
        let context = cluster.broker(1)?.context().clone();
        Some(Node {
            runtime,
            context,
            _cluster: cluster,
        })
    })
    .as_ref()
}

pub fn request_frame(data: &[u8]) {
    let Some(node) = node() else {
        panic!("the fuzzing node did not start");
    };
    let frame = Bytes::copy_from_slice(data);
    node.runtime.block_on(async {
        let _ = tokio::time::timeout(REQUEST_TIMEOUT, serve_request(&node.context, frame)).await;
    });
}

/// A frame of `H`'s default request at `version`.
fn frame<H: Handler>(version: i16) -> Option<Vec<u8>>
where
    H::Request: Encodable + Default,
{
    let api: ApiKey = H::API_KEY;
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")));
    let mut out = BytesMut::new();
    header
        .encode(&mut out, api.request_header_version(version))
        .ok()?;
    H::Request::default().encode(&mut out, version).ok()?;
    Some(out.to_vec())
}

/// Every version of `H`'s request.
fn all_versions<H: Handler>() -> Vec<Vec<u8>>
where
    H::Request: Encodable + Default,
{
    (H::MIN_VERSION..=H::MAX_VERSION)
        .filter_map(frame::<H>)
        .collect()
}

/// A default request of every served API at every served version.
pub fn seeds() -> Vec<Vec<u8>> {
    use handlers::*;
    [
        all_versions::<api_versions::ApiVersionsHandler>(),
        all_versions::<metadata::MetadataHandler>(),
        all_versions::<create_topics::CreateTopicsHandler>(),
        all_versions::<delete_topics::DeleteTopicsHandler>(),
        all_versions::<create_partitions::CreatePartitionsHandler>(),
        all_versions::<describe_cluster::DescribeClusterHandler>(),
        all_versions::<describe_configs::DescribeConfigsHandler>(),
        all_versions::<incremental_alter_configs::IncrementalAlterConfigsHandler>(),
        all_versions::<produce::ProduceHandler>(),
        all_versions::<fetch::FetchHandler>(),
        all_versions::<list_offsets::ListOffsetsHandler>(),
        all_versions::<elect_leaders::ElectLeadersHandler>(),
        all_versions::<alter_partition_reassignments::AlterPartitionReassignmentsHandler>(),
        all_versions::<list_partition_reassignments::ListPartitionReassignmentsHandler>(),
        all_versions::<find_coordinator::FindCoordinatorHandler>(),
        all_versions::<join_group::JoinGroupHandler>(),
        all_versions::<sync_group::SyncGroupHandler>(),
        all_versions::<heartbeat::HeartbeatHandler>(),
        all_versions::<leave_group::LeaveGroupHandler>(),
        all_versions::<offset_commit::OffsetCommitHandler>(),
        all_versions::<offset_fetch::OffsetFetchHandler>(),
        all_versions::<list_groups::ListGroupsHandler>(),
        all_versions::<describe_groups::DescribeGroupsHandler>(),
        all_versions::<delete_groups::DeleteGroupsHandler>(),
        all_versions::<write_txn_markers::WriteTxnMarkersHandler>(),
        all_versions::<init_producer_id::InitProducerIdHandler>(),
        all_versions::<add_partitions_to_txn::AddPartitionsToTxnHandler>(),
        all_versions::<add_offsets_to_txn::AddOffsetsToTxnHandler>(),
        all_versions::<end_txn::EndTxnHandler>(),
        all_versions::<describe_transactions::DescribeTransactionsHandler>(),
        all_versions::<list_transactions::ListTransactionsHandler>(),
    ]
    .concat()
}
