//! Producer-state snapshots, as Kafka's `<offset>.snapshot` files: the
//! producer state of every batch below `offset`, so opening a log reads
//! only the batches after the latest snapshot instead of the whole log.
//!
//! In: [`write`] when a segment rolls (the new segment's base offset) and
//! when the log closes (its end), both under the writer lock. Out: at open,
//! [`latest_at_or_below`] gives the newest readable snapshot at or below
//! the recovered log end; truncation deletes the snapshots above the cut
//! ([`delete_above`]), retention those below the new log start
//! ([`delete_below`]). A snapshot that does not read back (a crash while it
//! was written) is skipped with a warning: the scan then starts earlier.
//!
//! The file is our own checksummed container (`state_file.rs`), not
//! Kafka's schema. Payload (big-endian): a count of producers (u32), then
//! per producer its id (i64), epoch (i16), last timestamp (i64), a count of
//! batches (u8) and per batch first/last sequence (i32 each), first/last
//! offset and timestamp (i64 each). Version 2 (written since
//! transactions) adds after each producer's batches the first offset of its
//! open transaction (i64, -1 for none) and its coordinator epoch (i32);
//! version 1 files still read, as producers with no open transaction.

use std::collections::VecDeque;
use std::fs;
use std::path::Path;

use super::{BatchMetadata, ProducerEntry, ProducerStates, BATCHES_TO_RETAIN};
use crate::error::{io_err, LogError};
use crate::state_file::{read_checksummed, write_checksummed};
use crate::util::{parse_segment_name, segment_file};

pub(crate) const SNAPSHOT_SUFFIX: &str = "snapshot";
const MAGIC: &[u8; 4] = b"KRPD";
const VERSION: u16 = 2;
/// Before transactions: no open transaction, no coordinator epoch.
const VERSION_1: u16 = 1;
const BATCH_LEN: usize = 4 + 4 + 8 + 8 + 8;

fn name(offset: i64) -> String {
    format!("{offset:020}.{SNAPSHOT_SUFFIX}")
}

/// Writes the state of every batch below `offset` as `<offset>.snapshot`.
pub(crate) fn write(dir: &Path, offset: i64, states: &ProducerStates) -> Result<(), LogError> {
    let mut payload = Vec::with_capacity(4 + states.len() * (31 + BATCHES_TO_RETAIN * BATCH_LEN));
    payload.extend_from_slice(&(states.len() as u32).to_be_bytes());
    for (id, entry) in states.iter() {
        payload.extend_from_slice(&id.to_be_bytes());
        payload.extend_from_slice(&entry.epoch.to_be_bytes());
        payload.extend_from_slice(&entry.last_timestamp.to_be_bytes());
        payload.push(entry.batches.len() as u8);
        for b in &entry.batches {
            payload.extend_from_slice(&b.first_seq.to_be_bytes());
            payload.extend_from_slice(&b.last_seq.to_be_bytes());
            payload.extend_from_slice(&b.first_offset.to_be_bytes());
            payload.extend_from_slice(&b.last_offset.to_be_bytes());
            payload.extend_from_slice(&b.timestamp.to_be_bytes());
        }
        let txn = entry.current_txn_first_offset.unwrap_or(-1);
        payload.extend_from_slice(&txn.to_be_bytes());
        payload.extend_from_slice(&entry.coordinator_epoch.to_be_bytes());
    }
    write_checksummed(dir, &name(offset), MAGIC, VERSION, &payload)
}

/// Reads `bytes` field by field; `None` when they run out.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.bytes.split_first_chunk::<N>()?;
        self.bytes = rest;
        Some(*head)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }
}

fn decode(payload: &[u8], version: u16) -> Option<ProducerStates> {
    let mut r = Reader { bytes: payload };
    let count = u32::from_be_bytes(r.take()?);
    let mut states = ProducerStates::new();
    for _ in 0..count {
        let id = r.i64()?;
        let epoch = i16::from_be_bytes(r.take()?);
        let last_timestamp = r.i64()?;
        let [n] = r.take::<1>()?;
        if usize::from(n) > BATCHES_TO_RETAIN {
            return None;
        }
        let mut batches = VecDeque::with_capacity(usize::from(n));
        for _ in 0..n {
            batches.push_back(BatchMetadata {
                first_seq: r.i32()?,
                last_seq: r.i32()?,
                first_offset: r.i64()?,
                last_offset: r.i64()?,
                timestamp: r.i64()?,
            });
        }
        let (current_txn_first_offset, coordinator_epoch) = if version == VERSION_1 {
            (None, -1)
        } else {
            let first = r.i64()?;
            (Some(first).filter(|o| *o >= 0), r.i32()?)
        };
        states.insert(
            id,
            ProducerEntry {
                epoch,
                batches,
                last_timestamp,
                current_txn_first_offset,
                coordinator_epoch,
            },
        );
    }
    r.bytes.is_empty().then_some(states)
}

