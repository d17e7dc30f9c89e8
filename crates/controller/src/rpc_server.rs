//! The CONTROLLER listener: accepts connections and serves
//! [`ControllerRequest`] frames (see `proto/controller.proto`).
//!
//! - `raft`: decoded, checked (`raft_in`: only from configured voters, only
//!   sound messages, snapshots only if they decode) and stepped into the
//!   Raft thread; never answered.
//! - `describe_quorum`: answered from the Raft thread's status (leader only).
//! - writes (`alter_configs`, topics, broker lifecycle, `alter_partition`,
//!   `elect_leaders`, reassignments): sent to the [`QuorumController`] task,
//!   answered when committed. `list_reassignments` goes the same way so it
//!   is answered by the active controller.
//! - `fetch_metadata` / `fetch_snapshot`: read committed entries straight
//!   from the log (no controller involvement), long-polling on the commit
//!   index; the caller is recorded as an observer. Metadata fetches are
//!   served by the leader only, as in Kafka, so it knows every observer.
//!
//! An undecodable frame closes the connection with a log line; a request
//! with a foreign cluster id gets INCONSISTENT_CLUSTER_ID. Connections are
//! capped in number, closed when idle, and frames in size (`limits`); a
//! fetch answers at most `kraft_rpc::MAX_FETCH_BYTES`.
//!
//! Who may call: Raft traffic only from the configured voters; broker
//! RPCs that name a broker (heartbeat, AlterPartition) only with that
//! broker's current registration epoch (STALE_BROKER_EPOCH,
//! BROKER_ID_NOT_REGISTERED otherwise; registration itself excepted);
//! admin requests (CreateTopics and the rest) from anyone who knows the
//! cluster id, as Kafka lets admin clients talk to controllers (KIP-919,
//! `kraftctl --bootstrap-controller`). None of this authenticates: the
//! cluster id is no secret (Metadata and DescribeCluster reveal it), and
//! authentication comes with the security work.
//!
//! [`QuorumController`]: crate::quorum_controller::QuorumController

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::SinkExt;
use kafka_protocol::ResponseError;
use kraft_proto::controller::{
    controller_request::Body as Req, controller_response::Body as Resp, CommittedBatch,
    ControllerRequest, ControllerResponse, DescribeQuorumResponse, FetchMetadataRequest,
    FetchMetadataResponse, FetchSnapshotRequest, FetchSnapshotResponse, LeaderHint, ReplicaState,
};
use kraft_raft::storage::ReadCommitted;
use kraft_raft::{NetworkFault, RaftHandle, RaftRole};
use kraft_rpc::{frame_codec, MAX_FETCH_BYTES};
use prost::Message as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Framed;

use crate::error::{code, ControllerError};
use crate::quorum_controller::{ControllerCommand, WriteOp};

mod limits;
mod raft_in;

pub use limits::ConnectionLimits;

/// The longest a metadata fetch may wait for new data.
const MAX_FETCH_WAIT: Duration = Duration::from_secs(30);
const DEFAULT_FETCH_BYTES: u64 = 1024 * 1024;
/// The most observers DescribeQuorum tracks, and how long one that stopped
/// fetching is remembered once the table is full.
const MAX_OBSERVERS: usize = 10_000;
const OBSERVER_EXPIRY: Duration = Duration::from_secs(300);

/// What a fetching observer last asked for.
#[derive(Clone, Copy, Debug)]
struct Observer {
    fetch_offset: u64,
    last_fetch: Instant,
}

/// Everything a connection handler needs; shared by all connections.
pub struct RpcContext {
    pub node_id: i32,
    pub cluster_id: String,
    pub voters: BTreeMap<i32, String>,
    /// The voters' ids: the only senders of Raft messages accepted.
    voter_ids: BTreeSet<i32>,
    pub raft: RaftHandle,
    pub commands: mpsc::Sender<ControllerCommand>,
    pub fault: Arc<dyn NetworkFault>,
    limits: ConnectionLimits,
    observers: Mutex<HashMap<i32, Observer>>,
}

