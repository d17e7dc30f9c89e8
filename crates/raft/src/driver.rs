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
    /// Derives the timing from Kafka's `controller.quorum.election.timeout.ms`:
    /// six ticks per election timeout, a heartbeat every tick.
    pub fn from_election_timeout(election_timeout: Duration) -> RaftTiming {
        let tick = (election_timeout / 6).max(Duration::from_millis(1));
        RaftTiming {
            tick,
            election_ticks: 6,
            heartbeat_ticks: 1,
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
    /// One committed entry. `data` is empty for Raft's own entries (the
    /// empty entry a new leader appends), which still take an offset.
    Committed { index: u64, term: u64, data: Bytes },
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
    let handle = RaftHandle {
        tx,
        reader,
        commit: commit_rx,
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
    let node = RawNode::new(&config, storage, &raft_logger(raft_id(node_id)))?;
    let mut driver = Driver {
        node,
        rx,
        timing,
        events: outputs.events,
        transport,
        commit_tx,
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
    rx: mpsc::Receiver<Input>,
    timing: RaftTiming,
    events: tokio::sync::mpsc::UnboundedSender<RaftEvent>,
    transport: PeerTransport,
    commit_tx: watch::Sender<u64>,
    /// The hard state last persisted, to tell a term/vote change (fsync)
    /// from a commit-only change (kept in memory).
    hard_state: HardState,
    last_heard: HashMap<u64, Instant>,
}

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

    /// One Ready round, in raft-rs's required order.
    fn on_ready(&mut self) -> Result<(), crate::storage::StorageError> {
        // 1. Anything to do?
        if !self.node.has_ready() {
            return Ok(());
        }
        let mut ready = self.node.ready();

        if let Some(ss) = ready.ss() {
            let _ = self.events.send(RaftEvent::RoleChanged {
                role: ss.raft_state.into(),
                leader_id: (ss.leader_id != 0).then(|| node_id(ss.leader_id)),
                term: self.node.raft.term,
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
        for entry in entries {
            let data = match entry.get_entry_type() {
                EntryType::EntryNormal => Bytes::from(entry.data.to_vec()),
                // Membership is static (controller.quorum.voters): a conf
                // change never reaches the log, but its offset still counts.
                _ => Bytes::new(),
            };
            let _ = self.events.send(RaftEvent::Committed {
                index: entry.index,
                term: entry.term,
                data,
            });
        }
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
