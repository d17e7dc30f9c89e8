//! Checks on Raft messages from the network, before raft-rs sees them.
//!
//! raft-rs trusts its peers: several inputs it considers impossible end in
//! a `panic!` (its `fatal!`) that kills the Raft thread. Anything that
//! reaches the CONTROLLER listener passes two gates first:
//!
//! - [`check_envelope`], on the listener's task (`decode_raft_messages`):
//!   the sender is a configured voter other than this node, the message is
//!   addressed to this node, it is a kind peers exchange (never one of
//!   raft-rs's local kinds), and its shape is sound (see below);
//! - [`check_state`], on the Raft thread just before `step`, against the
//!   node's log as it is at that moment.
//!
//! A refused message is dropped and counted; [`dropped`] logs at most one
//! warning a second. The panics of raft-rs 0.7 that a message could reach,
//! and the check that stops each:
//!
//! | raft-rs panic | reached by | refused by |
//! |---|---|---|
//! | `commit_to`: "to_commit .. is out of range [last_index ..]" | MsgHeartbeat with `commit` past this node's last index | `check_state` |
//! | `maybe_append`: "entry .. conflict with committed entry" | MsgAppend whose entries are not numbered `index + 1, index + 2, ..` (an entry at or below the commit index that differs) | `check_envelope` (contiguous entries) |
//! | `maybe_append` slice index / subtraction overflow | MsgAppend with entries numbered below `index + 1` | `check_envelope` |
//! | `step_leader`: "stepped empty MsgProp"; MsgHup, MsgBeat, MsgCheckQuorum, MsgSnapStatus, MsgUnreachable (local kinds; any message with term 0 counts as local) | a peer sending a local kind | `check_envelope` (kinds, term > 0) |
//! | `raft_log.slice`/`must_check_outofbounds`: "slice[..] out of bound" when the leader next sends to that peer | MsgAppendResponse with `index` or `reject_hint` past the leader's last index (the peer's progress moves past the log) | `check_state` |
//! | `send_append`: "need non-empty snapshot" | MsgAppendResponse asking for a snapshot (`request_snapshot`, which kraft never uses) | `check_envelope` |
//! | `restore`: "unable to restore config" / "invalid restore" | MsgSnapshot whose conf state is not the configured voters | `check_state` |
//! | `maybe_persist_snap` / `RaftStorage::apply_snapshot` errors (the thread stops) | MsgSnapshot at or below this node's commit index, at index or term 0, or of a term above the message's | `check_state` |
//! | a campaign that ignores the leader lease (MsgRequestVote with a transfer context), MsgTimeoutNow | leadership transfer, which kraft never uses | `check_envelope` |
//!
//! The snapshot's data (a metadata snapshot) is checked by the controller's
//! listener, which knows its format, before the message reaches the Raft
//! thread. If a step still panics, the Raft thread reports `RaftEvent::Fatal`
//! and stops, and the node stops with it (`start_raft`).

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use raft::eraftpb::{EntryType, Message, MessageType};
use raft::{Raft, Storage};

use crate::ids::{node_id, raft_id};

/// The kinds of message one Raft peer sends another in kraft's quorum.
fn is_peer_kind(kind: MessageType) -> bool {
    matches!(
        kind,
        MessageType::MsgAppend
            | MessageType::MsgAppendResponse
            | MessageType::MsgRequestVote
            | MessageType::MsgRequestVoteResponse
            | MessageType::MsgRequestPreVote
            | MessageType::MsgRequestPreVoteResponse
            | MessageType::MsgSnapshot
            | MessageType::MsgHeartbeat
            | MessageType::MsgHeartbeatResponse
    )
}

/// Checks what needs no Raft state: sender, addressee, kind and shape.
/// `me` and `voters` are Kafka node ids.
pub fn check_envelope(msg: &Message, me: i32, voters: &BTreeSet<i32>) -> Result<(), String> {
    let from = node_id(msg.from);
    if msg.from == 0 || !voters.contains(&from) || from == me {
        return Err(format!("sender {from} is not another voter"));
    }
    if msg.to != raft_id(me) {
        return Err(format!(
            "addressed to {}, not to this node",
            node_id(msg.to)
        ));
    }
    let kind = msg.get_msg_type();
    if !is_peer_kind(kind) {
        return Err(format!("{kind:?} is not a message peers exchange"));
    }
    if msg.term == 0 {
        return Err("term 0 (raft-rs would take it for a local message)".to_string());
    }
    if msg.request_snapshot != 0 {
        return Err("asks for a snapshot (kraft never does)".to_string());
    }
    if !msg.context.is_empty() {
        return Err("carries a context (leadership transfer, unused)".to_string());
    }
    if kind != MessageType::MsgAppend && !msg.entries.is_empty() {
        return Err(format!("{kind:?} carries entries"));
    }
    if kind != MessageType::MsgSnapshot && msg.has_snapshot() {
        return Err(format!("{kind:?} carries a snapshot"));
    }
    if kind == MessageType::MsgAppend {
        check_entries(msg)?;
    }
    Ok(())
}

