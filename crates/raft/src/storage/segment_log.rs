//! [`SegmentLog`]: the on-disk log the Raft thread writes. It knows every
//! segment file and the byte offset of every entry after the snapshot, so a
//! conflicting suffix is cut at the exact frame where it starts.
//!
//! Writes go to the OS only; [`SegmentLog::sync`] makes them durable. Two
//! operations sync on their own because recovery relies on it:
//! - rolling to a new segment first fsyncs the full one, so every segment but
//!   the last is always complete on disk (a torn tail can only be in the last);
//! - cutting a conflicting suffix fsyncs the truncated file before anything
//!   is written after it, so stale frames can never reappear behind new ones.
//!
//! Deleting segments (cutting a suffix, installing a leader's snapshot) goes
//! newest first, one durable deletion at a time, so that a crash part way
//! leaves a prefix of the log: recovery reads it as the log it was, or drops
//! it as predating the snapshot. Oldest first would leave a hole at the
//! start or in the middle, which recovery must refuse as lost entries.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use raft::eraftpb::Entry;

use super::fsutil::{io_err, remove_file, sync_dir};
use super::segment::{self, HEADER_LEN};
use super::StorageError;

/// One segment file.
#[derive(Debug, Clone)]
pub(crate) struct SegmentFile {
    pub base: u64,
    pub path: PathBuf,
    /// Bytes written so far (header included).
    pub len: u64,
}

pub(crate) struct SegmentLog {
    dir: PathBuf,
    segment_bytes: u64,
    /// Sorted by base; the last one is the active segment.
    segments: Vec<SegmentFile>,
    /// Append handle on the last segment.
    active: Option<File>,
    /// Index of the entry whose offset is `positions[0]`.
    first_index: u64,
    /// Frame offset (in its segment) of each entry from `first_index` on.
    positions: VecDeque<u64>,
    /// The active segment has writes not yet fsynced.
    active_dirty: bool,
    /// Segment files were created or deleted since the last directory fsync.
    dir_dirty: bool,
}

impl SegmentLog {
    /// A log over recovered `segments` (sorted, complete, the last one
    /// opened for appending) holding entries `first_index..` at `positions`.
    pub fn new(
        dir: &Path,
        segment_bytes: u64,
        segments: Vec<SegmentFile>,
        first_index: u64,
        positions: VecDeque<u64>,
    ) -> Result<SegmentLog, StorageError> {
        let active = match segments.last() {
            Some(seg) => Some(open_append(&seg.path)?),
            None => None,
        };
        Ok(SegmentLog {
            dir: dir.to_path_buf(),
            segment_bytes: segment_bytes.max(1),
            segments,
            active,
            first_index,
            positions,
            active_dirty: false,
            dir_dirty: false,
        })
    }

    /// The index the next appended entry must have.
    pub fn next_index(&self) -> u64 {
        self.first_index + self.positions.len() as u64
    }

