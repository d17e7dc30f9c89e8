//! QuorumController: the one task that owns all controller state.
//!
//! Inputs, handled one at a time in arrival order:
//! - [`ControllerCommand`]s from the RPC server (writes);
//! - [`RaftEvent`]s from the Raft thread, in log order;
//! - its own timers (the idle no-op, the snapshot policy, the leader
//!   imbalance check) and finished snapshot writes.
//!
//! A write is "records + response": a manager (e.g. [`config_control`])
//! computes the records from the `latest` image, the controller replays them
//! into `latest` at once (so the next write sees them), proposes them as one
//! Raft entry, and answers when that entry's index commits in the same term.
//! `committed` is the image of the committed log only; it is what snapshots
//! are taken from and what `latest` falls back to when leadership is lost.
//!
//! Output: replies to writes, proposals to Raft, snapshot files, and the
//! committed image, published on a `watch` channel after every batch.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kraft_metadata::{record, snapshot, MetadataDelta, MetadataImage};
use kraft_proto::controller::controller_response::Body as ResponseBody;
use kraft_proto::controller::{
    AlterConfigsRequest, AlterPartitionRequest, AlterReassignmentsRequest, BrokerHeartbeatRequest,
    BrokerRegistrationRequest, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    ElectLeadersRequest, LeaderHint, ListReassignmentsRequest, WriteResponse,
};
use kraft_proto::metadata::{
    metadata_record::Record, FeatureLevelRecord, MetadataRecord, NoOpRecord, RecordBatch,
    SnapshotHeader,
};
use kraft_raft::{CommittedEntry, RaftEvent, RaftHandle, RaftRole};
use prost::Message as _;
use tokio::sync::{mpsc, oneshot, watch};

use crate::cluster_control::ClusterControl;
use crate::controller_result::ControllerResult;
use crate::error::ControllerError;
use crate::error_codes::UNKNOWN_SERVER_ERROR;
use crate::replication_control::{self, TopicDefaults};
use crate::snapshot_policy::SnapshotPolicy;
use crate::{alter_partition, config_control, leader_election, reassignment};

/// The most records one Raft entry carries (Kafka's
/// `max.records.per.user.op` is the same number).
const MAX_RECORDS_PER_ENTRY: usize = 10_000;

/// The `metadata.version` a new cluster is bootstrapped with.
pub const METADATA_VERSION: i32 = 1;

/// A write's answer: the response body, and the metadata offset its records
/// committed at (or the committed offset it was computed at, if it wrote
/// nothing).
pub type WriteOutcome = Result<(ResponseBody, u64), ControllerError>;
pub type WriteReply = oneshot::Sender<WriteOutcome>;

/// The operations that go through the active controller.
#[derive(Debug)]
pub enum WriteOp {
    AlterConfigs(AlterConfigsRequest),
    RegisterBroker(BrokerRegistrationRequest),
    BrokerHeartbeat(BrokerHeartbeatRequest),
    CreateTopics(CreateTopicsRequest),
    DeleteTopics(DeleteTopicsRequest),
    CreatePartitions(CreatePartitionsRequest),
    AlterPartition(AlterPartitionRequest),
    ElectLeaders(ElectLeadersRequest),
    AlterReassignments(AlterReassignmentsRequest),
    /// A read, answered from the committed image.
    ListReassignments(ListReassignmentsRequest),
}

/// A write operation and where to send its outcome.
pub struct ControllerCommand {
    pub op: WriteOp,
    pub reply: WriteReply,
}

