//! The framing of every CONTROLLER connection: a u32 big-endian length, then
//! that many bytes of protobuf (`ControllerRequest` one way,
//! `ControllerResponse` the other). Raft peers, brokers and tools all use
//! [`frame_codec`].
//!
//! A frame announcing more than [`MAX_FRAME_BYTES`] is an error (the
//! connection closes). Nothing is reserved for a frame from its header:
//! the read buffer grows only as bytes arrive, so a 4-byte header that
//! announces a large frame costs nothing until its sender actually sends
//! that much.
//!
//! How [`MAX_FRAME_BYTES`] is sized, from the largest frames that really
//! travel:
//!
//! - Raft: the peer transport packs at most [`MAX_RAFT_BATCH_BYTES`] of
//!   messages into a frame (and at least one); a MsgAppend carries at most
//!   about 1 MiB of entries (`max_size_per_msg`) or one entry, and one entry
//!   is one controller write of at most 10,000 records (a few MiB). The
//!   exception is MsgSnapshot, which carries the whole metadata snapshot:
//!   a snapshot larger than the cap cannot be sent to a lagging voter (the
//!   sender logs it), so the cap bounds the metadata a quorum can hold.
//! - FetchMetadata and FetchSnapshot answers: the listener serves at most
//!   [`MAX_FETCH_BYTES`] per answer (brokers ask for 4 MiB), plus at least
//!   one entry.
//! - Everything else (registrations, heartbeats, topic and config admin)
//!   is far smaller.

use std::io;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// The largest frame either side accepts: 64 MiB, room for a metadata
/// snapshot in one Raft message (see the module docs).
pub const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;

/// The most message bytes the Raft transport packs into one frame.
pub const MAX_RAFT_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// The most bytes of entries or snapshot one FetchMetadata or
/// FetchSnapshot answer carries, whatever the request asks.
pub const MAX_FETCH_BYTES: u32 = 8 * 1024 * 1024;

const HEADER: usize = 4;

/// Length-prefixed frames, at most `max` bytes each, read without
/// reserving what a header announces.
#[derive(Clone, Copy, Debug)]
pub struct FrameCodec {
    max: usize,
}

impl FrameCodec {
    /// Frames of at most `max` bytes.
    pub fn new(max: usize) -> FrameCodec {
        FrameCodec { max }
    }
}

/// The framing of every CONTROLLER connection: a u32 big-endian length, then
/// that many bytes of protobuf; at most [`MAX_FRAME_BYTES`].
pub fn frame_codec() -> FrameCodec {
    FrameCodec::new(MAX_FRAME_BYTES)
}

fn too_large(len: usize, max: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("a frame of {len} bytes exceeds the limit of {max}"),
    )
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, io::Error> {
        let Some(header) = src.get(..HEADER) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > self.max {
            return Err(too_large(len, self.max));
        }
        if src.len() < HEADER + len {
            // No reserve here: the buffer grows as bytes arrive.
            return Ok(None);
        }
        src.advance(HEADER);
        Ok(Some(src.split_to(len)))
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = io::Error;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), io::Error> {
        if frame.len() > self.max {
            return Err(too_large(frame.len(), self.max));
        }
        dst.reserve(HEADER + frame.len());
        dst.put_u32(frame.len() as u32);
        dst.put_slice(&frame);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_arrive_in_pieces() {
        let mut codec = FrameCodec::new(16);
        let mut wire = BytesMut::new();
        codec
            .encode(Bytes::from_static(b"hello"), &mut wire)
            .unwrap();
        codec.encode(Bytes::new(), &mut wire).unwrap();
        let mut src = BytesMut::new();
        src.extend_from_slice(&wire[..6]);
        assert_eq!(codec.decode(&mut src).unwrap(), None);
        src.extend_from_slice(&wire[6..]);
        assert_eq!(&codec.decode(&mut src).unwrap().unwrap()[..], b"hello");
        assert_eq!(&codec.decode(&mut src).unwrap().unwrap()[..], b"");
        assert_eq!(codec.decode(&mut src).unwrap(), None);
    }

    #[test]
    fn a_header_over_the_limit_is_an_error_and_reserves_nothing() {
        let mut codec = FrameCodec::new(16);
        let mut src = BytesMut::new();
        src.put_u32(17);
        assert!(codec.decode(&mut src).is_err());
        assert!(codec.encode(Bytes::from(vec![0; 17]), &mut src).is_err());

        // Under the limit but not yet arrived: the buffer stays small.
        let mut codec = frame_codec();
        let mut src = BytesMut::with_capacity(64);
        src.put_u32(MAX_FRAME_BYTES as u32);
        src.put_slice(&[0; 16]);
        assert_eq!(codec.decode(&mut src).unwrap(), None);
        assert!(src.capacity() < 1024 * 1024, "{} reserved", src.capacity());
    }
}
