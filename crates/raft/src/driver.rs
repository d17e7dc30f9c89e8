//! The Raft thread: owns the tikv `RawNode` and its durable storage.
//!
//! Inputs arrive on a std channel ([`RaftHandle`]); between inputs the
//! thread ticks the node every [`RaftTiming::tick`]. After each batch of
//! inputs it runs the Ready loop in the exact order raft-rs requires (see
//! `on_ready`): nothing that acknowledges a vote or an append leaves this node
//! before the entries and hard state it covers are fsynced.
//!
//! Outputs are an ordered [`RaftEvent`] stream for the state machine and Raft
//! messages handed to the [`PeerTransport`]. Node ids on this API are Kafka
//! node ids (`i32`, may be 0); raft-rs needs non-zero ids, so inside this
//! crate a node's raft id is `node_id + 1` ([`raft_id`], [`node_id`]).

use std::collections::HashMap;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use raft::eraftpb::{EntryType, HardState, Message, MessageType};
use raft::{Config, RawNode, SnapshotStatus, StateRole};
use tokio::sync::{oneshot, watch};

use crate::logger::raft_logger;
use crate::storage::{LogReader, RaftStorage};
use crate::transport::PeerTransport;

/// The raft-rs id of a Kafka node id.
pub fn raft_id(node_id: i32) -> u64 {
    node_id as u64 + 1
}

/// The Kafka node id of a raft-rs id (0, "no one", maps to -1).
pub fn node_id(raft_id: u64) -> i32 {
    raft_id as i32 - 1
}

/// How fast the node ticks, and how many ticks make an election timeout and
/// a heartbeat interval.
#[derive(Clone, Copy, Debug)]
pub struct RaftTiming {
    pub tick: Duration,
    /// A follower that hears nothing from a leader for a random number of
    /// ticks in `[election_ticks, 2 * election_ticks)` starts a (pre-)vote.
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
}

impl RaftTiming {
    /// Ticks per election timeout. A fine tick keeps the randomized timeouts
    /// of two followers apart (fewer split votes) and the check-quorum lease
    /// precise (a pre-vote is not refused just because the other follower's
    /// tick is a little behind).
    pub const ELECTION_TICKS: usize = 30;
    /// Ticks per leader heartbeat: six heartbeats per election timeout.
    pub const HEARTBEAT_TICKS: usize = 5;

