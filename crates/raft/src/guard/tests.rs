//! Each refusal of the guard, with a message that raft-rs would panic on
//! (or that a peer never sends), and the sound messages it lets through.

use std::collections::BTreeSet;

use raft::eraftpb::{ConfState, Entry, EntryType, Message, MessageType};
use raft::storage::MemStorage;
use raft::{Config, Raft};

use super::*;

const ME: i32 = 1;
const PEER: i32 = 2;

fn voters() -> BTreeSet<i32> {
    BTreeSet::from([1, 2, 3])
}

fn msg(kind: MessageType) -> Message {
    let mut m = Message::default();
    m.set_msg_type(kind);
    m.from = raft_id(PEER);
    m.to = raft_id(ME);
    m.term = 5;
    m
}

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        ..Default::default()
    }
}

#[test]
fn sound_peer_messages_pass_the_envelope() {
    for kind in [
        MessageType::MsgHeartbeat,
        MessageType::MsgHeartbeatResponse,
        MessageType::MsgAppendResponse,
        MessageType::MsgRequestVote,
        MessageType::MsgRequestPreVoteResponse,
    ] {
        assert_eq!(
            check_envelope(&msg(kind), ME, &voters()),
            Ok(()),
            "{kind:?}"
        );
    }
    let mut append = msg(MessageType::MsgAppend);
    append.index = 7;
    append.log_term = 4;
    append.mut_entries().push(entry(8, 4));
    append.mut_entries().push(entry(9, 5));
    assert_eq!(check_envelope(&append, ME, &voters()), Ok(()));
}

#[test]
fn senders_and_addressees_other_than_voters_are_refused() {
    let mut m = msg(MessageType::MsgHeartbeat);
    m.from = raft_id(99);
    assert!(check_envelope(&m, ME, &voters()).is_err(), "a non-voter");
    m.from = raft_id(ME);
    assert!(
        check_envelope(&m, ME, &voters()).is_err(),
        "this node itself"
    );
    m.from = 0;
    assert!(check_envelope(&m, ME, &voters()).is_err(), "no sender");
    let mut m = msg(MessageType::MsgHeartbeat);
    m.to = raft_id(3);
    assert!(
        check_envelope(&m, ME, &voters()).is_err(),
        "another addressee"
    );
}

#[test]
fn local_kinds_term_zero_and_unused_features_are_refused() {
    for kind in [
        MessageType::MsgHup,
        MessageType::MsgBeat,
        MessageType::MsgPropose,
        MessageType::MsgUnreachable,
        MessageType::MsgSnapStatus,
        MessageType::MsgCheckQuorum,
        MessageType::MsgTransferLeader,
        MessageType::MsgTimeoutNow,
        MessageType::MsgReadIndex,
        MessageType::MsgReadIndexResp,
    ] {
        assert!(
            check_envelope(&msg(kind), ME, &voters()).is_err(),
            "{kind:?}"
        );
    }
    let mut m = msg(MessageType::MsgHeartbeat);
    m.term = 0;
    assert!(check_envelope(&m, ME, &voters()).is_err(), "term 0");
    let mut m = msg(MessageType::MsgAppendResponse);
    m.request_snapshot = 3;
    assert!(
        check_envelope(&m, ME, &voters()).is_err(),
        "request_snapshot"
    );
    let mut m = msg(MessageType::MsgRequestVote);
    m.context = b"CampaignTransfer".to_vec().into();
    assert!(
        check_envelope(&m, ME, &voters()).is_err(),
        "transfer campaign"
    );
    let mut m = msg(MessageType::MsgHeartbeat);
    m.mut_entries().push(entry(1, 1));
    assert!(
        check_envelope(&m, ME, &voters()).is_err(),
        "entries off an append"
    );
}

