//! One segment: a `.log` file of whole record batches plus its offset,
//! time and aborted-transaction indexes (`txn_index.rs`), covering offsets
//! from its base offset.
//!
//! In: batches from the append path ([`Segment::write`] then
//! [`Segment::commit`], called under the partition's append lock), or an
//! existing file from recovery. Out: batch bytes for reads (pread, no lock
//! on the append path), batch headers for timestamp searches, truncation,
//! fsync (reads are in `read.rs`). `size` is the end of the last whole batch: it moves only after a
//! batch is fully written, so a concurrent reader never sees a partial one.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use crate::error::{io_err, LogError};
use crate::index::{sync_file, OffsetIndex, TimeIndex};
use crate::txn_index::{AbortedTxn, TxnIndex};
use crate::util::{
    lock, read, read_at_most, segment_file, write, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX,
};

/// Bytes read at a time when walking batch headers.
mod read;

const SCAN_CHUNK: usize = 16 * 1024;

/// A segment's indexes and its largest timestamp.
#[derive(Debug)]
pub(crate) struct SegmentIndexes {
    pub offsets: OffsetIndex,
    pub times: TimeIndex,
    /// The largest batch maxTimestamp in the segment, -1 if none.
    pub max_timestamp: i64,
    /// The last offset of the first batch carrying `max_timestamp`, -1 if none.
    pub max_timestamp_offset: i64,
}

impl SegmentIndexes {
    pub fn empty() -> Self {
        SegmentIndexes {
            offsets: OffsetIndex::new(),
            times: TimeIndex::new(),
            max_timestamp: -1,
            max_timestamp_offset: -1,
        }
    }
}

/// What the append path knows of each batch it writes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AppendedBatch {
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub size: u64,
}

pub(crate) struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    index_path: PathBuf,
    time_index_path: PathBuf,
    /// Read with pread by anyone; written at its cursor by the appender only.
    file: File,
    /// End of the last whole batch.
    size: AtomicU64,
    indexes: RwLock<SegmentIndexes>,
    /// The index files were written since their last fsync.
    indexes_unsynced: AtomicBool,
    /// The aborted transactions whose marker is in this segment.
    txn: Mutex<TxnIndex>,
}

impl Segment {
    /// Creates an empty segment at `base_offset` (replacing leftover files).
    pub fn create(dir: &Path, base_offset: i64) -> Result<Segment, LogError> {
        let log_path = segment_file(dir, base_offset, LOG_SUFFIX);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .map_err(io_err(&log_path))?;
        let mut segment = Segment::with_file(dir, base_offset, file, 0, SegmentIndexes::empty());
        segment.txn = Mutex::new(TxnIndex::empty(dir, base_offset));
        segment.persist_indexes()?;
        Ok(segment)
    }

