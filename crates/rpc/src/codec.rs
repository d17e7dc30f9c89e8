//! The framing of every CONTROLLER connection: a u32 big-endian length, then
//! that many bytes of protobuf (`ControllerRequest` one way,
//! `ControllerResponse` the other). Raft peers, brokers and tools all use
//! [`frame_codec`]; frames larger than [`MAX_FRAME_BYTES`] are refused.

use tokio_util::codec::LengthDelimitedCodec;

/// The largest frame either side accepts: a snapshot travels in one message.
pub const MAX_FRAME_BYTES: usize = 512 * 1024 * 1024;

/// The framing of every CONTROLLER connection: a u32 big-endian length, then
/// that many bytes of protobuf.
pub fn frame_codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME_BYTES)
        .new_codec()
}