impl RpcContext {
    pub fn new(
        node_id: i32,
        cluster_id: String,
        voters: BTreeMap<i32, String>,
        raft: RaftHandle,
        commands: mpsc::Sender<ControllerCommand>,
        fault: Arc<dyn NetworkFault>,
    ) -> RpcContext {
        RpcContext {
            node_id,
            cluster_id,
            voter_ids: voters.keys().copied().collect(),
            voters,
            raft,
            commands,
            fault,
            limits: ConnectionLimits::default(),
            observers: Mutex::new(HashMap::new()),
        }
    }

    /// The same context with other connection limits.
    pub fn with_limits(mut self, limits: ConnectionLimits) -> RpcContext {
        self.limits = limits;
        self
    }
}

/// Accepts connections until the task is dropped or aborted, within
/// `ctx.limits` (see [`limits`]).
pub async fn serve(listener: TcpListener, ctx: Arc<RpcContext>) {
    let limits = ctx.limits;
    limits::accept(listener, limits, move |stream, peer| {
        let ctx = ctx.clone();
        async move {
            if let Err(e) = serve_connection(stream, ctx).await {
                tracing::debug!(%peer, error = %e, "controller connection closed");
            }
        }
    })
    .await
}

async fn serve_connection(stream: TcpStream, ctx: Arc<RpcContext>) -> std::io::Result<()> {
    let mut framed = Framed::new(stream, frame_codec());
    while let Some(frame) = limits::next_frame(&mut framed, ctx.limits.idle_timeout).await {
        let frame = frame?;
        let request = match ControllerRequest::decode(frame.freeze()) {
            Ok(request) => request,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable controller frame; closing the connection");
                return Ok(());
            }
        };
        // The testkit's network faults: a broker cut off from this
        // controller is not heard, as if the network dropped it.
        if let Some(sender) = broker_sender(&request) {
            if !ctx.fault.allows(sender, ctx.node_id) {
                return Ok(());
            }
        }
        let Some(response) = handle(&ctx, request).await else {
            continue;
        };
        framed
            .send(bytes::Bytes::from(response.encode_to_vec()))
            .await?;
    }
    Ok(())
}

/// The broker that sent a request, for the requests that name it.
fn broker_sender(request: &ControllerRequest) -> Option<i32> {
    match request.body.as_ref()? {
        Req::BrokerRegistration(r) => Some(r.broker_id),
        Req::BrokerHeartbeat(r) => Some(r.broker_id),
        Req::FetchMetadata(r) => Some(r.node_id),
        Req::AlterPartition(r) => Some(r.broker_id),
        Req::AllocateProducerIds(r) => Some(r.broker_id),
        _ => None,
    }
}

/// Serves one request; `None` for one-way Raft traffic.
async fn handle(ctx: &RpcContext, request: ControllerRequest) -> Option<ControllerResponse> {
    let id = request.correlation_id;
    let Some(body) = request.body else {
        return Some(
            ControllerError::new(code(ResponseError::InvalidRequest), "request has no body")
                .into_response(id),
        );
    };
    let anonymous_ok = matches!(body, Req::DescribeQuorum(_));
    if request.cluster_id != ctx.cluster_id && !(request.cluster_id.is_empty() && anonymous_ok) {
        if let Req::Raft(_) = body {
            tracing::warn!(theirs = %request.cluster_id, ours = %ctx.cluster_id, "raft traffic from another cluster dropped");
            return None;
        }
        let message = format!(
            "request for cluster '{}' reached a node of cluster '{}'",
            request.cluster_id, ctx.cluster_id
        );
        return Some(
            ControllerError::new(code(ResponseError::InconsistentClusterId), message)
                .into_response(id),
        );
    }
    let op = match body {
        Req::Raft(messages) => {
            raft_in::step_raft(ctx, &messages).await;
            return None;
        }
        Req::DescribeQuorum(_) => {
            return Some(answer(
                id,
                describe_quorum(ctx).await.map(Resp::DescribeQuorum),
            ))
        }
        Req::FetchMetadata(request) => {
            return Some(answer(
                id,
                fetch_metadata(ctx, request).await.map(Resp::FetchMetadata),
            ))
        }
        Req::FetchSnapshot(request) => {
            return Some(answer(
                id,
                fetch_snapshot(ctx, request).map(Resp::FetchSnapshot),
            ))
        }
        // The rest are writes, for the controller task.
        Req::AlterConfigs(r) => WriteOp::AlterConfigs(r),
        Req::BrokerRegistration(r) => WriteOp::RegisterBroker(r),
        Req::BrokerHeartbeat(r) => WriteOp::BrokerHeartbeat(r),
        Req::CreateTopics(r) => WriteOp::CreateTopics(r),
        Req::DeleteTopics(r) => WriteOp::DeleteTopics(r),
        Req::CreatePartitions(r) => WriteOp::CreatePartitions(r),
        Req::AlterPartition(r) => WriteOp::AlterPartition(r),
        Req::ElectLeaders(r) => WriteOp::ElectLeaders(r),
        Req::AlterReassignments(r) => WriteOp::AlterReassignments(r),
        // A read, but of the active controller's state: it goes the same way.
        Req::ListReassignments(r) => WriteOp::ListReassignments(r),
        Req::AllocateProducerIds(r) => WriteOp::AllocateProducerIds(r),
    };
    Some(write(ctx, id, op).await)
}