    /// Writes `entries` (consecutive, the first at [`Self::next_index`]) to
    /// the OS, rolling to a new segment whenever the active one has reached
    /// the size limit.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let mut rest = entries;
        while let Some(first) = rest.first() {
            let seg_len = match self.segments.last() {
                Some(seg) => seg.len,
                None => {
                    self.create_segment(first.index)?;
                    HEADER_LEN
                }
            };
            let mut buf = Vec::new();
            let mut offsets = Vec::new();
            for entry in rest {
                let used = seg_len + buf.len() as u64;
                // A fresh segment always takes at least one entry.
                if used >= self.segment_bytes && used > HEADER_LEN {
                    break;
                }
                offsets.push(used);
                segment::encode_frame(entry, &mut buf)?;
            }
            self.write_active(&buf, &offsets)?;
            rest = &rest[offsets.len()..];
            if let Some(next) = rest.first() {
                self.roll(next.index)?;
            }
        }
        Ok(())
    }

    /// Removes entries `index..` from disk: deletes the segments after the one
    /// holding `index` (see [`Self::delete_newest_first`]), then truncates
    /// that one at its frame and fsyncs it.
    pub fn truncate_from(&mut self, index: u64) -> Result<(), StorageError> {
        if index >= self.next_index() {
            return Ok(());
        }
        let keep = index.saturating_sub(self.first_index) as usize;
        let Some(&offset) = self.positions.get(keep) else {
            return Ok(());
        };
        let Some(k) = self.segments.iter().rposition(|s| s.base <= index) else {
            return Ok(());
        };
        self.active = None;
        self.delete_newest_first(k + 1)?;
        let seg = &mut self.segments[k];
        let file = open_append(&seg.path)?;
        file.set_len(offset)
            .and_then(|()| file.sync_data())
            .map_err(io_err(&seg.path))?;
        seg.len = offset;
        self.active = Some(file);
        self.positions.truncate(keep);
        Ok(())
    }

    /// Forgets entries `..=index` (covered by a durable snapshot) and deletes
    /// the segments holding nothing else. The active segment is kept.
    pub fn compact_to(&mut self, index: u64) -> Result<(), StorageError> {
        if index >= self.first_index {
            let drop = (index + 1 - self.first_index).min(self.positions.len() as u64);
            self.positions.drain(..drop as usize);
            self.first_index += drop;
        }
        let mut removed = false;
        while self.segments.len() > 1 && self.segments[1].base <= index + 1 {
            let seg = self.segments.remove(0);
            remove_file(&seg.path)?;
            removed = true;
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Deletes every segment (a snapshot from the leader replaced the log;
    /// see [`Self::delete_newest_first`]); the next entry appended will be
    /// `next_index`.
    pub fn clear(&mut self, next_index: u64) -> Result<(), StorageError> {
        self.active = None;
        self.delete_newest_first(0)?;
        self.positions.clear();
        self.first_index = next_index;
        self.active_dirty = false;
        self.dir_dirty = false;
        Ok(())
    }

    /// Deletes the segments from the `from`-th on, newest first, each
    /// deletion made durable (directory fsync) before the next, so that a
    /// crash at any point leaves a prefix of the log on disk: a log recovery
    /// accepts, never one with a hole. The directory is fsynced on return.
    fn delete_newest_first(&mut self, from: usize) -> Result<(), StorageError> {
        while self.segments.len() > from {
            if let Some(seg) = self.segments.last() {
                remove_segment(&seg.path)?;
                sync_dir(&self.dir)?;
            }
            self.segments.pop();
        }
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        Ok(())
    }

    /// Makes every appended entry durable: fsyncs the active segment and,
    /// if segments were created, the directory.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        if self.active_dirty {
            if let (Some(file), Some(seg)) = (&self.active, self.segments.last()) {
                file.sync_data().map_err(io_err(&seg.path))?;
            }
            self.active_dirty = false;
        }
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        Ok(())
    }

    fn write_active(&mut self, buf: &[u8], offsets: &[u64]) -> Result<(), StorageError> {
        if buf.is_empty() {
            return Ok(());
        }
        let Some(seg) = self.segments.last_mut() else {
            return Err(StorageError::Io {
                path: self.dir.clone(),
                source: std::io::Error::other("no active segment to write to"),
            });
        };
        // The handle is gone only if an earlier truncation failed half way.
        let file = match &mut self.active {
            Some(file) => file,
            None => self.active.insert(open_append(&seg.path)?),
        };
        if let Err(e) = file.write_all(buf) {
            // Best effort: do not leave half a batch behind the known end.
            let _ = file.set_len(seg.len);
            return Err(io_err(&seg.path)(e));
        }
        seg.len += buf.len() as u64;
        self.positions.extend(offsets);
        self.active_dirty = true;
        Ok(())
    }

    /// Seals the active segment (fsync) and starts a new one at `base`.
    fn roll(&mut self, base: u64) -> Result<(), StorageError> {
        self.sync()?;
        self.create_segment(base)
    }

    fn create_segment(&mut self, base: u64) -> Result<(), StorageError> {
        let path = self.dir.join(segment::segment_file_name(base));
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io_err(&path))?;
        file.set_len(0)
            .and_then(|()| file.write_all(&segment::header()))
            .map_err(io_err(&path))?;
        self.segments.push(SegmentFile {
            base,
            path,
            len: HEADER_LEN,
        });
        self.active = Some(file);
        self.active_dirty = true;
        self.dir_dirty = true;
        Ok(())
    }
}

/// Deletes one segment file. Tests can make it fail as a crash would stop
/// a series of deletions (see [`crash`]).
fn remove_segment(path: &Path) -> Result<(), StorageError> {
    #[cfg(test)]
    crash::before_deletion(path)?;
    remove_file(path)
}

/// Opens an existing segment for appending at its end.
pub(crate) fn open_append(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io_err(path))
}

/// A test-only crash point: stops a series of segment deletions part way,
/// leaving on disk what a crash at that moment would.
#[cfg(test)]
pub(crate) mod crash {
    use std::cell::Cell;
    use std::path::Path;

    use super::StorageError;

    thread_local! {
        static DELETIONS_LEFT: Cell<Option<usize>> = const { Cell::new(None) };
    }

    /// After `n` more segment deletions on this thread, the next one fails
    /// (and deletes nothing); `None` disarms.
    pub(crate) fn after_deletions(n: Option<usize>) {
        DELETIONS_LEFT.with(|left| left.set(n));
    }

    pub(super) fn before_deletion(path: &Path) -> Result<(), StorageError> {
        DELETIONS_LEFT.with(|left| match left.get() {
            Some(0) => Err(StorageError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other("simulated crash"),
            }),
            Some(n) => {
                left.set(Some(n - 1));
                Ok(())
            }
            None => Ok(()),
        })
    }
}