/// The offsets of the snapshot files in `dir`, ascending.
fn offsets(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        if let Some((offset, SNAPSHOT_SUFFIX)) = name.to_str().and_then(parse_segment_name) {
            out.push(offset);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// The newest snapshot at or below `offset` that reads back whole, with
/// its offset. Unreadable ones are skipped with a warning.
pub(crate) fn latest_at_or_below(
    dir: &Path,
    offset: i64,
) -> Result<Option<(i64, ProducerStates)>, LogError> {
    for at in offsets(dir)?.into_iter().rev().filter(|at| *at <= offset) {
        let read = read_checksummed(dir, &name(at), MAGIC).and_then(|found| {
            let path = segment_file(dir, at, SNAPSHOT_SUFFIX);
            match found {
                Some((version @ (VERSION | VERSION_1), payload)) => decode(&payload, version)
                    .ok_or_else(|| LogError::corrupt(&path, 10, "payload does not decode")),
                Some((version, _)) => Err(LogError::corrupt(
                    &path,
                    4,
                    format!("unknown format version {version}"),
                )),
                None => Err(LogError::corrupt(&path, 0, "vanished")),
            }
        });
        match read {
            Ok(states) => return Ok(Some((at, states))),
            Err(e) => tracing::warn!(error = %e, "skipping an unreadable producer-state snapshot"),
        }
    }
    Ok(None)
}

fn delete_where(dir: &Path, doomed: impl Fn(i64) -> bool) -> Result<(), LogError> {
    for at in offsets(dir)?.into_iter().filter(|at| doomed(*at)) {
        let path = segment_file(dir, at, SNAPSHOT_SUFFIX);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&path)(e)),
            _ => {}
        }
    }
    Ok(())
}

/// Deletes the snapshots above `offset` (the log was cut there).
pub(crate) fn delete_above(dir: &Path, offset: i64) -> Result<(), LogError> {
    delete_where(dir, |at| at > offset)
}

/// Deletes the snapshots below `offset` (the new log start).
pub(crate) fn delete_below(dir: &Path, offset: i64) -> Result<(), LogError> {
    delete_where(dir, |at| at < offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_snapshot_reads_as_producers_without_a_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let mut payload = Vec::new();
        payload.extend_from_slice(&1u32.to_be_bytes());
        payload.extend_from_slice(&7i64.to_be_bytes());
        payload.extend_from_slice(&3i16.to_be_bytes());
        payload.extend_from_slice(&1_000i64.to_be_bytes());
        payload.push(1);
        for v in [0i32, 4] {
            payload.extend_from_slice(&v.to_be_bytes());
        }
        for v in [10i64, 14, 1_000] {
            payload.extend_from_slice(&v.to_be_bytes());
        }
        write_checksummed(dir.path(), &name(15), MAGIC, VERSION_1, &payload).unwrap();
        let (at, states) = latest_at_or_below(dir.path(), 20).unwrap().unwrap();
        assert_eq!(at, 15);
        let entry = states.get(7).unwrap();
        assert_eq!((entry.epoch, entry.last_seq()), (3, Some(4)));
        assert_eq!(
            (entry.current_txn_first_offset, entry.coordinator_epoch),
            (None, -1)
        );
        // Written back, it is version 2 and keeps an open transaction.
        let mut states = states;
        let mut open = states.get(7).unwrap().clone();
        open.current_txn_first_offset = Some(12);
        open.coordinator_epoch = 4;
        states.insert(7, open);
        write(dir.path(), 16, &states).unwrap();
        let (_, back) = latest_at_or_below(dir.path(), 16).unwrap().unwrap();
        assert_eq!(back.ongoing(), vec![(7, 12)]);
        assert_eq!(back.get(7).unwrap().coordinator_epoch, 4);
    }
}
