//! A segment's offset index (`.index`) and time index (`.timeindex`), in
//! Kafka's binary formats, held in memory and written to their files lazily.
//!
//! In: one entry per `index.interval.bytes` of appended batches (offset
//! index: the batch's last offset relative to the segment base, 4 bytes,
//! and the batch's byte position, 4 bytes; time index: the largest
//! timestamp so far, 8 bytes, and the relative offset of the batch holding
//! it, 4 bytes; all big-endian). At open, a file's bytes after a sanity
//! check. Out: lookups for reads and timestamp searches; new entries go to
//! the file at flush, roll and close ([`Index::persist`]). Both files are
//! rebuildable from the segment, so recovery rebuilds any it doubts.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// One fixed-size entry of an index file.
pub(crate) trait IndexEntry: Copy {
    const LEN: usize;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(bytes: &[u8]) -> Self;
    fn relative_offset(&self) -> u32;
}

/// Offset index entry: the last offset of a batch and where the batch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

/// Time index entry: the largest timestamp so far and the batch holding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_be_bytes(b)
}

impl IndexEntry for OffsetEntry {
    const LEN: usize = 8;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
    fn decode(bytes: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: u32_at(bytes, 0),
            position: u32_at(bytes, 4),
        }
    }
    fn relative_offset(&self) -> u32 {
        self.relative_offset
    }
}

impl IndexEntry for TimeEntry {
    const LEN: usize = 12;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn decode(bytes: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&bytes[0..8]);
        TimeEntry {
            timestamp: i64::from_be_bytes(ts),
            relative_offset: u32_at(bytes, 8),
        }
    }
    fn relative_offset(&self) -> u32 {
        self.relative_offset
    }
}

/// The entries of one index file and how much of them the file holds.
#[derive(Debug)]
pub(crate) struct Index<E> {
    entries: Vec<E>,
    /// The file's first `on_disk` entries equal ours; anything after them is stale.
    on_disk: usize,
    /// The file differs from `entries` (new entries, or it must shrink).
    dirty: bool,
}

pub(crate) type OffsetIndex = Index<OffsetEntry>;
pub(crate) type TimeIndex = Index<TimeEntry>;

impl<E: IndexEntry> Index<E> {
    /// An index whose file is to be (re)written from scratch.
    pub fn new() -> Self {
        Index {
            entries: Vec::new(),
            on_disk: 0,
            dirty: true,
        }
    }

    pub fn entries(&self) -> &[E] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn last(&self) -> Option<E> {
        self.entries.last().copied()
    }

    fn push(&mut self, entry: E) {
        self.entries.push(entry);
        self.dirty = true;
    }

    /// Drops the entries for offsets at or after `relative_end` (their batches are gone).
    pub fn truncate_from(&mut self, relative_end: u32) {
        let keep = self
            .entries
            .partition_point(|e| e.relative_offset() < relative_end);
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.on_disk = self.on_disk.min(keep);
            self.dirty = true;
        }
    }

    /// Reads an index file whose entries `check` accepts; `Err` says what is wrong.
    fn read_file(
        path: &Path,
        check: impl Fn(Option<&E>, &E) -> Result<(), String>,
    ) -> Result<Self, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if bytes.len() % E::LEN != 0 {
            return Err(format!(
                "{} bytes is not a multiple of the entry size {}",
                bytes.len(),
                E::LEN
            ));
        }
        let mut entries: Vec<E> = Vec::with_capacity(bytes.len() / E::LEN);
        for chunk in bytes.chunks_exact(E::LEN) {
            let entry = E::decode(chunk);
            check(entries.last(), &entry)
                .map_err(|reason| format!("entry {}: {reason}", entries.len()))?;
            entries.push(entry);
        }
        let on_disk = entries.len();
        Ok(Index {
            entries,
            on_disk,
            dirty: false,
        })
    }

    /// Writes what the file lacks (and cuts what it should no longer hold).
    /// Returns whether the file changed (and so needs an fsync).
    pub fn persist(&mut self, path: &Path) -> io::Result<bool> {
        if !self.dirty {
            return Ok(false);
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let start = (self.on_disk * E::LEN) as u64;
        file.set_len(start)?;
        let mut bytes = Vec::with_capacity((self.entries.len() - self.on_disk) * E::LEN);
        for entry in &self.entries[self.on_disk..] {
            entry.encode(&mut bytes);
        }
        file.write_all_at(&bytes, start)?;
        self.on_disk = self.entries.len();
        self.dirty = false;
        Ok(true)
    }
}

impl OffsetIndex {
    /// Loads `.index`, checking entries increase and point inside a segment
    /// of `segment_len` bytes holding relative offsets up to `max_relative`.
    pub fn load(path: &Path, segment_len: u64, max_relative: Option<u32>) -> Result<Self, String> {
        Self::read_file(path, |prev, e| {
            if u64::from(e.position) >= segment_len {
                return Err(format!(
                    "position {} is past the segment end {segment_len}",
                    e.position
                ));
            }
            if max_relative.is_some_and(|max| e.relative_offset > max) {
                return Err(format!(
                    "relative offset {} is past the segment",
                    e.relative_offset
                ));
            }
            match prev {
                Some(p) if e.relative_offset <= p.relative_offset || e.position <= p.position => {
                    Err("entries do not increase".to_string())
                }
                _ => Ok(()),
            }
        })
    }

    pub fn append(&mut self, relative_offset: u32, position: u32) {
        self.push(OffsetEntry {
            relative_offset,
            position,
        });
    }

    /// The position of the batch holding the largest indexed offset at or
    /// before `relative_offset`: a batch boundary from which to scan. 0 if none.
    pub fn lookup(&self, relative_offset: u32) -> u32 {
        let at = self
            .entries
            .partition_point(|e| e.relative_offset <= relative_offset);
        at.checked_sub(1).map_or(0, |i| self.entries[i].position)
    }
}

impl TimeIndex {
    /// Loads `.timeindex`, checking timestamps and offsets increase.
    pub fn load(path: &Path, max_relative: Option<u32>) -> Result<Self, String> {
        Self::read_file(path, |prev, e| {
            if max_relative.is_some_and(|max| e.relative_offset > max) {
                return Err(format!(
                    "relative offset {} is past the segment",
                    e.relative_offset
                ));
            }
            match prev {
                Some(p) if e.timestamp <= p.timestamp || e.relative_offset < p.relative_offset => {
                    Err("entries do not increase".to_string())
                }
                _ => Ok(()),
            }
        })
    }

    /// Appends `(timestamp, relative_offset)` if it raises the largest timestamp.
    pub fn maybe_append(&mut self, timestamp: i64, relative_offset: u32) {
        if timestamp < 0 || self.last().is_some_and(|last| last.timestamp >= timestamp) {
            return;
        }
        self.push(TimeEntry {
            timestamp,
            relative_offset,
        });
    }

    /// The last entry with a timestamp below `timestamp`: every batch up to
    /// its offset is older, so a search for `timestamp` can start there.
    pub fn last_before(&self, timestamp: i64) -> Option<TimeEntry> {
        let at = self.entries.partition_point(|e| e.timestamp < timestamp);
        at.checked_sub(1).map(|i| self.entries[i])
    }
}

/// Opens `path` and fsyncs it.
pub(crate) fn sync_file(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}