#[test]
fn appends_with_gaps_odd_terms_or_conf_changes_are_refused() {
    let append = |index: u64, log_term: u64, entries: Vec<Entry>| {
        let mut m = msg(MessageType::MsgAppend);
        m.index = index;
        m.log_term = log_term;
        for e in entries {
            m.mut_entries().push(e);
        }
        m
    };
    // Numbered below the anchor: raft-rs's "conflict with committed entry".
    let below = append(10, 5, vec![entry(1, 5)]);
    assert!(check_envelope(&below, ME, &voters()).is_err());
    let gap = append(10, 5, vec![entry(11, 5), entry(13, 5)]);
    assert!(check_envelope(&gap, ME, &voters()).is_err());
    let overflow = append(u64::MAX, 5, vec![entry(0, 5)]);
    assert!(check_envelope(&overflow, ME, &voters()).is_err());
    let newer_than_message = append(10, 5, vec![entry(11, 6)]);
    assert!(check_envelope(&newer_than_message, ME, &voters()).is_err());
    let older_than_anchor = append(10, 5, vec![entry(11, 4)]);
    assert!(check_envelope(&older_than_anchor, ME, &voters()).is_err());
    let anchor_after_message = append(10, 6, vec![]);
    assert!(check_envelope(&anchor_after_message, ME, &voters()).is_err());
    let mut conf = entry(11, 5);
    conf.set_entry_type(EntryType::EntryConfChange);
    assert!(check_envelope(&append(10, 5, vec![conf]), ME, &voters()).is_err());
}

/// A raft-rs node over memory storage with entries 1..=3 of term 1,
/// committed up to 2, for the checks that read the log.
fn node() -> Raft<MemStorage> {
    let voters: Vec<u64> = voters().iter().map(|id| raft_id(*id)).collect();
    let storage = MemStorage::new_with_conf_state(ConfState::from((voters, vec![])));
    storage
        .wl()
        .append(&[entry(1, 1), entry(2, 1), entry(3, 1)])
        .expect("append");
    let config = Config {
        id: raft_id(ME),
        ..Default::default()
    };
    let mut raft =
        Raft::new(&config, storage, &crate::logger::raft_logger(raft_id(ME))).expect("raft");
    raft.raft_log.commit_to(2);
    raft
}

fn raft_voters() -> Vec<u64> {
    voters().iter().map(|id| raft_id(*id)).collect()
}

#[test]
fn a_heartbeat_commit_past_the_last_index_is_refused() {
    let raft = node();
    let mut m = msg(MessageType::MsgHeartbeat);
    m.commit = 3;
    assert_eq!(check_state(&raft, &raft_voters(), &m), Ok(()));
    m.commit = 4;
    assert!(check_state(&raft, &raft_voters(), &m).is_err());
}

#[test]
fn an_append_response_past_the_last_index_is_refused() {
    let raft = node();
    let mut m = msg(MessageType::MsgAppendResponse);
    m.index = 3;
    assert_eq!(check_state(&raft, &raft_voters(), &m), Ok(()));
    m.index = 4;
    assert!(check_state(&raft, &raft_voters(), &m).is_err());
    m.index = 3;
    m.reject = true;
    m.reject_hint = u64::MAX;
    assert!(check_state(&raft, &raft_voters(), &m).is_err());
}

fn snapshot(index: u64, term: u64, voters: Vec<u64>) -> Message {
    let mut m = msg(MessageType::MsgSnapshot);
    let meta = m.mut_snapshot().mut_metadata();
    meta.index = index;
    meta.term = term;
    meta.mut_conf_state().voters = voters;
    m
}

#[test]
fn snapshots_of_another_membership_or_not_ahead_are_refused() {
    let raft = node();
    let ok = snapshot(10, 5, raft_voters());
    assert_eq!(check_state(&raft, &raft_voters(), &ok), Ok(()));
    let at_commit = snapshot(2, 1, raft_voters());
    assert!(check_state(&raft, &raft_voters(), &at_commit).is_err());
    let zero = snapshot(10, 0, raft_voters());
    assert!(check_state(&raft, &raft_voters(), &zero).is_err());
    let future_term = snapshot(10, 6, raft_voters());
    assert!(check_state(&raft, &raft_voters(), &future_term).is_err());
    let other_voters = snapshot(10, 5, vec![raft_id(PEER)]);
    assert!(check_state(&raft, &raft_voters(), &other_voters).is_err());
    let mut learners = snapshot(10, 5, raft_voters());
    learners
        .mut_snapshot()
        .mut_metadata()
        .mut_conf_state()
        .learners = vec![raft_id(7)];
    assert!(check_state(&raft, &raft_voters(), &learners).is_err());
    let mut none = msg(MessageType::MsgSnapshot);
    none.clear_snapshot();
    assert!(check_state(&raft, &raft_voters(), &none).is_err());
}
