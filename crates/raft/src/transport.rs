//! Sends Raft messages to peers over TCP, one connection per peer.
//!
//! The Raft thread hands messages to [`PeerTransport::send`]; each peer has a
//! bounded queue drained by a tokio task that connects (with backoff),
//! batches whatever is queued into one `ControllerRequest { raft }` frame and
//! writes it. Raft tolerates loss, so a full queue or a broken connection
//! drops messages; the task tells the Raft thread the peer is unreachable
//! (and whether a snapshot it carried got through) so raft-rs re-probes.
//!
//! Frames are length-delimited protobuf (`kraft_rpc::frame_codec`), the same
//! framing the CONTROLLER listener reads, holding at most
//! `kraft_rpc::MAX_RAFT_BATCH_BYTES` of messages (or one larger message);
//! a frame over `kraft_rpc::MAX_FRAME_BYTES` (a snapshot too large) is not
//! sent. The receiving side's checks are [`decode_raft_messages`]. A [`NetworkFault`] lets the testkit
//! cut chosen links: a cut link drops messages in both the sender and
//! receiver.

use std::collections::{BTreeSet, HashMap};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use kraft_proto::controller::{controller_request, ControllerRequest};
use kraft_proto::raft::RaftMessages;
use kraft_rpc::{frame_codec, FrameCodec, NetworkFault, MAX_FRAME_BYTES, MAX_RAFT_BATCH_BYTES};
use prost::Message as _;
use protobuf::Message as _;
use raft::eraftpb::Message;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::FramedWrite;

use crate::guard::{check_envelope, dropped};
use crate::handle::Input;
use crate::ids::{is_snapshot, node_id, raft_id};

const PEER_QUEUE: usize = 4096;
const MAX_MESSAGES_PER_FRAME: usize = 256;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const MIN_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// Outbound Raft connections to every other voter.
pub struct PeerTransport {
    node_id: i32,
    cluster_id: String,
    peers: HashMap<i32, String>,
    fault: Arc<dyn NetworkFault>,
    queues: HashMap<u64, mpsc::Sender<Message>>,
    runtime: tokio::runtime::Handle,
}