    /// Wraps an opened, recovered `.log` file of `len` whole-batch bytes.
    pub fn with_file(
        dir: &Path,
        base_offset: i64,
        file: File,
        len: u64,
        indexes: SegmentIndexes,
    ) -> Segment {
        Segment {
            base_offset,
            log_path: segment_file(dir, base_offset, LOG_SUFFIX),
            index_path: segment_file(dir, base_offset, INDEX_SUFFIX),
            time_index_path: segment_file(dir, base_offset, TIME_INDEX_SUFFIX),
            file,
            size: AtomicU64::new(len),
            indexes: RwLock::new(indexes),
            indexes_unsynced: AtomicBool::new(true),
            txn: Mutex::new(TxnIndex::load(dir, base_offset, len)),
        }
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Bytes of whole batches in the segment.
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// The largest timestamp and the last offset of the batch holding it (-1, -1 if none).
    pub fn max_timestamp(&self) -> (i64, i64) {
        let ix = read(&self.indexes);
        (ix.max_timestamp, ix.max_timestamp_offset)
    }

    /// Offset-index and time-index entry counts.
    pub fn index_entries(&self) -> (usize, usize) {
        let ix = read(&self.indexes);
        (ix.offsets.len(), ix.times.len())
    }

    /// `offset` relative to the base, as the indexes store it.
    pub fn relative(&self, offset: i64) -> u32 {
        u32::try_from(offset.saturating_sub(self.base_offset).max(0)).unwrap_or(u32::MAX)
    }

    /// Moves the write cursor to the end of the whole batches.
    pub fn seek_to_end(&self) -> Result<(), LogError> {
        (&self.file)
            .seek(SeekFrom::Start(self.size()))
            .map(|_| ())
            .map_err(io_err(&self.log_path))
    }

    /// Writes `bufs` at the end with as few syscalls as the kernel allows
    /// (one writev normally). On error the caller must [`Segment::undo_write`].
    pub fn write(&self, mut bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
        while !bufs.is_empty() {
            match (&self.file).write_vectored(bufs) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut bufs, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Cuts a partly written append off again.
    pub fn undo_write(&self) -> io::Result<()> {
        let end = self.size();
        self.file.set_len(end)?;
        (&self.file).seek(SeekFrom::Start(end)).map(|_| ())
    }

    /// Publishes batches just written from the old end: indexes them
    /// ([`index_batch`]), then moves `size` past them.
    pub fn commit(&self, batches: &[AppendedBatch], bytes_since_index: &mut u64, interval: u32) {
        let mut position = self.size();
        let mut ix = write(&self.indexes);
        for b in batches {
            index_batch(
                &mut ix,
                self.base_offset,
                b,
                position,
                bytes_since_index,
                interval,
            );
            position += b.size;
        }
        drop(ix);
        self.size.store(position, Ordering::Release);
    }

    /// A segment becoming inactive: its time index gets a last entry for
    /// its largest timestamp (as Kafka does), and both indexes go to disk.
    pub fn seal(&self) -> Result<(), LogError> {
        {
            let mut ix = write(&self.indexes);
            let (ts, at) = (ix.max_timestamp, self.relative(ix.max_timestamp_offset));
            ix.times.maybe_append(ts, at);
        }
        self.persist_indexes()
    }

    /// Writes new index entries to the index files (page cache, no fsync).
    pub fn persist_indexes(&self) -> Result<(), LogError> {
        let mut ix = write(&self.indexes);
        let a = ix
            .offsets
            .persist(&self.index_path)
            .map_err(io_err(&self.index_path))?;
        let b = ix
            .times
            .persist(&self.time_index_path)
            .map_err(io_err(&self.time_index_path))?;
        if a || b {
            self.indexes_unsynced.store(true, Ordering::Release);
        }
        drop(ix);
        let mut txn = lock(&self.txn);
        let path = txn.path().to_path_buf();
        txn.persist().map_err(io_err(&path))
    }

    /// fsyncs the log file and, if written since, the index files.
    pub fn sync(&self) -> Result<(), LogError> {
        self.file.sync_data().map_err(io_err(&self.log_path))?;
        if self.indexes_unsynced.swap(false, Ordering::AcqRel) {
            let synced = sync_file(&self.index_path)
                .map_err(io_err(&self.index_path))
                .and_then(|()| {
                    sync_file(&self.time_index_path).map_err(io_err(&self.time_index_path))
                });
            if synced.is_err() {
                self.indexes_unsynced.store(true, Ordering::Release);
            }
            synced?;
        }
        let mut txn = lock(&self.txn);
        let path = txn.path().to_path_buf();
        txn.sync().map_err(io_err(&path))
    }

    /// Removes the segment's files. Readers holding it keep reading the
    /// unlinked file until they drop it.
    pub fn delete_files(&self) -> Result<(), LogError> {
        let txn_path = lock(&self.txn).path().to_path_buf();
        for path in [
            &self.log_path,
            &self.index_path,
            &self.time_index_path,
            &txn_path,
        ] {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(path)(e)),
                _ => {}
            }
        }
        Ok(())
    }

    /// Up to `len` bytes at `position`.
    pub fn read_bytes(&self, position: u64, len: usize) -> Result<Vec<u8>, LogError> {
        read_at_most(&self.file, position, len).map_err(io_err(&self.log_path))
    }

    /// Cuts the segment at `position`, the start of the batch whose base
    /// offset `new_end` becomes the log end, and fsyncs it so that the cut
    /// data cannot come back after a power loss.
    pub fn truncate_to(&self, position: u64, new_end: i64) -> Result<(), LogError> {
        self.file
            .set_len(position)
            .map_err(io_err(&self.log_path))?;
        self.size.store(position, Ordering::Release);
        self.seek_to_end()?;
        lock(&self.txn).truncate_from(new_end);
        let rel_end = self.relative(new_end);
        let (mut max_ts, mut max_offset, from) = {
            let mut ix = write(&self.indexes);
            ix.offsets.truncate_from(rel_end);
            ix.times.truncate_from(rel_end);
            match ix.times.last() {
                // Every batch up to this entry's is no newer than its timestamp.
                Some(e) => (
                    e.timestamp,
                    self.base_offset + i64::from(e.relative_offset),
                    u64::from(ix.offsets.lookup(e.relative_offset)),
                ),
                None => (-1, -1, 0),
            }
        };
        let mut scan = self.headers(from, position);
        while let Some((_, header)) = scan.next_header()? {
            if header.max_timestamp > max_ts {
                max_ts = header.max_timestamp;
                max_offset = header.last_offset();
            }
        }
        {
            let mut ix = write(&self.indexes);
            ix.max_timestamp = max_ts;
            ix.max_timestamp_offset = max_offset;
        }
        self.persist_indexes()?;
        self.sync()
    }
}

impl Segment {
    /// Records an aborted transaction whose marker this segment holds, and
    /// writes it to the index file (page cache).
    pub fn push_aborted(&self, entry: AbortedTxn) -> Result<(), LogError> {
        let mut txn = lock(&self.txn);
        txn.push(entry);
        let path = txn.path().to_path_buf();
        txn.persist().map_err(io_err(&path))
    }

