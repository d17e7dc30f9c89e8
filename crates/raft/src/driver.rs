//! The Raft thread: owns the tikv `RawNode` and its durable storage.
//!
//! Inputs arrive on a std channel ([`RaftHandle`]); between inputs the
//! thread ticks the node every [`RaftTiming::tick`]. After each batch of
//! inputs it runs the Ready loop in the exact order raft-rs requires (see
//! `on_ready`): nothing that acknowledges a vote or an append leaves this node
//! before the entries and hard state it covers are fsynced.
//!
//! Outputs are an ordered [`RaftEvent`] stream for the state machine and Raft
//! messages handed to the [`PeerTransport`]. The handle and event types live
//! in the `handle` module, the node-id mapping in `ids`.

use std::collections::HashMap;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use raft::eraftpb::{EntryType, HardState, Message};
use raft::{Config, RawNode, SnapshotStatus, StateRole};
use tokio::sync::watch;

use crate::guard;
use crate::handle::Input;
use crate::logger::raft_logger;
use crate::storage::RaftStorage;
use crate::transport::PeerTransport;

pub use crate::handle::{
    CommittedEntry, Leadership, RaftEvent, RaftHandle, RaftRole, RaftStatus, ReplicaProgress,
};
pub use crate::ids::{node_id, raft_id};

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
    let (handle, mut driver) = Driver::new(node_id, timing, storage, outputs)?;
    let events = driver.events.clone();
    let thread = std::thread::Builder::new()
        .name(format!("raft-{node_id}"))
        .spawn(move || contain_panic(&events, || driver.run()))
        .map_err(raft::Error::Io)?;
    Ok((handle, thread))
}

/// Runs `body`; if it panics (raft-rs panics on inputs it deems
/// impossible, see [`guard`](crate::guard)), reports [`RaftEvent::Fatal`]
/// with the panic's message instead of letting the thread vanish, so the
/// node stops with a reason rather than limping on without Raft.
fn contain_panic(events: &tokio::sync::mpsc::UnboundedSender<RaftEvent>, body: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".to_string());
        tracing::error!(%message, "the raft thread panicked; stopping this node's raft");
        let _ = events.send(RaftEvent::Fatal(format!("raft thread panicked: {message}")));
    }
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
    /// The voters' raft ids (static membership), for [`guard::check_state`].
    voters: Vec<u64>,
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
    /// The driver and its handle, not yet running: `start_raft` moves the
    /// driver onto its thread; unit tests call its steps directly.
    fn new(
        node_id: i32,
        timing: RaftTiming,
        storage: RaftStorage,
        outputs: RaftOutputs,
    ) -> Result<(RaftHandle, Driver), raft::Error> {
        let (tx, rx) = mpsc::channel();
        let reader = storage.reader();
        let (commit_tx, commit_rx) = watch::channel(storage.hard_state().commit);
        let (leadership_tx, leadership_rx) = watch::channel(Leadership {
            role: RaftRole::Follower,
            leader_id: None,
            term: storage.hard_state().term,
        });
        let handle = RaftHandle::new(tx, reader, commit_rx, leadership_rx);
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
        let voters = storage.conf_state().voters;
        let state_machine_applied = storage.snapshot_index();
        let mut node = RawNode::new(&config, storage, &raft_logger(raft_id(node_id)))?;
        node.set_priority(PRIORITY_CAUGHT_UP);
        let driver = Driver {
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
            voters,
        };
        Ok((handle, driver))
    }

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
                if let Err(reason) = guard::check_state(&self.node.raft, &self.voters, &msg) {
                    guard::dropped(&msg, &reason);
                    return true;
                }
                self.last_heard.insert(msg.from, Instant::now());
                if let Err(e) = self.node.step(*msg) {
                    tracing::debug!(error = %e, "dropped a raft message");
                }
            }
            Input::Propose { token, term, data } => self.propose(token, term, data),
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

    /// Appends `data` if this node leads `term`; a proposal made for an
    /// earlier term (computed from that term's state) is refused even when
    /// this node leads again: entries of the terms between may contradict it.
    fn propose(&mut self, token: u64, term: u64, data: Vec<u8>) {
        let raft = &self.node.raft;
        if raft.state != StateRole::Leader || raft.term != term {
            tracing::debug!(
                token,
                proposed_for = term,
                term = raft.term,
                role = ?raft.state,
                "proposal refused: not the leader of its term"
            );
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

        // Role and leader come from raft-rs's soft state, reported only when
        // they change; the term is checked too: a leader that lost and won
        // again between two rounds has the same soft state, a new term.
        let term = self.node.raft.term;
        if ready.ss().is_some() || term != self.leadership_tx.borrow().term {
            let raft = &self.node.raft;
            let leadership = Leadership {
                role: raft.state.into(),
                leader_id: (raft.leader_id != 0).then(|| node_id(raft.leader_id)),
                term,
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

#[cfg(test)]
mod tests;