/// Settings the controller task needs.
#[derive(Clone, Debug)]
pub struct ControllerSettings {
    pub node_id: i32,
    pub cluster_id: String,
    /// Each voter's CONTROLLER address, for NOT_CONTROLLER hints.
    pub voters: BTreeMap<i32, String>,
    /// Where snapshot (checkpoint) files go: the `__cluster_metadata-0` dir.
    pub metadata_dir: PathBuf,
    /// `metadata.max.idle.interval.ms`; zero disables no-op records.
    pub max_idle_interval: Duration,
    /// `metadata.log.max.record.bytes.between.snapshots`.
    pub snapshot_max_bytes: u64,
    /// `metadata.log.max.snapshot.interval.ms`.
    pub snapshot_max_interval: Duration,
    /// `broker.session.timeout.ms`: a broker silent this long is fenced.
    pub session_timeout: Duration,
    /// `num.partitions` and `default.replication.factor`, for topics created
    /// without them.
    pub default_num_partitions: i32,
    pub default_replication_factor: i32,
    /// The periodic preferred-leader election.
    pub leader_balance: LeaderBalanceSettings,
}

/// `auto.leader.rebalance.enable`, `leader.imbalance.check.interval.seconds`
/// and `leader.imbalance.per.broker.percentage`: every `check_interval` the
/// active controller moves leadership back to preferred replicas for each
/// broker that is preferred for more than `imbalance_percentage` percent
/// more partitions than it leads (see `leader_election`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderBalanceSettings {
    pub enabled: bool,
    pub check_interval: Duration,
    pub imbalance_percentage: u32,
}

impl Default for LeaderBalanceSettings {
    /// Kafka's defaults: enabled, every 300 s, above 10%.
    fn default() -> Self {
        LeaderBalanceSettings {
            enabled: true,
            check_interval: Duration::from_secs(300),
            imbalance_percentage: 10,
        }
    }
}

/// A proposed write awaiting commit, with the response to send when it
/// commits; `reply` is None for the controller's own writes (no-ops,
/// bootstrap records, fencing).
struct PendingWrite {
    reply: Option<(WriteReply, ResponseBody)>,
}

pub struct QuorumController {
    settings: ControllerSettings,
    raft: RaftHandle,
    committed: MetadataImage,
    latest: MetadataImage,
    published: watch::Sender<Arc<MetadataImage>>,
    role: RaftRole,
    leader_id: Option<i32>,
    term: u64,
    /// For a leader: the index of its term-start entry. Writes are accepted
    /// once `committed` has reached it (the image is then complete).
    active_from: Option<u64>,
    active: bool,
    /// Writes that arrived while this leader was not yet active.
    deferred: VecDeque<ControllerCommand>,
    next_token: u64,
    /// Proposed, index not yet known.
    proposing: HashMap<u64, PendingWrite>,
    /// Appended at index (key) in term; answered when that index commits.
    in_flight: BTreeMap<u64, (u64, PendingWrite)>,
    /// Broker sessions (heartbeat times): state that is not in the log.
    cluster: ClusterControl,
    snapshot_policy: SnapshotPolicy,
    snapshot_running: bool,
    snapshot_done: mpsc::UnboundedSender<SnapshotResult>,
    /// Taken by `run`; finished snapshot writes arrive here.
    snapshot_results: Option<mpsc::UnboundedReceiver<SnapshotResult>>,
}

struct SnapshotResult {
    index: u64,
    term: u64,
    data: Result<Bytes, String>,
}

/// What stopped the controller when it stops on its own.
pub type FatalError = String;

impl QuorumController {
    pub fn new(
        settings: ControllerSettings,
        raft: RaftHandle,
        published: watch::Sender<Arc<MetadataImage>>,
    ) -> QuorumController {
        let (snapshot_done, snapshot_rx) = mpsc::unbounded_channel();
        let policy =
            SnapshotPolicy::new(settings.snapshot_max_bytes, settings.snapshot_max_interval);
        let session_timeout = settings.session_timeout;
        QuorumController {
            settings,
            raft,
            committed: MetadataImage::empty(),
            latest: MetadataImage::empty(),
            published,
            role: RaftRole::Follower,
            leader_id: None,
            term: 0,
            active_from: None,
            active: false,
            deferred: VecDeque::new(),
            next_token: 1,
            proposing: HashMap::new(),
            in_flight: BTreeMap::new(),
            cluster: ClusterControl::new(session_timeout),
            snapshot_policy: policy,
            snapshot_running: false,
            snapshot_done,
            snapshot_results: Some(snapshot_rx),
        }
    }

