//! QuorumController: the one task that owns all controller state.
//!
//! Inputs, handled one at a time in arrival order:
//! - [`ControllerCommand`]s from the RPC server (writes);
//! - [`RaftEvent`]s from the Raft thread, in log order;
//! - its own timers (the idle no-op, the snapshot policy, the leader
//!   imbalance check) and finished snapshot writes.
//!
//! A write is "records + response": a manager (e.g. `config_control`)
//! computes the records from the `latest` image, the controller replays them
//! into `latest` at once (so the next write sees them), proposes them as one
//! Raft entry stamped with its term, and answers when that entry's index
//! commits in the same term. Raft appends the entry only while this node
//! leads that term; a refusal is answered NOT_CONTROLLER. A new leader
//! accepts writes only once its term-start entry has committed (everything
//! before it replayed), and every write still pending when the term or role
//! changes is answered NOT_CONTROLLER.
//! `committed` is the image of the committed log only; it is what snapshots
//! are taken from and what `latest` falls back to when leadership is lost.
//!
//! Output: replies to writes, proposals to Raft, snapshot files, and the
//! committed image, published on a `watch` channel after every batch.
//!
//! The parts live in submodules: `settings` (what the task is configured
//! with), `write_ops` (what each [`WriteOp`] computes, and proposing
//! records), `snapshots` (writing snapshots of `committed`) and `timers`
//! (idle no-ops, leader balancing, session expiry). This file holds the
//! state and the event loop: Raft events, commits, and becoming or ceasing
//! to be the active controller.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kraft_metadata::{record, snapshot, MetadataDelta, MetadataImage};
use kraft_proto::controller::controller_response::Body as ResponseBody;
use kraft_proto::controller::LeaderHint;
use kraft_proto::metadata::{metadata_record::Record, FeatureLevelRecord, RecordBatch};
use kraft_raft::{CommittedEntry, RaftEvent, RaftHandle, RaftRole};
use prost::Message as _;
use tokio::sync::{mpsc, oneshot, watch};

use crate::cluster_control::ClusterControl;
use crate::error::ControllerError;

mod settings;
mod snapshots;
#[cfg(test)]
mod tests;
mod timers;
mod write_ops;

pub use settings::{ControllerSettings, LeaderBalanceSettings};
pub use write_ops::{Atomicity, WriteOp};

use snapshots::SnapshotState;

/// The `metadata.version` a new cluster is bootstrapped with.
pub const METADATA_VERSION: i32 = 1;

/// A write's answer: the response body, and the metadata offset its records
/// committed at (or the committed offset it was computed at, if it wrote
/// nothing).
pub type WriteOutcome = Result<(ResponseBody, u64), ControllerError>;
pub type WriteReply = oneshot::Sender<WriteOutcome>;

/// A write operation and where to send its outcome.
pub struct ControllerCommand {
    pub op: WriteOp,
    pub reply: WriteReply,
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
    snapshots: SnapshotState,
}

/// What stopped the controller when it stops on its own.
pub type FatalError = String;

impl QuorumController {
    pub fn new(
        settings: ControllerSettings,
        raft: RaftHandle,
        published: watch::Sender<Arc<MetadataImage>>,
    ) -> QuorumController {
        let snapshots = SnapshotState::new(&settings);
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
            snapshots,
        }
    }

    /// Runs until it is dropped (aborted) or fails; every way it can end on
    /// its own is an error: a fatal Raft event, the Raft thread gone (its
    /// event stream closed), or the listener gone (no more commands). A
    /// node without its controller must stop, not run on.
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<ControllerCommand>,
        mut events: mpsc::UnboundedReceiver<RaftEvent>,
    ) -> Result<(), FatalError> {
        let Some(mut snapshots) = self.snapshots.results.take() else {
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
                    None => return Err("the raft thread stopped".to_string()),
                },
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => return Err("the CONTROLLER listener stopped".to_string()),
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
        let atomicity = op.atomicity();
        match self.execute(op) {
            Err(e) => {
                let _ = reply.send(Err(e));
            }
            Ok(result) => self.write(result.records, Some((reply, result.response)), atomicity),
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
                self.snapshots.policy.reset(Instant::now());
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
                // A proposal still pending belongs to this term: Raft refused
                // it because this node no longer leads the term (or dropped
                // it), so everything computed after it is void too. One that
                // is not pending was made in an earlier term and already
                // failed when that term ended; it must not unseat the
                // controller of the current term.
                if let Some(pending) = self.proposing.remove(&token) {
                    if let Some((reply, _)) = pending.reply {
                        let _ =
                            reply.send(Err(ControllerError::not_controller(self.leader_hint())));
                    }
                    self.step_down();
                }
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
                self.snapshots.policy.record_committed(entry.data.len());
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
            self.write(bootstrap, None, Atomicity::Atomic);
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

    fn publish(&self) {
        self.published
            .send_replace(Arc::new(self.committed.clone()));
    }
}
