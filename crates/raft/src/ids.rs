//! Node ids across the Raft boundary. Node ids on this crate's API are
//! Kafka node ids (`i32`, may be 0); raft-rs needs non-zero ids, so inside
//! this crate a node's raft id is `node_id + 1` ([`raft_id`], [`node_id`]).
//! Also names the message kinds the transport treats specially
//! ([`is_snapshot`]).

use raft::eraftpb::{Message, MessageType};

/// The raft-rs id of a Kafka node id.
pub fn raft_id(node_id: i32) -> u64 {
    node_id as u64 + 1
}

/// The Kafka node id of a raft-rs id (0, "no one", maps to -1).
pub fn node_id(raft_id: u64) -> i32 {
    raft_id as i32 - 1
}

/// Messages that must not leave before a sync are already split out by
/// raft-rs (`persisted_messages`); this only names snapshot messages so the
/// transport can report their outcome.
pub(crate) fn is_snapshot(msg: &Message) -> bool {
    msg.get_msg_type() == MessageType::MsgSnapshot
}