    /// Runs until the command channel closes, the Raft thread stops, or a
    /// fatal error (returned).
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<ControllerCommand>,
        mut events: mpsc::UnboundedReceiver<RaftEvent>,
    ) -> Result<(), FatalError> {
        let Some(mut snapshots) = self.snapshot_results.take() else {
            return Err("the controller was already run".to_string());
        };
        let idle = if self.settings.max_idle_interval.is_zero() {
            Duration::from_secs(3600)
        } else {
            self.settings.max_idle_interval
        };
        let mut idle_timer = tokio::time::interval(idle);
        idle_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let balance = self.settings.leader_balance;
        let balance_every = if balance.enabled && !balance.check_interval.is_zero() {
            balance.check_interval
        } else {
            Duration::from_secs(3600)
        };
        let mut balance_timer =
            tokio::time::interval_at(tokio::time::Instant::now() + balance_every, balance_every);
        balance_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.on_raft_event(event)?,
                    None => return Ok(()),
                },
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => return Ok(()),
                },
                Some(done) = snapshots.recv() => self.on_snapshot_written(done),
                _ = idle_timer.tick() => self.on_idle_tick().await,
                _ = balance_timer.tick() => self.balance_leaders(),
                _ = tokio::time::sleep_until(self.next_session_expiry()) => self.expire_sessions(),
            }
        }
    }

    fn leader_hint(&self) -> LeaderHint {
        match self.leader_id {
            Some(id) => LeaderHint {
                leader_id: id,
                leader_epoch: self.term,
                address: self.settings.voters.get(&id).cloned().unwrap_or_default(),
            },
            None => LeaderHint {
                leader_id: -1,
                leader_epoch: self.term,
                address: String::new(),
            },
        }
    }

    fn on_command(&mut self, command: ControllerCommand) {
        if self.role != RaftRole::Leader {
            let _ = command
                .reply
                .send(Err(ControllerError::not_controller(self.leader_hint())));
            return;
        }
        if !self.active {
            self.deferred.push_back(command);
            return;
        }
        let ControllerCommand { op, reply } = command;
        match self.execute(op) {
            Err(e) => {
                let _ = reply.send(Err(e));
            }
            Ok(result) => self.write(result.records, Some((reply, result.response))),
        }
    }

    /// Computes an operation's records and response from `latest`.
    fn execute(&mut self, op: WriteOp) -> Result<ControllerResult<ResponseBody>, ControllerError> {
        match op {
            WriteOp::AlterConfigs(request) => {
                let records = config_control::alter_configs(&self.latest, &request.changes)?;
                let response = ResponseBody::Write(WriteResponse::default());
                Ok(if request.validate_only {
                    ControllerResult::response_only(response)
                } else {
                    ControllerResult::new(records, response)
                })
            }
            WriteOp::RegisterBroker(request) => {
                let result =
                    self.cluster
                        .register_broker(&self.latest, &request, Instant::now())?;
                Ok(map_response(result, ResponseBody::BrokerRegistration))
            }
            WriteOp::BrokerHeartbeat(request) => {
                let result = self
                    .cluster
                    .heartbeat(&self.latest, &request, Instant::now())?;
                Ok(map_response(result, ResponseBody::BrokerHeartbeat))
            }
            WriteOp::CreateTopics(request) => {
                let defaults = TopicDefaults {
                    num_partitions: self.settings.default_num_partitions,
                    replication_factor: self.settings.default_replication_factor,
                };
                let result = replication_control::create_topics(&self.latest, &request, &defaults);
                Ok(map_response(result, ResponseBody::CreateTopics))
            }
            WriteOp::DeleteTopics(request) => {
                let result = replication_control::delete_topics(&self.latest, &request);
                Ok(map_response(result, ResponseBody::DeleteTopics))
            }
            WriteOp::CreatePartitions(request) => {
                let result = replication_control::create_partitions(&self.latest, &request);
                Ok(map_response(result, ResponseBody::CreatePartitions))
            }
            WriteOp::AlterPartition(request) => {
                let result = alter_partition::alter_partition(&self.latest, &request)?;
                Ok(map_response(result, ResponseBody::AlterPartition))
            }
            WriteOp::ElectLeaders(request) => {
                let result = leader_election::elect_leaders(&self.latest, &request)?;
                Ok(map_response(result, ResponseBody::ElectLeaders))
            }
            WriteOp::AlterReassignments(request) => {
                let result = reassignment::alter_reassignments(&self.latest, &request);
                Ok(map_response(result, ResponseBody::AlterReassignments))
            }
            WriteOp::ListReassignments(request) => {
                let response = reassignment::list_reassignments(&self.committed, &request);
                Ok(ControllerResult::response_only(
                    ResponseBody::ListReassignments(response),
                ))
            }
        }
    }

    /// The periodic leader imbalance check: preferred-leader elections for
    /// imbalanced brokers (`auto.leader.rebalance.enable`).
    fn balance_leaders(&mut self) {
        let balance = self.settings.leader_balance;
        if !self.active || !balance.enabled {
            return;
        }
        let records =
            leader_election::rebalance_leaders(&self.latest, balance.imbalance_percentage);
        if !records.is_empty() {
            tracing::info!(
                node = self.settings.node_id,
                partitions = records.len(),
                "moving leadership back to preferred replicas"
            );
            self.write(records, None);
        }
    }

    /// Replays `records` into `latest` and proposes them as one entry.
    fn write(&mut self, records: Vec<MetadataRecord>, reply: Option<(WriteReply, ResponseBody)>) {
        if records.is_empty() {
            if let Some((reply, response)) = reply {
                let _ = reply.send(Ok((response, self.latest.offset())));
            }
            return;
        }
        let batch = RecordBatch { records };
        let mut delta = MetadataDelta::new(self.latest.clone());
        if let Err(e) = batch.records.iter().try_for_each(|r| delta.replay(r)) {
            // A manager produced records that do not replay: a bug. Refuse
            // the write rather than commit a log no one can load.
            tracing::error!(error = %e, "controller generated records that do not replay");
            if let Some((reply, _)) = reply {
                let _ = reply.send(Err(ControllerError::new(
                    UNKNOWN_SERVER_ERROR,
                    e.to_string(),
                )));
            }
            return;
        }
        self.latest = delta.apply();
        // One Raft entry holds at most MAX_RECORDS_PER_ENTRY records: an
        // operation touching a million partitions (fencing a broker that
        // hosts them) would otherwise stall the Raft thread long enough to
        // cost the quorum its leader. The answer waits for the last entry.
        let chunks: Vec<&[MetadataRecord]> = batch.records.chunks(MAX_RECORDS_PER_ENTRY).collect();
        let last = chunks.len() - 1;
        let mut reply = reply;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let token = self.next_token;
            self.next_token += 1;
            let reply = if i == last { reply.take() } else { None };
            self.proposing.insert(token, PendingWrite { reply });
            let entry = RecordBatch {
                records: chunk.to_vec(),
            };
            self.raft.propose(token, entry.encode_to_vec());
        }
    }

    fn on_raft_event(&mut self, event: RaftEvent) -> Result<(), FatalError> {
        match event {
            RaftEvent::LoadSnapshot { index, term, data } => {
                let (header, image) = snapshot::decode(&data).map_err(|e| {
                    format!("snapshot at offset {index} (term {term}) cannot be loaded: {e}")
                })?;
                if header.offset != index {
                    return Err(format!(
                        "snapshot file for offset {index} holds offset {}",
                        header.offset
                    ));
                }
                tracing::info!(offset = index, term, "loaded metadata snapshot");
                self.committed = image;
                self.latest = self.committed.clone();
                self.snapshot_policy.reset(Instant::now());
                self.raft.applied(index);
                self.publish();
            }
            RaftEvent::Committed(entries) => self.on_committed(entries),
            RaftEvent::Proposed { token, index, term } => {
                if let Some(pending) = self.proposing.remove(&token) {
                    self.in_flight.insert(index, (term, pending));
                }
            }
            RaftEvent::ProposeFailed { token } => {
                // Raft drops proposals only when this node is no longer the
                // leader; everything computed after this write is void too.
                if let Some(PendingWrite {
                    reply: Some((reply, _)),
                }) = self.proposing.remove(&token)
                {
                    let _ = reply.send(Err(ControllerError::not_controller(self.leader_hint())));
                }
                self.step_down();
            }
            RaftEvent::RoleChanged {
                role,
                leader_id,
                term,
                last_index,
            } => {
                let was_leader = self.role == RaftRole::Leader;
                let new_term = term != self.term;
                self.role = role;
                self.leader_id = leader_id;
                self.term = term;
                tracing::info!(
                    node = self.settings.node_id,
                    ?role,
                    ?leader_id,
                    term,
                    "raft role changed"
                );
                if role == RaftRole::Leader {
                    if !was_leader || new_term {
                        self.step_down();
                        self.active_from = Some(last_index);
                        self.maybe_activate();
                    }
                } else {
                    self.step_down();
                }
            }
            RaftEvent::Fatal(message) => return Err(format!("raft stopped: {message}")),
        }
        Ok(())
    }

    /// Replays committed entries into `committed` (one delta for the lot),
    /// answers the writes they complete, then publishes once.
    fn on_committed(&mut self, entries: Vec<CommittedEntry>) {
        let Some(last) = entries.last() else { return };
        let last_term = last.term;
        let mut delta = MetadataDelta::new(self.committed.clone());
        for entry in &entries {
            if !entry.data.is_empty() {
                let result = RecordBatch::decode(entry.data.as_ref())
                    .map_err(|e| e.to_string())
                    .and_then(|batch| {
                        delta
                            .replay_batch(entry.index, &batch)
                            .map_err(|e| e.to_string())
                    });
                if let Err(e) = result {
                    // Kafka's loader does the same: report the fault, keep going.
                    tracing::error!(offset = entry.index, error = %e, "committed metadata batch failed to replay");
                }
                self.snapshot_policy.record_committed(entry.data.len());
            }
            delta.set_offset(entry.index);
        }
        self.committed = delta.apply();
        for entry in &entries {
            if let Some((proposed_term, pending)) = self.in_flight.remove(&entry.index) {
                if let Some((reply, response)) = pending.reply {
                    let outcome = if proposed_term == entry.term {
                        Ok((response, entry.index))
                    } else {
                        Err(ControllerError::not_controller(self.leader_hint()))
                    };
                    let _ = reply.send(outcome);
                }
            }
        }
        if !self.active || self.in_flight.is_empty() && self.proposing.is_empty() {
            self.latest = self.committed.clone();
        }
        self.raft.applied(self.committed.offset());
        self.maybe_activate();
        self.publish();
        self.maybe_snapshot(last_term);
    }

    /// Becomes active once the committed image covers the term-start entry.
    fn maybe_activate(&mut self) {
        if self.active || self.role != RaftRole::Leader {
            return;
        }
        let Some(from) = self.active_from else { return };
        if self.committed.offset() < from {
            return;
        }
        self.active = true;
        self.latest = self.committed.clone();
        // Every registered broker gets a fresh session from the new leader.
        self.cluster.reset(&self.latest, Instant::now());
        tracing::info!(
            node = self.settings.node_id,
            term = self.term,
            offset = from,
            "active controller"
        );
        if self
            .committed
            .features()
            .level("metadata.version")
            .is_none()
        {
            let bootstrap = vec![record(Record::FeatureLevel(FeatureLevelRecord {
                name: "metadata.version".to_string(),
                feature_level: METADATA_VERSION,
            }))];
            self.write(bootstrap, None);
        }
        while let Some(command) = self.deferred.pop_front() {
            self.on_command(command);
        }
    }

    /// Leaves the active state: fails every write in progress with
    /// NOT_CONTROLLER and falls back to the committed image.
    fn step_down(&mut self) {
        let hint = self.leader_hint();
        let fail = |reply: Option<WriteReply>| {
            if let Some(reply) = reply {
                let _ = reply.send(Err(ControllerError::not_controller(hint.clone())));
            }
        };
        for (_, pending) in self.proposing.drain() {
            fail(pending.reply.map(|(reply, _)| reply));
        }
        for (_, (_, pending)) in std::mem::take(&mut self.in_flight) {
            fail(pending.reply.map(|(reply, _)| reply));
        }
        for command in self.deferred.drain(..) {
            fail(Some(command.reply));
        }
        self.active = false;
        self.active_from = None;
        self.latest = self.committed.clone();
    }

    /// When the next broker session runs out (far away when none can).
    fn next_session_expiry(&self) -> tokio::time::Instant {
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        if !self.active {
            return far;
        }
        match self.cluster.next_expiry(&self.latest) {
            // Expiry is "strictly more than the timeout ago": check just after.
            Some(at) => tokio::time::Instant::from_std(at) + Duration::from_millis(1),
            None => far,
        }
    }

    /// Fences brokers whose sessions expired, moving their leaderships.
    fn expire_sessions(&mut self) {
        if !self.active {
            return;
        }
        let records = self.cluster.expire_sessions(&self.latest, Instant::now());
        if !records.is_empty() {
            tracing::info!(
                node = self.settings.node_id,
                records = records.len(),
                "fencing brokers whose sessions expired"
            );
            self.write(records, None);
        }
    }

    async fn on_idle_tick(&mut self) {
        if self.role != RaftRole::Leader {
            return;
        }
        if self.active_from.is_none() {
            // Leadership survived a dropped proposal: re-arm from the
            // current log end, which will commit in this term.
            if let Some(status) = self.raft.status().await {
                if status.role == RaftRole::Leader && status.term == self.term {
                    self.active_from = Some(status.last_index);
                    self.maybe_activate();
                }
            }
            return;
        }
        if self.active && !self.settings.max_idle_interval.is_zero() {
            self.write(vec![record(Record::NoOp(NoOpRecord {}))], None);
        }
    }

    fn publish(&self) {
        self.published
            .send_replace(Arc::new(self.committed.clone()));
    }

    /// Starts writing a snapshot of the committed image when the policy says
    /// so; encoding and fsync happen on a blocking thread.
    fn maybe_snapshot(&mut self, term: u64) {
        if self.snapshot_running || !self.snapshot_policy.due(Instant::now()) {
            return;
        }
        self.snapshot_running = true;
        self.snapshot_policy.reset(Instant::now());
        let image = self.committed.clone();
        let index = image.offset();
        let dir = self.settings.metadata_dir.clone();
        let voters = self
            .settings
            .voters
            .keys()
            .map(|id| kraft_raft::driver::raft_id(*id))
            .collect();
        let done = self.snapshot_done.clone();
        tokio::task::spawn_blocking(move || {
            let header = SnapshotHeader {
                offset: index,
                term,
                timestamp_ms: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0),
                voters,
                learners: Vec::new(),
            };
            let bytes = snapshot::encode(&header, &image);
            let data = kraft_raft::storage::write_checkpoint(&dir, index, term, &bytes)
                .map(|_| Bytes::from(bytes))
                .map_err(|e| e.to_string());
            let _ = done.send(SnapshotResult { index, term, data });
        });
    }

    fn on_snapshot_written(&mut self, done: SnapshotResult) {
        self.snapshot_running = false;
        match done.data {
            Ok(data) => {
                tracing::info!(
                    offset = done.index,
                    bytes = data.len(),
                    "wrote metadata snapshot"
                );
                self.raft.snapshot_taken(done.index, done.term, data);
            }
            Err(e) => tracing::error!(offset = done.index, error = %e, "metadata snapshot failed"),
        }
    }
}

fn map_response<T>(
    result: ControllerResult<T>,
    body: impl FnOnce(T) -> ResponseBody,
) -> ControllerResult<ResponseBody> {
    ControllerResult::new(result.records, body(result.response))
}
