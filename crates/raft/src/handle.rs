//! The way in and out of the Raft thread: [`RaftHandle`] (what callers send
//! it, as [`Input`]s on a std channel) and the [`RaftEvent`] stream it sends
//! back, with the types they carry ([`CommittedEntry`], [`Leadership`],
//! [`RaftStatus`], [`ReplicaProgress`], [`RaftRole`]).
//!
//! The thread itself ([`driver`](crate::driver)) consumes the inputs and
//! produces the events; the [`transport`](crate::transport) reports peer
//! outcomes back through the same input channel.

use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use raft::eraftpb::Message;
use raft::StateRole;
use tokio::sync::{oneshot, watch};

use crate::storage::LogReader;

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
    /// The proposal with this token was not appended: this node is not the
    /// leader of the term the proposal was made for (it never led it, lost
    /// it, or leads a later one), or raft-rs dropped it.
    ProposeFailed { token: u64 },
    /// Role, leader or term changed (a term change is reported even when
    /// role and leader look the same, e.g. a leader that lost and won again
    /// between two Ready rounds). For a new leader, `last_index` is the index
    /// of its term-start entry: once that commits, its state is current.
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
    Propose {
        token: u64,
        term: u64,
        data: Vec<u8>,
    },
    SnapshotTaken {
        index: u64,
        term: u64,
        data: Bytes,
    },
    Applied(u64),
    Unreachable {
        to: u64,
    },
    SnapshotSent {
        to: u64,
        ok: bool,
    },
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
    pub(crate) fn new(
        tx: mpsc::Sender<Input>,
        reader: LogReader,
        commit: watch::Receiver<u64>,
        leadership: watch::Receiver<Leadership>,
    ) -> RaftHandle {
        RaftHandle {
            tx,
            reader,
            commit,
            leadership,
        }
    }

    /// A message from a peer.
    pub fn step(&self, msg: Message) {
        let _ = self.tx.send(Input::Step(Box::new(msg)));
    }

    /// Propose `data` as one entry, for `term`: the term whose state it was
    /// computed from. It is appended only if this node leads that very term
    /// when the Raft thread takes it (Kafka's `scheduleAtomicAppend(epoch,
    /// ..)`), so a write computed before leadership was lost and won back is
    /// never appended after another leader's entries. Answered by `Proposed`
    /// or `ProposeFailed` with the same token on the event stream.
    pub fn propose(&self, token: u64, term: u64, data: Vec<u8>) {
        let _ = self.tx.send(Input::Propose { token, term, data });
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
