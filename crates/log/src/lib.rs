//! Partition logs: Kafka's on-disk log for one partition, kept as Kafka
//! keeps it, in segments of v2 record batches stored exactly as received.
//!
//! A partition directory holds `<20-digit base offset>.log` segments (pure
//! Kafka batches, each with its own CRC), their `.index` (relative offset,
//! position) and `.timeindex` (timestamp, relative offset) in Kafka's
//! binary formats, a `leader-epoch-checkpoint`, a `partition.state` file
//! (high watermark, log start offset, recovery point, clean-shutdown flag),
//! `partition.metadata` (the topic id), `<offset>.snapshot` files of the
//! producers' state ([`producer_state`]) and each segment's `.txnindex` of
//! aborted transactions (Kafka's format). Our own files carry a format
//! version and a CRC and are replaced atomically; indexes are rebuildable.
//!
//! Data flow: the broker's produce path hands a producer's `records` to
//! [`PartitionLog::append_as_leader`], which validates the batch header and
//! CRC, walks the records once against the header (a compressed batch is
//! decompressed as a capped stream for that, and stays compressed), stamps
//! offsets and the leader epoch into a copy of the 61-byte header and
//! writes header + the untouched rest with one syscall. Stored batches are
//! decoded only through [`batch::for_each_record`], bounded the same way. Fetch calls
//! [`PartitionLog::read`], which preads whole batches back as `Bytes`
//! without taking the append lock (at read_committed only below
//! [`PartitionLog::last_stable_offset`], with
//! [`PartitionLog::aborted_transactions`] for the answer). A transaction
//! coordinator's COMMIT and ABORT markers go through
//! [`PartitionLog::append_marker`]. Replication uses
//! [`PartitionLog::append_as_follower`], [`PartitionLog::truncate_to`] and
//! [`PartitionLog::end_offset_for_epoch`]. Compaction
//! (`cleanup.policy=compact`) is [`PartitionLog::clean`], run by the
//! broker's cleaner threads when [`PartitionLog::cleanable`] says a log is
//! dirty enough; it rewrites sealed segments beside the live ones and swaps
//! them in under the writer lock, keeping every offset (`cleaner`).
//!
//! # What is durable when
//!
//! Nothing on the append path fsyncs (Kafka's default too: durability
//! comes from replication).
//! - When `append_as_leader`/`append_as_follower` returns, the batch is in
//!   the OS page cache: it survives a crash of the process (kill -9), not a
//!   power loss or kernel crash.
//! - It survives power loss once [`PartitionLog::flush`] has returned after
//!   it. The broker calls `flush` when [`PartitionLog::flush_due`] says so:
//!   after `flush.messages` records or `flush.ms` since the last flush
//!   (both off by default), and whenever a segment has rolled (its fsync is
//!   deferred to that flush). [`PartitionLog::close`] flushes too.
//! - The recovery point (everything below it fsynced) moves at each flush
//!   and is saved by [`PartitionLog::checkpoint`] and `close` (and lowered
//!   at once by a truncation below it); after an unclean stop, recovery
//!   scans and validates every segment from the one holding it, truncates
//!   the log at the first invalid batch past it (what follows may be
//!   unflushed pages), reports an invalid batch below it as
//!   [`LogError::Corrupt`], and fsyncs what it scanned.
//! - The high watermark is saved only by `checkpoint` and `close`; after a
//!   crash it comes back as last checkpointed, clamped to the recovered log.
//! - The leader-epoch checkpoint is written and fsynced when an epoch
//!   starts (once per leader change), before the batch that starts it.
//! - Truncation fsyncs the cut segment, so truncated data cannot reappear.
//!
//! # A failed fsync
//!
//! A flush whose fsync (or index write) fails takes the log offline and is
//! never retried: after a failed fsync the kernel may already have dropped
//! the dirty pages, so a later fsync that succeeds proves nothing (Kafka
//! likewise treats any I/O error as the loss of the whole log dir). The log
//! refuses writes, flushes and checkpoints until it is reopened, which
//! recovers it from what is really on disk. [`LogError::is_storage_failure`]
//! tells the broker which errors mean this; [`DiskFault`] injects them.

#![forbid(unsafe_code)]

mod append;
pub mod batch;
mod cleaner;
mod config;
mod error;
mod fault;
mod index;
mod leader_epoch;
mod partition_log;
mod partition_metadata;
pub mod producer_state;
mod recovery;
mod retention;
mod segment;
mod state_file;
mod timestamp_lookup;
mod transactions;
mod truncation;
mod txn_index;
mod util;

#[cfg(test)]
mod tests;

pub use batch::{BatchHeader, TxnMarker};
pub use cleaner::{CleanStats, Cleanable, CompactionConfig};
pub use config::{LogConfig, TimestampType};
pub use error::{BatchError, LogError};
pub use fault::DiskFault;
pub use partition_log::{LogAppendInfo, PartitionLog, ReadBound, ReadResult, TimestampOffset};
pub use partition_metadata::{delete_partition_dir, PartitionMetadata};
pub use txn_index::AbortedTxn;