impl PeerTransport {
    /// `peers` maps each other voter's node id to its CONTROLLER address
    /// (`host:port`). Must be called inside a tokio runtime.
    pub fn new(
        node_id: i32,
        cluster_id: String,
        peers: HashMap<i32, String>,
        fault: Arc<dyn NetworkFault>,
    ) -> PeerTransport {
        PeerTransport {
            node_id,
            cluster_id,
            peers,
            fault,
            queues: HashMap::new(),
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// Spawns one sender task per peer; they report back through `reports`.
    pub(crate) fn start(&mut self, reports: std_mpsc::Sender<Input>) {
        for (peer, addr) in &self.peers {
            if *peer == self.node_id {
                continue;
            }
            let (tx, rx) = mpsc::channel(PEER_QUEUE);
            self.queues.insert(raft_id(*peer), tx);
            let link = PeerLink {
                from: self.node_id,
                to: *peer,
                addr: addr.clone(),
                cluster_id: self.cluster_id.clone(),
                fault: self.fault.clone(),
                reports: reports.clone(),
            };
            self.runtime.spawn(link.run(rx));
        }
    }

    /// Queues messages for their peers; never blocks.
    pub(crate) fn send(&self, msgs: Vec<Message>) {
        for msg in msgs {
            match self.queues.get(&msg.to) {
                Some(queue) => {
                    if queue.try_send(msg).is_err() {
                        tracing::debug!("peer queue full or closed; raft message dropped");
                    }
                }
                None => tracing::warn!(to = node_id(msg.to), "raft message for an unknown peer"),
            }
        }
    }
}

struct PeerLink {
    from: i32,
    to: i32,
    addr: String,
    cluster_id: String,
    fault: Arc<dyn NetworkFault>,
    reports: std_mpsc::Sender<Input>,
}

/// An open connection to a peer. The peer never writes on it, so anything
/// the read half sees (EOF, an error) means the peer has gone.
struct PeerConnection {
    writer: FramedWrite<OwnedWriteHalf, FrameCodec>,
    reader: OwnedReadHalf,
}

impl PeerLink {
    async fn run(self, mut queue: mpsc::Receiver<Message>) {
        let mut backoff = MIN_BACKOFF;
        let mut conn: Option<PeerConnection> = None;
        loop {
            // Wait for work; meanwhile notice a peer that closed the
            // connection (it restarted or died), so the next message goes
            // out on a fresh connection instead of into a dead socket.
            let first = match conn.as_mut() {
                Some(c) => {
                    let mut probe = [0u8; 1];
                    tokio::select! {
                        msg = queue.recv() => msg,
                        _ = c.reader.read(&mut probe) => {
                            tracing::debug!(peer = self.to, "peer closed the raft connection");
                            conn = None;
                            continue;
                        }
                    }
                }
                None => queue.recv().await,
            };
            let Some(first) = first else { return };
            // At most MAX_RAFT_BATCH_BYTES of messages (and at least one)
            // per frame, so frames stay far below the receiver's limit.
            let mut bytes = first.compute_size() as usize;
            let mut batch = vec![first];
            while batch.len() < MAX_MESSAGES_PER_FRAME && bytes < MAX_RAFT_BATCH_BYTES {
                match queue.try_recv() {
                    Ok(msg) => {
                        bytes += msg.compute_size() as usize;
                        batch.push(msg);
                    }
                    Err(_) => break,
                }
            }
            if !self.fault.allows(self.from, self.to) {
                self.fail(batch);
                continue;
            }
            let frame = self.frame(&batch);
            if frame.len() > MAX_FRAME_BYTES {
                // Only a snapshot gets this big: the metadata outgrew what
                // one frame may carry (see kraft_rpc::MAX_FRAME_BYTES).
                tracing::error!(
                    peer = self.to,
                    bytes = frame.len(),
                    limit = MAX_FRAME_BYTES,
                    "raft frame too large for the CONTROLLER port; dropped"
                );
                self.fail(batch);
                continue;
            }
            // One retry on a fresh connection: the old one may have died
            // since the last message without our noticing.
            let mut sent = false;
            for _ in 0..2 {
                if conn.is_none() {
                    conn = self.connect().await;
                }
                let Some(c) = conn.as_mut() else { break };
                match c.writer.send(frame.clone()).await {
                    Ok(()) => {
                        sent = true;
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(peer = self.to, error = %e, "raft connection lost");
                        conn = None;
                    }
                }
            }
            if sent {
                backoff = MIN_BACKOFF;
                self.delivered(&batch);
            } else {
                self.fail(batch.into_iter().chain(drain(&mut queue)));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    async fn connect(&self) -> Option<PeerConnection> {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                let (reader, writer) = stream.into_split();
                Some(PeerConnection {
                    writer: FramedWrite::new(writer, frame_codec()),
                    reader,
                })
            }
            Ok(Err(e)) => {
                tracing::debug!(peer = self.to, addr = %self.addr, error = %e, "cannot connect to peer");
                None
            }
            Err(_) => None,
        }
    }

    fn frame(&self, batch: &[Message]) -> Bytes {
        let messages = batch
            .iter()
            .filter_map(|m| m.write_to_bytes().ok().map(Bytes::from))
            .collect();
        let request = ControllerRequest {
            correlation_id: 0,
            cluster_id: self.cluster_id.clone(),
            body: Some(controller_request::Body::Raft(RaftMessages { messages })),
        };
        Bytes::from(request.encode_to_vec())
    }

    fn delivered(&self, batch: &[Message]) {
        for msg in batch.iter().filter(|m| is_snapshot(m)) {
            let _ = self.reports.send(Input::SnapshotSent {
                to: msg.to,
                ok: true,
            });
        }
    }

    fn fail(&self, batch: impl IntoIterator<Item = Message>) {
        let to = raft_id(self.to);
        for msg in batch {
            if is_snapshot(&msg) {
                let _ = self.reports.send(Input::SnapshotSent { to, ok: false });
            }
        }
        let _ = self.reports.send(Input::Unreachable { to });
    }
}

fn drain(queue: &mut mpsc::Receiver<Message>) -> Vec<Message> {
    let mut out = Vec::new();
    while let Ok(msg) = queue.try_recv() {
        out.push(msg);
    }
    out
}

/// Decodes the Raft messages of one frame for node `to`, keeping those the
/// fault filter lets through and [`check_envelope`] accepts: sent by
/// another of `voters`, addressed to `to`, a kind peers exchange, soundly
/// shaped. Refused messages are dropped with a rate-limited warning.
pub fn decode_raft_messages(
    frame: &RaftMessages,
    to: i32,
    voters: &BTreeSet<i32>,
    fault: &dyn NetworkFault,
) -> Vec<Message> {
    frame
        .messages
        .iter()
        .filter_map(|bytes| match Message::parse_from_bytes(bytes) {
            Ok(msg) => Some(msg),
            Err(e) => {
                tracing::warn!(error = %e, "undecodable raft message dropped");
                None
            }
        })
        .filter(|msg| match check_envelope(msg, to, voters) {
            Ok(()) => true,
            Err(reason) => {
                dropped(msg, &reason);
                false
            }
        })
        .filter(|msg| fault.allows(node_id(msg.from), to))
        .collect()
}
