//! The Raft thread's steps, driven by hand: a [`Driver`] built without its
//! thread, over a temporary directory, with no peers. Elections are
//! forced with `campaign` (a single voter wins at once) and terms raised
//! with a heartbeat from a node that is not a voter, so every schedule is
//! exact and nothing waits on a clock.

use std::collections::HashMap;
use std::sync::Arc;

use raft::eraftpb::MessageType;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use super::*;
use crate::NoFaults;

const NODE: i32 = 1;
/// Not a voter: only its messages are stepped into the node.
const OTHER: i32 = 2;

fn driver(dir: &std::path::Path) -> (Driver, UnboundedReceiver<RaftEvent>) {
    let storage = RaftStorage::open(dir, &[raft_id(NODE)], Default::default()).expect("open");
    let (events, rx) = unbounded_channel();
    let transport = PeerTransport::new(NODE, "c".into(), HashMap::new(), Arc::new(NoFaults));
    let timing = RaftTiming::from_election_timeout(Duration::from_millis(300));
    let (_handle, driver) =
        Driver::new(NODE, timing, storage, RaftOutputs { events, transport }).expect("driver");
    (driver, rx)
}

fn events(rx: &mut UnboundedReceiver<RaftEvent>) -> Vec<RaftEvent> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

/// Makes the node leader in a new term (it is the only voter).
fn win_election(d: &mut Driver) {
    d.node.campaign().expect("campaign");
    assert_eq!(d.node.raft.state, StateRole::Leader);
}

/// A leader of a higher term (not a voter here) sends a heartbeat: the
/// node follows it in `term`.
fn follow_leader_of(d: &mut Driver, term: u64) {
    let mut msg = Message::default();
    msg.set_msg_type(MessageType::MsgHeartbeat);
    msg.from = raft_id(OTHER);
    msg.to = raft_id(NODE);
    msg.term = term;
    assert!(d.handle(Input::Step(Box::new(msg))));
    assert_eq!(d.node.raft.state, StateRole::Follower);
}

fn propose(d: &mut Driver, token: u64, term: u64, data: &[u8]) {
    assert!(d.handle(Input::Propose {
        token,
        term,
        data: data.to_vec(),
    }));
}

fn committed_data(events: &[RaftEvent]) -> Vec<Bytes> {
    events
        .iter()
        .filter_map(|e| match e {
            RaftEvent::Committed(entries) => Some(entries),
            _ => None,
        })
        .flatten()
        .filter(|entry| !entry.data.is_empty())
        .map(|entry| entry.data.clone())
        .collect()
}

/// Kafka's atomic append with an epoch: a proposal computed while this
/// node led term 1 reaches the Raft thread after it lost that term and won
/// term 3. It must be refused, not appended after term 2's changes.
#[tokio::test]
async fn a_proposal_of_an_earlier_term_is_refused_by_the_new_term_leader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut d, mut rx) = driver(dir.path());
    win_election(&mut d);
    d.on_ready().expect("ready");
    let computed_in = d.node.raft.term;
    follow_leader_of(&mut d, computed_in + 1);
    d.on_ready().expect("ready");
    win_election(&mut d);
    d.on_ready().expect("ready");
    let term = d.node.raft.term;
    assert_eq!(term, computed_in + 2);
    let last = d.node.raft.raft_log.last_index();
    events(&mut rx);

    propose(&mut d, 7, computed_in, b"stale");
    d.on_ready().expect("ready");
    let seen = events(&mut rx);
    assert!(
        matches!(seen.first(), Some(RaftEvent::ProposeFailed { token: 7 })),
        "a proposal of term {computed_in} delivered to the leader of term {term} \
         must be refused; events: {seen:?}"
    );
    assert_eq!(d.node.raft.raft_log.last_index(), last, "nothing appended");
    assert!(committed_data(&seen).is_empty(), "nothing committed");

    // A proposal of the current term is appended and commits.
    propose(&mut d, 8, term, b"fresh");
    d.on_ready().expect("ready");
    let seen = events(&mut rx);
    assert!(
        matches!(
            seen.first(),
            Some(RaftEvent::Proposed { token: 8, index, term: t }) if *index == last + 1 && *t == term
        ),
        "events: {seen:?}"
    );
    assert_eq!(committed_data(&seen), vec![Bytes::from_static(b"fresh")]);
}

/// A follower refuses every proposal, whatever term it carries.
#[tokio::test]
async fn a_follower_refuses_proposals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut d, mut rx) = driver(dir.path());
    win_election(&mut d);
    d.on_ready().expect("ready");
    let next = d.node.raft.term + 1;
    follow_leader_of(&mut d, next);
    d.on_ready().expect("ready");
    let term = d.node.raft.term;
    let last = d.node.raft.raft_log.last_index();
    events(&mut rx);
    propose(&mut d, 9, term, b"x");
    let seen = events(&mut rx);
    assert!(
        matches!(seen.first(), Some(RaftEvent::ProposeFailed { token: 9 })),
        "events: {seen:?}"
    );
    assert_eq!(d.node.raft.raft_log.last_index(), last);
}

/// Losing and winning leadership between two Ready rounds leaves the role
/// and leader as they were, but the term moved: the state machine must
/// still hear of it, or it keeps proposing in (and waiting on) a term that
/// is over.
#[tokio::test]
async fn a_new_term_is_reported_even_when_role_and_leader_look_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut d, mut rx) = driver(dir.path());
    win_election(&mut d);
    d.on_ready().expect("ready");
    let first = d.node.raft.term;
    events(&mut rx);

    follow_leader_of(&mut d, first + 1);
    win_election(&mut d);
    let term_start = d.node.raft.raft_log.last_index();
    d.on_ready().expect("ready");
    let seen = events(&mut rx);
    let reported = seen.iter().find_map(|e| match e {
        RaftEvent::RoleChanged {
            role,
            leader_id,
            term,
            last_index,
        } => Some((*role, *leader_id, *term, *last_index)),
        _ => None,
    });
    assert_eq!(
        reported,
        Some((RaftRole::Leader, Some(NODE), first + 2, term_start)),
        "events: {seen:?}"
    );
}

/// A heartbeat whose commit is past the log end reaches the thread (here
/// from a non-voter, as the tests' leader is): the thread drops it instead
/// of letting raft-rs panic, and keeps running.
#[tokio::test]
async fn a_heartbeat_committing_past_the_log_end_is_dropped_by_the_thread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut d, _rx) = driver(dir.path());
    follow_leader_of(&mut d, 2);
    let last = d.node.raft.raft_log.last_index();
    let mut msg = Message::default();
    msg.set_msg_type(MessageType::MsgHeartbeat);
    msg.from = raft_id(OTHER);
    msg.to = raft_id(NODE);
    msg.term = 2;
    msg.commit = last + 1_000;
    assert!(d.handle(Input::Step(Box::new(msg))));
    assert_eq!(d.node.raft.raft_log.committed, 0);
    assert!(d.on_ready().is_ok());
}

/// Defence in depth: a panic on the Raft thread becomes a `Fatal` event
/// with its message, so the node stops with a reason.
#[test]
fn a_panic_on_the_raft_thread_is_reported_as_fatal() {
    let (events, mut rx) = unbounded_channel();
    contain_panic(&events, || panic!("to_commit 9 is out of range"));
    match rx.try_recv() {
        Ok(RaftEvent::Fatal(reason)) => assert!(reason.contains("to_commit 9"), "{reason}"),
        other => panic!("expected a Fatal event, got {other:?}"),
    }
    contain_panic(&events, || {});
    assert!(rx.try_recv().is_err(), "no event when nothing panics");
}