/// The response frame for a read's result.
fn answer(correlation_id: u64, result: Result<Resp, ControllerError>) -> ControllerResponse {
    match result {
        Ok(body) => ControllerResponse {
            correlation_id,
            body: Some(body),
            ..Default::default()
        },
        Err(e) => e.into_response(correlation_id),
    }
}

/// Sends a write to the controller task and answers with its outcome.
async fn write(ctx: &RpcContext, correlation_id: u64, op: WriteOp) -> ControllerResponse {
    // Redirect at once when Raft says this node does not lead: the
    // controller task may be busy replaying a long log after a restart.
    let leadership = ctx.raft.leadership();
    if leadership.role != RaftRole::Leader {
        let hint = leader_hint(ctx, leadership.leader_id, leadership.term);
        return ControllerError::not_controller(hint).into_response(correlation_id);
    }
    let (reply, outcome) = oneshot::channel();
    let stopped = || {
        ControllerError::new(
            code(ResponseError::UnknownServerError),
            "the controller is shutting down",
        )
    };
    if ctx
        .commands
        .send(ControllerCommand { op, reply })
        .await
        .is_err()
    {
        return stopped().into_response(correlation_id);
    }
    match outcome.await.unwrap_or_else(|_| Err(stopped())) {
        Ok((body, offset)) => ControllerResponse {
            correlation_id,
            committed_offset: offset,
            body: Some(body),
            ..Default::default()
        },
        Err(e) => e.into_response(correlation_id),
    }
}

fn leader_hint(ctx: &RpcContext, leader_id: Option<i32>, term: u64) -> LeaderHint {
    LeaderHint {
        leader_id: leader_id.unwrap_or(-1),
        leader_epoch: term,
        address: leader_id
            .and_then(|id| ctx.voters.get(&id).cloned())
            .unwrap_or_default(),
    }
}

/// The quorum as the leader sees it; other nodes redirect to the leader.
async fn describe_quorum(ctx: &RpcContext) -> Result<DescribeQuorumResponse, ControllerError> {
    let status = ctx.raft.status().await.ok_or_else(|| {
        ControllerError::new(
            code(ResponseError::UnknownServerError),
            "raft has stopped on this node",
        )
    })?;
    if status.role != RaftRole::Leader {
        return Err(ControllerError::not_controller(leader_hint(
            ctx,
            status.leader_id,
            status.term,
        )));
    }
    let voters = status
        .progress
        .iter()
        .map(|p| ReplicaState {
            id: p.node_id,
            log_end_offset: p.matched,
            lag: status.last_index.saturating_sub(p.matched),
            last_caught_up_ms_ago: p.last_heard.map(|d| d.as_millis() as i64).unwrap_or(-1),
        })
        .collect();
    let now = Instant::now();
    let mut observers: Vec<ReplicaState> = ctx
        .observers
        .lock()
        .map(|o| {
            o.iter()
                .filter(|(id, _)| !ctx.voters.contains_key(id))
                .map(|(id, o)| ReplicaState {
                    id: *id,
                    // Offsets here are inclusive, like a voter's matched
                    // index: an observer fetching from N has up to N - 1.
                    log_end_offset: o.fetch_offset.saturating_sub(1),
                    lag: status
                        .commit
                        .saturating_sub(o.fetch_offset.saturating_sub(1)),
                    last_caught_up_ms_ago: now.duration_since(o.last_fetch).as_millis() as i64,
                })
                .collect()
        })
        .unwrap_or_default();
    observers.sort_by_key(|o| o.id);
    let mut response = DescribeQuorumResponse {
        cluster_id: ctx.cluster_id.clone(),
        leader_id: status.node_id,
        leader_epoch: status.term,
        high_watermark: status.commit,
        snapshot_offset: status.snapshot_index,
        log_start_offset: status.first_index,
        log_end_offset: status.last_index,
        voters,
        observers,
    };
    response.voters.sort_by_key(|v| v.id);
    Ok(response)
}

