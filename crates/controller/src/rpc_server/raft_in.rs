//! Raft traffic arriving on the CONTROLLER listener, on its way to the
//! Raft thread.
//!
//! In: a frame's `RaftMessages`. Each message is decoded and passes
//! `kraft_raft::transport::decode_raft_messages` (sender a configured voter
//! other than this node, addressed to this node, a kind peers exchange,
//! sound shape: see `kraft_raft::guard`). A MsgSnapshot must also carry a
//! whole metadata snapshot: its data decodes fully (every frame's crc, the
//! footer, every record replays) and its header names the message's index
//! and term, so nothing that would stop the node from loading it ever
//! reaches the disk. Out: the accepted messages, stepped into the Raft
//! thread (which checks them once more against its log, `check_state`).

use kraft_metadata::snapshot;
use kraft_proto::raft::RaftMessages;
use kraft_raft::guard::dropped;
use kraft_raft::transport::decode_raft_messages;
use kraft_raft::{Message, MessageType};

use super::RpcContext;

/// Steps the acceptable messages of `frame` into the Raft thread.
pub(super) async fn step_raft(ctx: &RpcContext, frame: &RaftMessages) {
    for msg in decode_raft_messages(frame, ctx.node_id, &ctx.voter_ids, ctx.fault.as_ref()) {
        let msg = if msg.get_msg_type() == MessageType::MsgSnapshot {
            // Decoding a whole snapshot is CPU work: off the async workers.
            let checked = tokio::task::spawn_blocking(move || {
                let verdict = check_snapshot_data(&msg);
                (msg, verdict)
            })
            .await;
            match checked {
                Ok((msg, Ok(()))) => msg,
                Ok((msg, Err(reason))) => {
                    dropped(&msg, &reason);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "snapshot check did not finish; message dropped");
                    continue;
                }
            }
        } else {
            msg
        };
        ctx.raft.step(msg);
    }
}

/// A peer's snapshot must be a complete metadata snapshot of the index and
/// term its Raft metadata names.
fn check_snapshot_data(msg: &Message) -> Result<(), String> {
    let raft_snapshot = msg.get_snapshot();
    let meta = raft_snapshot.get_metadata();
    let (header, _image) = snapshot::decode(raft_snapshot.get_data())
        .map_err(|e| format!("snapshot data is not a metadata snapshot: {e}"))?;
    if header.offset != meta.index || header.term != meta.term {
        return Err(format!(
            "snapshot data is of offset {} term {}, the message says {} term {}",
            header.offset, header.term, meta.index, meta.term
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use kraft_metadata::{MetadataDelta, MetadataImage};
    use kraft_proto::metadata::SnapshotHeader;

    use super::*;

    fn snapshot_message(index: u64, term: u64, data: Vec<u8>) -> Message {
        let mut msg = Message::default();
        msg.set_msg_type(MessageType::MsgSnapshot);
        let snap = msg.mut_snapshot();
        snap.data = data.into();
        snap.mut_metadata().index = index;
        snap.mut_metadata().term = term;
        msg
    }

    fn encoded(offset: u64, term: u64) -> Vec<u8> {
        let header = SnapshotHeader {
            offset,
            term,
            ..Default::default()
        };
        let mut delta = MetadataDelta::new(MetadataImage::empty());
        delta.set_offset(offset);
        snapshot::encode(&header, &delta.apply())
    }

    #[test]
    fn a_whole_snapshot_of_the_named_index_and_term_passes() {
        assert_eq!(
            check_snapshot_data(&snapshot_message(10, 2, encoded(10, 2))),
            Ok(())
        );
    }

    #[test]
    fn garbage_truncated_or_mislabelled_data_is_refused() {
        assert!(check_snapshot_data(&snapshot_message(10, 2, b"garbage".to_vec())).is_err());
        let mut truncated = encoded(10, 2);
        truncated.truncate(truncated.len() - 1);
        assert!(check_snapshot_data(&snapshot_message(10, 2, truncated)).is_err());
        assert!(check_snapshot_data(&snapshot_message(11, 2, encoded(10, 2))).is_err());
        assert!(check_snapshot_data(&snapshot_message(10, 3, encoded(10, 2))).is_err());
    }
}