/// An append's entries follow its anchor without a gap, in non-decreasing
/// terms no newer than the message, and are ordinary entries (membership
/// is static: a conf change entry would stall elections).
fn check_entries(msg: &Message) -> Result<(), String> {
    if msg.log_term > msg.term {
        return Err(format!("anchor term {} above the message's", msg.log_term));
    }
    let mut prev_term = msg.log_term;
    for (i, entry) in msg.entries.iter().enumerate() {
        let want = msg
            .index
            .checked_add(i as u64 + 1)
            .ok_or("entry index overflows")?;
        if entry.index != want {
            return Err(format!("entry {} where {want} belongs", entry.index));
        }
        if entry.term < prev_term || entry.term > msg.term {
            return Err(format!("entry {} has term {}", entry.index, entry.term));
        }
        if entry.get_entry_type() != EntryType::EntryNormal {
            return Err(format!("entry {} is a membership change", entry.index));
        }
        prev_term = entry.term;
    }
    Ok(())
}

/// Checks a message against the node's log just before it is stepped.
/// `voters` are raft ids.
pub(crate) fn check_state<S: Storage>(
    raft: &Raft<S>,
    voters: &[u64],
    msg: &Message,
) -> Result<(), String> {
    let log = &raft.raft_log;
    let last = log.last_index();
    match msg.get_msg_type() {
        MessageType::MsgHeartbeat if msg.commit > last => Err(format!(
            "heartbeat commit {} past this node's last index {last}",
            msg.commit
        )),
        MessageType::MsgAppendResponse if msg.index > last || msg.reject_hint > last => {
            Err(format!(
                "append response at {} (hint {}) past this node's last index {last}",
                msg.index, msg.reject_hint
            ))
        }
        MessageType::MsgSnapshot => {
            if !msg.has_snapshot() {
                return Err("snapshot message without a snapshot".to_string());
            }
            let meta = msg.get_snapshot().get_metadata();
            if meta.index == 0 || meta.term == 0 || meta.term > msg.term {
                return Err(format!(
                    "snapshot at index {} term {} in a term-{} message",
                    meta.index, meta.term, msg.term
                ));
            }
            if meta.index <= log.committed {
                return Err(format!(
                    "snapshot at {} not past this node's commit {}",
                    meta.index, log.committed
                ));
            }
            let cs = meta.get_conf_state();
            let mut theirs = cs.voters.clone();
            theirs.sort_unstable();
            let mut ours = voters.to_vec();
            ours.sort_unstable();
            if theirs != ours
                || !cs.learners.is_empty()
                || !cs.voters_outgoing.is_empty()
                || !cs.learners_next.is_empty()
                || cs.auto_leave
            {
                return Err(format!("snapshot names another membership: {cs:?}"));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// How often a dropped message is logged, at most.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// When the last warning went out, and how many drops since were silent.
static WARNED: Mutex<(Option<Instant>, u64)> = Mutex::new((None, 0));

/// Logs a refused message, at most once per [`WARN_EVERY`] (with the count
/// of those not logged in between).
pub fn dropped(msg: &Message, reason: &str) {
    let Ok(mut warned) = WARNED.lock() else {
        return;
    };
    let now = Instant::now();
    if warned
        .0
        .is_some_and(|at| now.duration_since(at) < WARN_EVERY)
    {
        warned.1 += 1;
        return;
    }
    let suppressed = std::mem::take(&mut warned.1);
    warned.0 = Some(now);
    tracing::warn!(
        from = node_id(msg.from),
        kind = ?msg.get_msg_type(),
        term = msg.term,
        reason,
        suppressed,
        "raft message refused"
    );
}

#[cfg(test)]
mod tests;