/// Committed entries from `offset`, waiting up to `max_wait_ms` for some.
/// Only the leader answers; others redirect with NOT_CONTROLLER.
async fn fetch_metadata(
    ctx: &RpcContext,
    request: FetchMetadataRequest,
) -> Result<FetchMetadataResponse, ControllerError> {
    // As in Kafka, observers fetch from the leader: it is the one that
    // knows (and reports) how far behind each of them is.
    let leadership = ctx.raft.leadership();
    if leadership.role != RaftRole::Leader {
        let hint = leader_hint(ctx, leadership.leader_id, leadership.term);
        return Err(ControllerError::not_controller(hint));
    }
    if let Ok(mut observers) = ctx.observers.lock() {
        // Anyone may fetch under any id: a full table first forgets the
        // observers that stopped fetching, then takes no new ids.
        let now = Instant::now();
        if observers.len() >= MAX_OBSERVERS && !observers.contains_key(&request.node_id) {
            observers.retain(|_, o| now.duration_since(o.last_fetch) < OBSERVER_EXPIRY);
        }
        if observers.len() < MAX_OBSERVERS || observers.contains_key(&request.node_id) {
            observers.insert(
                request.node_id,
                Observer {
                    fetch_offset: request.offset,
                    last_fetch: now,
                },
            );
        }
    }
    let reader = ctx.raft.reader();
    let max_bytes = if request.max_bytes == 0 {
        DEFAULT_FETCH_BYTES
    } else {
        u64::from(request.max_bytes.min(MAX_FETCH_BYTES))
    };
    let wait = Duration::from_millis(u64::from(request.max_wait_ms)).min(MAX_FETCH_WAIT);
    let mut commit = ctx.raft.commit_watch();
    let deadline = tokio::time::Instant::now() + wait;
    while reader.commit_index() < request.offset {
        match tokio::time::timeout_at(deadline, commit.changed()).await {
            Ok(Ok(())) => {}
            _ => break,
        }
    }
    let mut response = FetchMetadataResponse {
        high_watermark: reader.commit_index(),
        log_start_offset: reader.first_index(),
        ..Default::default()
    };
    match reader.read_committed(request.offset, max_bytes) {
        ReadCommitted::Entries(entries) => {
            response.batches = entries
                .into_iter()
                .map(|e| CommittedBatch {
                    offset: e.index,
                    term: e.term,
                    records: e.data.to_vec().into(),
                })
                .collect();
        }
        ReadCommitted::SnapshotRequired { index, .. } => {
            response.snapshot_required = true;
            response.snapshot_offset = index;
        }
    }
    Ok(response)
}

fn fetch_snapshot(
    ctx: &RpcContext,
    request: FetchSnapshotRequest,
) -> Result<FetchSnapshotResponse, ControllerError> {
    let Some((index, _term, data)) = ctx.raft.reader().latest_snapshot() else {
        return Err(ControllerError::new(
            code(ResponseError::SnapshotNotFound),
            "this node has no snapshot",
        ));
    };
    if index != request.snapshot_offset {
        return Err(ControllerError::new(
            code(ResponseError::SnapshotNotFound),
            format!(
                "no snapshot at offset {}; the latest is at {index}",
                request.snapshot_offset
            ),
        ));
    }
    let total = data.len() as u64;
    let start = request.position.min(total) as usize;
    let max = if request.max_bytes == 0 {
        DEFAULT_FETCH_BYTES
    } else {
        u64::from(request.max_bytes.min(MAX_FETCH_BYTES))
    };
    let end = (start as u64 + max).min(total) as usize;
    Ok(FetchSnapshotResponse {
        snapshot_offset: index,
        total_size: total,
        position: start as u64,
        chunk: data.slice(start..end),
    })
}
