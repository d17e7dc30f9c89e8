//! The Raft driver of the `__cluster_metadata` log.
//!
//! tikv's `RawNode` is synchronous and does fsyncs, so it runs on a thread of
//! its own ([`driver`]). Everything else talks to that thread through
//! channels:
//!
//! - in: [`RaftHandle`] (proposals, messages from peers, status queries,
//!   "a snapshot was taken"), plus a tick every `tick` interval;
//! - out: an ordered stream of [`RaftEvent`]s (snapshots to load, committed
//!   entries, the index each proposal landed at, leadership changes) for the
//!   state machine, and Raft messages for the [`transport`] to send to peers.
//!
//! [`guard`] checks every message from the network before raft-rs sees it
//! (raft-rs panics on inputs it deems impossible); a panic that still
//! happens on the Raft thread is reported as [`RaftEvent::Fatal`].
//!
//! [`storage`] keeps the log, the quorum state and the snapshots on disk;
//! [`LogReader`](storage::LogReader) lets other tasks read committed entries
//! (brokers tail the metadata log that way) without going through the thread.

#![forbid(unsafe_code)]

pub mod driver;
pub mod guard;
mod handle;
mod ids;
mod logger;
pub mod storage;
pub mod transport;

pub use driver::{
    start_raft, CommittedEntry, Leadership, RaftEvent, RaftHandle, RaftRole, RaftStatus,
    RaftTiming, ReplicaProgress,
};
pub use kraft_rpc::{NetworkFault, NoFaults};
pub use raft::eraftpb::{Entry, Message, MessageType};
pub use transport::PeerTransport;
