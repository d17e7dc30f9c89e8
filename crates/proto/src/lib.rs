//! Protobuf types for Kraft's own formats, generated at build time from
//! `proto/` at the workspace root.
//!
//! - [`metadata`]: metadata records (the `__cluster_metadata` log) and the
//!   snapshot file's header and footer.
//! - [`raft`]: the envelope Raft peers exchange and the durable quorum state.
//! - [`controller`]: requests and responses on a CONTROLLER listener.

#![forbid(unsafe_code)]

pub mod metadata {
    include!(concat!(env!("OUT_DIR"), "/kraft.metadata.rs"));
}

pub mod raft {
    include!(concat!(env!("OUT_DIR"), "/kraft.raft.rs"));
}

pub mod controller {
    include!(concat!(env!("OUT_DIR"), "/kraft.controller.rs"));
}

pub use prost::Message;