    /// Derives the timing from Kafka's `controller.quorum.election.timeout.ms`:
    /// 30 ticks per election timeout (10 ms at the default 300 ms) and a
    /// heartbeat every 5 ticks.
    pub fn from_election_timeout(election_timeout: Duration) -> RaftTiming {
        let tick = (election_timeout / Self::ELECTION_TICKS as u32).max(Duration::from_millis(1));
        RaftTiming {
            tick,
            election_ticks: Self::ELECTION_TICKS,
            heartbeat_ticks: Self::HEARTBEAT_TICKS,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaftRole {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

impl From<StateRole> for RaftRole {
    fn from(role: StateRole) -> Self {
        match role {
            StateRole::Follower => RaftRole::Follower,
            StateRole::PreCandidate => RaftRole::PreCandidate,
            StateRole::Candidate => RaftRole::Candidate,
            StateRole::Leader => RaftRole::Leader,
        }
    }
}

/// What the state machine learns from the Raft thread, in log order.
#[derive(Debug)]
pub enum RaftEvent {
    /// Replace all state with this snapshot (at start-up, or sent by the
    /// leader because this node was behind the log start).
    LoadSnapshot { index: u64, term: u64, data: Bytes },
    /// Newly committed entries, in order (all those one Ready released).
    Committed(Vec<CommittedEntry>),
    /// The proposal with this token was appended at `index` in `term`; it is
    /// the state machine's if the entry committed at `index` has that term.
    Proposed { token: u64, index: u64, term: u64 },
    /// The proposal with this token was not appended (not the leader).
    ProposeFailed { token: u64 },
    /// Role, leader or term changed. For a new leader, `last_index` is the
    /// index of its term-start entry: once that commits, its state is current.
    RoleChanged {
        role: RaftRole,
        leader_id: Option<i32>,
        term: u64,
        last_index: u64,
    },
    /// The Raft thread stopped on an unrecoverable error (disk failure).
    Fatal(String),
}

/// Who leads, as this node's Raft sees it right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leadership {
    pub role: RaftRole,
    pub leader_id: Option<i32>,
    pub term: u64,
}

/// One committed log entry. `data` is empty for Raft's own entries (the
/// empty entry a new leader appends), which still take an offset.
#[derive(Debug, Clone)]
pub struct CommittedEntry {
    pub index: u64,
    pub term: u64,
    pub data: Bytes,
}

/// One voter's replication progress, as the leader sees it.
#[derive(Clone, Debug)]
pub struct ReplicaProgress {
    pub node_id: i32,
    pub matched: u64,
    /// Time since this node last received a message from that voter.
    pub last_heard: Option<Duration>,
}

#[derive(Clone, Debug)]
pub struct RaftStatus {
    pub node_id: i32,
    pub role: RaftRole,
    pub leader_id: Option<i32>,
    pub term: u64,
    pub commit: u64,
    pub first_index: u64,
    pub last_index: u64,
    pub snapshot_index: u64,
    pub voters: Vec<i32>,
    /// Filled on the leader only.
    pub progress: Vec<ReplicaProgress>,
}

pub(crate) enum Input {
    Step(Box<Message>),
    Propose { token: u64, data: Vec<u8> },
    SnapshotTaken { index: u64, term: u64, data: Bytes },
    Applied(u64),
    Unreachable { to: u64 },
    SnapshotSent { to: u64, ok: bool },
    Status(oneshot::Sender<RaftStatus>),
    Stop,
}

/// The way into the Raft thread. Cheap to clone; every call is non-blocking.
#[derive(Clone)]
pub struct RaftHandle {
    tx: mpsc::Sender<Input>,
    reader: LogReader,
    commit: watch::Receiver<u64>,
    leadership: watch::Receiver<Leadership>,
}

impl RaftHandle {
    /// A message from a peer.
    pub fn step(&self, msg: Message) {
        let _ = self.tx.send(Input::Step(Box::new(msg)));
    }

    /// Propose `data` as one entry; answered by `Proposed` or `ProposeFailed`
    /// with the same token on the event stream.
    pub fn propose(&self, token: u64, data: Vec<u8>) {
        let _ = self.tx.send(Input::Propose { token, data });
    }

    /// The state machine wrote a snapshot file of its state at `index`; the
    /// log up to it can be compacted.
    pub fn snapshot_taken(&self, index: u64, term: u64, data: Bytes) {
        let _ = self.tx.send(Input::SnapshotTaken { index, term, data });
    }

    /// The state machine has applied everything up to `index`. A node whose
    /// state machine lags its commit index does not win elections against
    /// peers that are caught up (see `Driver::update_priority`).
    pub fn applied(&self, index: u64) {
        let _ = self.tx.send(Input::Applied(index));
    }

    /// The node's current view; `None` if the thread has stopped.
    pub async fn status(&self) -> Option<RaftStatus> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Input::Status(tx)).ok()?;
        rx.await.ok()
    }

    /// Committed entries and snapshots, readable from any thread.
    pub fn reader(&self) -> &LogReader {
        &self.reader
    }

    /// Watches the commit index (for long polls).
    pub fn commit_watch(&self) -> watch::Receiver<u64> {
        self.commit.clone()
    }

    /// The current role, leader and term, updated by the Raft thread as
    /// they change; lets callers answer NOT_CONTROLLER without waiting on
    /// the state machine.
    pub fn leadership(&self) -> Leadership {
        *self.leadership.borrow()
    }

    /// Asks the thread to stop after its current step.
    pub fn stop(&self) {
        let _ = self.tx.send(Input::Stop);
    }

    pub(crate) fn sender(&self) -> mpsc::Sender<Input> {
        self.tx.clone()
    }
}

/// Where the Raft thread sends what it produces.
pub struct RaftOutputs {
    pub events: tokio::sync::mpsc::UnboundedSender<RaftEvent>,
    pub transport: PeerTransport,
}

/// Starts the Raft thread for `node_id` over `storage`. Emits `LoadSnapshot`
/// first if the storage holds a snapshot. Must be called inside a tokio
/// runtime (the transport spawns its tasks there).
pub fn start_raft(
    node_id: i32,
    timing: RaftTiming,
    storage: RaftStorage,
    outputs: RaftOutputs,
) -> Result<(RaftHandle, JoinHandle<()>), raft::Error> {
    let (tx, rx) = mpsc::channel();
    let reader = storage.reader();
    let (commit_tx, commit_rx) = watch::channel(storage.hard_state().commit);
    let (leadership_tx, leadership_rx) = watch::channel(Leadership {
        role: RaftRole::Follower,
        leader_id: None,
        term: storage.hard_state().term,
    });
    let handle = RaftHandle {
        tx,
        reader,
        commit: commit_rx,
        leadership: leadership_rx,
    };
    let mut transport = outputs.transport;
    transport.start(handle.sender());

    if let Some((index, term, data)) = storage.latest_snapshot() {
        let _ = outputs
            .events
            .send(RaftEvent::LoadSnapshot { index, term, data });
    }
    let config = Config {
        id: raft_id(node_id),
        election_tick: timing.election_ticks,
        heartbeat_tick: timing.heartbeat_ticks,
        applied: storage.snapshot_index(),
        max_size_per_msg: 1024 * 1024,
        max_inflight_msgs: 256,
        check_quorum: true,
        pre_vote: true,
        ..Default::default()
    };
    config.validate()?;
    let hard_state = storage.hard_state();
    let state_machine_applied = storage.snapshot_index();
    let mut node = RawNode::new(&config, storage, &raft_logger(raft_id(node_id)))?;
    node.set_priority(PRIORITY_CAUGHT_UP);
    let mut driver = Driver {
        node,
        state_machine_applied,
        rx,
        timing,
        events: outputs.events,
        transport,
        commit_tx,
        leadership_tx,
        hard_state,
        last_heard: HashMap::new(),
    };
    let thread = std::thread::Builder::new()
        .name(format!("raft-{node_id}"))
        .spawn(move || driver.run())
        .map_err(raft::Error::Io)?;
    Ok((handle, thread))
}

struct Driver {
    node: RawNode<RaftStorage>,
    /// The last index the state machine reported applied.
    state_machine_applied: u64,
    rx: mpsc::Receiver<Input>,
    timing: RaftTiming,
    events: tokio::sync::mpsc::UnboundedSender<RaftEvent>,
    transport: PeerTransport,
    commit_tx: watch::Sender<u64>,
    leadership_tx: watch::Sender<Leadership>,
    /// The hard state last persisted, to tell a term/vote change (fsync)
    /// from a commit-only change (kept in memory).
    hard_state: HardState,
    last_heard: HashMap<u64, Instant>,
}

/// Election priorities. raft-rs refuses a (pre-)vote to a candidate whose
/// log is no longer than the voter's and whose priority is lower, so a node
/// still replaying a long log after a restart loses elections to a peer that
/// can serve writes at once; it still wins when it is the only candidate.
const PRIORITY_CAUGHT_UP: i64 = 1;
const PRIORITY_LOADING: i64 = 0;
/// How many committed entries the state machine may lag before the node
/// counts as loading.
const MAX_APPLY_LAG: u64 = 100;

/// At most this many inputs are taken before a Ready round, so one fsync
/// covers a burst of proposals (group commit) without starving ticks.
const MAX_INPUTS_PER_ROUND: usize = 4096;

impl Driver {
    fn run(&mut self) {
        let mut next_tick = Instant::now() + self.timing.tick;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(input) => {
                    if !self.handle(input) {
                        return;
                    }
                    for _ in 0..MAX_INPUTS_PER_ROUND {
                        match self.rx.try_recv() {
                            Ok(input) => {
                                if !self.handle(input) {
                                    return;
                                }
                            }
                            Err(_) => break,
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            let now = Instant::now();
            if now >= next_tick {
                self.node.tick();
                next_tick = now + self.timing.tick;
            }
            self.update_priority();
            if let Err(e) = self.on_ready() {
                tracing::error!(error = %e, "raft storage failed; stopping this node's raft");
                let _ = self.events.send(RaftEvent::Fatal(e.to_string()));
                return;
            }
        }
    }

    /// Applies one input; false means stop.
    fn handle(&mut self, input: Input) -> bool {
        match input {
            Input::Step(msg) => {
                self.last_heard.insert(msg.from, Instant::now());
                if let Err(e) = self.node.step(*msg) {
                    tracing::debug!(error = %e, "dropped a raft message");
                }
            }
            Input::Propose { token, data } => self.propose(token, data),
            Input::SnapshotTaken { index, term, data } => {
                if let Err(e) = self.node.mut_store().snapshot_taken(index, term, data) {
                    tracing::error!(error = %e, index, "could not compact the log after a snapshot");
                }
            }
            Input::Applied(index) => {
                self.state_machine_applied = self.state_machine_applied.max(index)
            }
            Input::Unreachable { to } => self.node.report_unreachable(to),
            Input::SnapshotSent { to, ok } => {
                let status = if ok {
                    SnapshotStatus::Finish
                } else {
                    SnapshotStatus::Failure
                };
                self.node.report_snapshot(to, status);
            }
            Input::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Input::Stop => return false,
        }
        true
    }

    fn propose(&mut self, token: u64, data: Vec<u8>) {
        if self.node.raft.state != StateRole::Leader {
            let _ = self.events.send(RaftEvent::ProposeFailed { token });
            return;
        }
        match self.node.propose(Vec::new(), data) {
            Ok(()) => {
                let index = self.node.raft.raft_log.last_index();
                let term = self.node.raft.term;
                let _ = self.events.send(RaftEvent::Proposed { token, index, term });
            }
            Err(e) => {
                tracing::debug!(error = %e, "proposal dropped");
                let _ = self.events.send(RaftEvent::ProposeFailed { token });
            }
        }
    }

    fn update_priority(&mut self) {
        let lag = self
            .node
            .raft
            .raft_log
            .committed
            .saturating_sub(self.state_machine_applied);
        let priority = if lag > MAX_APPLY_LAG {
            PRIORITY_LOADING
        } else {
            PRIORITY_CAUGHT_UP
        };
        if priority != self.node.raft.priority {
            tracing::info!(lag, priority, "election priority changed");
            self.node.set_priority(priority);
        }
    }

    /// One Ready round, in raft-rs's required order.
    fn on_ready(&mut self) -> Result<(), crate::storage::StorageError> {
        // 1. Anything to do?
        if !self.node.has_ready() {
            return Ok(());
        }
        let mut ready = self.node.ready();

        if let Some(ss) = ready.ss() {
            let leadership = Leadership {
                role: ss.raft_state.into(),
                leader_id: (ss.leader_id != 0).then(|| node_id(ss.leader_id)),
                term: self.node.raft.term,
            };
            self.leadership_tx.send_replace(leadership);
            let _ = self.events.send(RaftEvent::RoleChanged {
                role: leadership.role,
                leader_id: leadership.leader_id,
                term: leadership.term,
                last_index: self.node.raft.raft_log.last_index(),
            });
        }

        // 2. A leader's messages go out now: it replicates while it writes.
        self.send(ready.take_messages());

        // 3. A snapshot from the leader replaces the log.
        if !ready.snapshot().is_empty() {
            let snapshot = ready.snapshot().clone();
            self.node.mut_store().apply_snapshot(&snapshot)?;
            let meta = snapshot.get_metadata();
            let _ = self.events.send(RaftEvent::LoadSnapshot {
                index: meta.index,
                term: meta.term,
                data: Bytes::from(snapshot.data.to_vec()),
            });
        }

        // 4. Committed entries go to the state machine.
        self.apply_committed(ready.take_committed_entries());

        // 5. Persist new entries and hard state, fsynced before step 6.
        let store = self.node.mut_store();
        if !ready.entries().is_empty() {
            store.append(ready.entries())?;
        }
        if let Some(hs) = ready.hs() {
            if hs.term != self.hard_state.term || hs.vote != self.hard_state.vote {
                store.set_hard_state(hs)?;
            } else {
                store.set_commit(hs.commit);
            }
            self.hard_state = hs.clone();
        }
        if ready.must_sync() || !ready.entries().is_empty() {
            store.sync()?;
        }

        // 6. Votes and append acknowledgements may leave only now.
        self.send(ready.take_persisted_messages());

        // 7. Advance, then handle what the advance released.
        let mut light = self.node.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.node.mut_store().set_commit(commit);
            self.hard_state.commit = commit;
        }
        self.send(light.take_messages());
        self.apply_committed(light.take_committed_entries());
        self.node.advance_apply();
        self.commit_tx
            .send_replace(self.node.raft.raft_log.committed);
        Ok(())
    }

    fn apply_committed(&mut self, entries: Vec<raft::eraftpb::Entry>) {
        if entries.is_empty() {
            return;
        }
        let committed = entries
            .into_iter()
            .map(|entry| CommittedEntry {
                index: entry.index,
                term: entry.term,
                data: match entry.get_entry_type() {
                    EntryType::EntryNormal => Bytes::from(entry.data.to_vec()),
                    // Membership is static (controller.quorum.voters): a conf
                    // change never reaches the log, but its offset still counts.
                    _ => Bytes::new(),
                },
            })
            .collect();
        let _ = self.events.send(RaftEvent::Committed(committed));
    }

    fn send(&mut self, msgs: Vec<Message>) {
        if !msgs.is_empty() {
            self.transport.send(msgs);
        }
    }

    fn status(&self) -> RaftStatus {
        let raft = &self.node.raft;
        let store = self.node.store();
        let is_leader = raft.state == StateRole::Leader;
        let mut voters: Vec<i32> = store
            .conf_state()
            .voters
            .iter()
            .map(|id| node_id(*id))
            .collect();
        voters.sort_unstable();
        let now = Instant::now();
        let progress = if is_leader {
            raft.prs()
                .iter()
                .map(|(id, pr)| ReplicaProgress {
                    node_id: node_id(*id),
                    matched: pr.matched,
                    last_heard: if *id == raft.id {
                        Some(Duration::ZERO)
                    } else {
                        self.last_heard.get(id).map(|t| now - *t)
                    },
                })
                .collect()
        } else {
            Vec::new()
        };
        RaftStatus {
            node_id: node_id(raft.id),
            role: raft.state.into(),
            leader_id: (raft.leader_id != 0).then(|| node_id(raft.leader_id)),
            term: raft.term,
            commit: raft.raft_log.committed,
            first_index: raft.raft_log.first_index(),
            last_index: raft.raft_log.last_index(),
            snapshot_index: store.snapshot_index(),
            voters,
            progress,
        }
    }
}

/// Messages that must not leave before a sync are already split out by
/// raft-rs (`persisted_messages`); this only names snapshot messages so the
/// transport can report their outcome.
pub(crate) fn is_snapshot(msg: &Message) -> bool {
    msg.get_msg_type() == MessageType::MsgSnapshot
}