    /// See [`TxnIndex::collect`].
    pub fn collect_aborted(&self, from: i64, upper: i64, out: &mut Vec<AbortedTxn>) -> bool {
        lock(&self.txn).collect(from, upper, out)
    }

    /// Whether the transaction index must be rebuilt from the segment.
    pub fn txn_index_stale(&self) -> bool {
        lock(&self.txn).is_stale()
    }

    /// Recovery scanned this segment: its transaction index is rebuilt.
    pub fn mark_txn_index_stale(&self) {
        lock(&self.txn).mark_stale();
    }

    /// Drops the index entries whose marker is at or after `offset`, before
    /// a rebuild appends them again, and writes the file.
    pub fn reset_txn_index_from(&self, offset: i64) -> Result<(), LogError> {
        let mut txn = lock(&self.txn);
        txn.truncate_from(offset);
        let path = txn.path().to_path_buf();
        txn.persist().map_err(io_err(&path))
    }
}

/// Kafka's indexing rule, shared by appends and recovery: a batch at
/// `position` gets an offset-index entry (its last offset) and a time-index
/// entry (the largest timestamp so far) once more than `interval` bytes
/// were appended since the previous entry.
pub(crate) fn index_batch(
    ix: &mut SegmentIndexes,
    base_offset: i64,
    b: &AppendedBatch,
    position: u64,
    bytes_since_index: &mut u64,
    interval: u32,
) {
    let relative =
        |offset: i64| u32::try_from(offset.saturating_sub(base_offset).max(0)).unwrap_or(u32::MAX);
    if b.max_timestamp > ix.max_timestamp {
        ix.max_timestamp = b.max_timestamp;
        ix.max_timestamp_offset = b.last_offset;
    }
    if *bytes_since_index > u64::from(interval) {
        ix.offsets.append(
            relative(b.last_offset),
            u32::try_from(position).unwrap_or(u32::MAX),
        );
        let (ts, at) = (ix.max_timestamp, relative(ix.max_timestamp_offset));
        ix.times.maybe_append(ts, at);
        *bytes_since_index = 0;
    }
    *bytes_since_index += b.size;
}
