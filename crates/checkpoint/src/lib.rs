//! Checkpoint files: whole snapshots of a state machine, one file each,
//! named `<index:020>-<term:020>.checkpoint`.
//!
//! The controllers keep them beside their Raft log (the Raft storage serves
//! the newest as its snapshot) and brokers keep them on their own, without a
//! log, so a restart does not replay the metadata log from zero. Their bytes
//! are opaque here: the state machine defines (and validates) the format.
//!
//! In: a directory, an (index, term) and the bytes ([`write_checkpoint`]).
//! Out: the checkpoints found in a directory ([`list`], [`read`],
//! [`read_latest_checkpoint`]), and old ones removed ([`retire_old`]).
//! Writes go through [`durable::write_atomic`] (temporary file, fsync,
//! rename, directory fsync), so a file with the final name is always
//! complete. Errors are [`CheckpointError`]s naming the file.
//!
//! Only the standard library does the work; nothing here knows Raft.

#![forbid(unsafe_code)]

mod checkpoint;
pub mod durable;
mod error;

pub use checkpoint::{
    checkpoint_file_name, exists, list, parse_file_name, read, read_latest_checkpoint, retire_old,
    write_checkpoint, CheckpointFile, CHECKPOINTS_KEPT,
};
pub use error::CheckpointError;
