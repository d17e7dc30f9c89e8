//! The `controller_rpc` target: a frame on the CONTROLLER port, decoded as
//! a `ControllerRequest`, and the Raft messages it may carry decoded and
//! checked as the listener does before anything reaches raft-rs
//! (`kraft_raft::guard`).
//!
//! In: any bytes (a frame's payload, without its length prefix). Out:
//! nothing; decode errors are fine, a panic is not.

use std::collections::BTreeSet;

use kraft_proto::controller::controller_request::Body;
use kraft_proto::controller::{ControllerRequest, FetchMetadataRequest};
use kraft_proto::raft::RaftMessages;
use kraft_raft::transport::decode_raft_messages;
use kraft_raft::{Message, MessageType, NoFaults};
use prost::Message as _;
use protobuf::Message as _;

pub fn controller_rpc(data: &[u8]) {
    let Ok(request) = ControllerRequest::decode(data) else {
        return;
    };
    if let Some(Body::Raft(messages)) = &request.body {
        // As node 1 of voters {1, 2, 3}: the listener's checks, before Raft.
        let voters = BTreeSet::from([1, 2, 3]);
        let _ = decode_raft_messages(messages, 1, &voters, &NoFaults);
    }
}

pub fn seeds() -> Vec<Vec<u8>> {
    let mut heartbeat = Message::default();
    heartbeat.set_msg_type(MessageType::MsgHeartbeat);
    heartbeat.from = 2;
    heartbeat.to = 1;
    heartbeat.term = 3;
    heartbeat.commit = 10;
    let raft = ControllerRequest {
        cluster_id: "c".into(),
        correlation_id: 1,
        body: Some(Body::Raft(RaftMessages {
            messages: heartbeat
                .write_to_bytes()
                .map(|b| vec![b.into()])
                .unwrap_or_default(),
        })),
    };
    let fetch = ControllerRequest {
        cluster_id: "c".into(),
        correlation_id: 2,
        body: Some(Body::FetchMetadata(FetchMetadataRequest {
            node_id: 2,
            ..Default::default()
        })),
    };
    vec![raft.encode_to_vec(), fetch.encode_to_vec()]
}
