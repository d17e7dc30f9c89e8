//! The aborted-transactions index of one segment, Kafka's `.txnindex`
//! (`TransactionIndex`): one entry per transaction whose ABORT marker is
//! in the segment, so a read_committed fetch can list the aborted
//! transactions that overlap what it returns.
//!
//! In: [`TxnIndex::push`] when an ABORT marker is appended (leader,
//! follower, or the producer-state rebuild at open), [`TxnIndex::truncate_from`]
//! when the log is cut. Out: [`TxnIndex::collect`] for fetches; the file,
//! written through the page cache at each push and fsynced with its
//! segment. Kafka's format: per entry version (i16, 0), producer id, first
//! offset, last offset (the marker's) and the last stable offset at its
//! completion (i64 each), big-endian, 34 bytes.
//!
//! Crash safety: the index is derived from its segment. Recovery marks the
//! index of every segment it scans (what was not known fsynced) stale, and
//! a missing or unreadable file is stale too; the producer-state rebuild
//! (`producer_state::load`) then rewrites it from the segment's markers.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::batch::HEADER_LEN;
use crate::index::sync_file;

pub(crate) const TXN_INDEX_SUFFIX: &str = "txnindex";
const ENTRY_LEN: usize = 34;

/// An aborted transaction, as a fetch reports it and the index stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The offset of the ABORT marker.
    pub last_offset: i64,
    /// The last stable offset when the marker was written.
    pub last_stable_offset: i64,
}

impl From<crate::producer_state::CompletedTxn> for AbortedTxn {
    fn from(done: crate::producer_state::CompletedTxn) -> Self {
        AbortedTxn {
            producer_id: done.producer_id,
            first_offset: done.first_offset,
            last_offset: done.last_offset,
            last_stable_offset: done.last_stable_offset,
        }
    }
}

impl AbortedTxn {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&0i16.to_be_bytes());
        for v in [
            self.producer_id,
            self.first_offset,
            self.last_offset,
            self.last_stable_offset,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }

    fn decode(bytes: &[u8]) -> Option<AbortedTxn> {
        let field = |i: usize| {
            let at = 2 + i * 8;
            bytes
                .get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map(i64::from_be_bytes)
        };
        if bytes.get(..2)? != [0, 0] {
            return None;
        }
        Some(AbortedTxn {
            producer_id: field(0)?,
            first_offset: field(1)?,
            last_offset: field(2)?,
            last_stable_offset: field(3)?,
        })
    }
}

/// The entries of one segment's index, in memory and in its file.
#[derive(Debug)]
pub(crate) struct TxnIndex {
    path: PathBuf,
    entries: Vec<AbortedTxn>,
    /// Entries the file holds (a prefix of `entries`).
    on_disk: usize,
    /// The file changed since its last fsync.
    unsynced: bool,
    /// The entries may not match the segment: rebuild before use.
    stale: bool,
}

impl TxnIndex {
    /// The index of the segment at `base_offset` in `dir`, whose `.log` is
    /// `segment_len` bytes, read from its file; missing, unreadable, or
    /// longer than that many bytes of markers could index, empty and stale.
    pub fn load(dir: &Path, base_offset: i64, segment_len: u64) -> TxnIndex {
        let path = crate::util::segment_file(dir, base_offset, TXN_INDEX_SUFFIX);
        // Each entry stands for a marker batch of more than a header.
        let max_len = (segment_len / HEADER_LEN as u64 + 1) * ENTRY_LEN as u64;
        let read = File::open(&path)
            .and_then(|f| {
                let len = f.metadata()?.len();
                if len > max_len {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{len} bytes cannot index a {segment_len}-byte segment"),
                    ));
                }
                fs::read(&path)
            })
            .map(|bytes| {
                let entries: Option<Vec<_>> = bytes
                    .chunks(ENTRY_LEN)
                    .map(|c| {
                        (c.len() == ENTRY_LEN)
                            .then(|| AbortedTxn::decode(c))
                            .flatten()
                    })
                    .collect();
                entries
            });
        let (entries, stale) = match read {
            Ok(Some(entries)) => (entries, false),
            Ok(None) => {
                tracing::warn!(file = %path.display(), "transaction index does not decode; rebuilding it");
                (Vec::new(), true)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(file = %path.display(), error = %e, "cannot read a transaction index; rebuilding it");
                }
                (Vec::new(), true)
            }
        };
        let on_disk = if stale { usize::MAX } else { entries.len() };
        TxnIndex {
            path,
            entries,
            on_disk,
            unsynced: false,
            stale,
        }
    }

    /// A new, empty index for a new segment; its file is created by the
    /// first [`TxnIndex::persist`].
    pub fn empty(dir: &Path, base_offset: i64) -> TxnIndex {
        TxnIndex {
            path: crate::util::segment_file(dir, base_offset, TXN_INDEX_SUFFIX),
            entries: Vec::new(),
            on_disk: usize::MAX,
            unsynced: true,
            stale: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// Marks the entries as not to be trusted (recovery scanned the segment).
    pub fn mark_stale(&mut self) {
        self.stale = true;
    }

    /// Forgets every entry whose marker is at or after `offset`, and makes
    /// the index trusted again (the caller rebuilds from there).
    pub fn truncate_from(&mut self, offset: i64) {
        self.entries.retain(|e| e.last_offset < offset);
        self.stale = false;
    }

    pub fn push(&mut self, entry: AbortedTxn) {
        self.entries.push(entry);
    }

    /// Writes the entries to the file (page cache, no fsync): appends new
    /// ones, or rewrites it after a truncation or at creation.
    pub fn persist(&mut self) -> io::Result<()> {
        if self.on_disk == self.entries.len() {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        if self.on_disk > self.entries.len() {
            for e in &self.entries {
                e.encode(&mut bytes);
            }
            let mut file = File::create(&self.path)?;
            file.write_all(&bytes)?;
        } else {
            for e in &self.entries[self.on_disk..] {
                e.encode(&mut bytes);
            }
            let mut file = OpenOptions::new().append(true).open(&self.path)?;
            file.write_all(&bytes)?;
        }
        self.on_disk = self.entries.len();
        self.unsynced = true;
        Ok(())
    }

    /// fsyncs the file if it changed since the last fsync.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.unsynced {
            self.persist()?;
            sync_file(&self.path)?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Adds to `out` the entries that overlap `[from, upper)` (marker at or
    /// after `from`, first offset before `upper`). Returns whether the
    /// search is complete: an entry's last stable offset reached `upper`,
    /// so no later segment can hold a transaction that began before it
    /// (Kafka's `TxnIndexSearchResult.isComplete`).
    pub fn collect(&self, from: i64, upper: i64, out: &mut Vec<AbortedTxn>) -> bool {
        for e in &self.entries {
            if e.last_offset >= from && e.first_offset < upper {
                out.push(*e);
            }
            if e.last_stable_offset >= upper {
                return true;
            }
        }
        false
    }
}

/// Writes a whole index file of `entries` (page cache, no fsync).
pub(crate) fn write_entries(path: &Path, entries: &[AbortedTxn]) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(entries.len() * ENTRY_LEN);
    for e in entries {
        e.encode(&mut bytes);
    }
    fs::write(path, bytes)
}
