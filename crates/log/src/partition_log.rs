//! [`PartitionLog`]: one partition's log, its offsets and its maintenance
//! (flush, checkpoint, close). Appends are in `append.rs`, transaction
//! markers and the last stable offset in `transactions.rs`, timestamp
//! searches in `timestamp_lookup.rs`, retention and truncation in their
//! own files.
//!
//! Concurrency: appends, rolls, truncation and retention are serialised by
//! the writer mutex; truncation, retention and the cleaner's swap also by
//! the swap lock (taken first), so the cleaner renames files without the
//! writer mutex. Reads take no lock held by the append path beyond a
//! brief clone of the segment list: they load the log end (an atomic, moved
//! only after a batch is fully written), snapshot the list, and pread.
//! Flush fsyncs outside the writer mutex, so appends continue meanwhile.
//! A flush that fails takes the log offline for good (until reopened): the
//! fsync is never retried (see the crate docs).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bytes::Bytes;

use crate::batch;
use crate::config::{LogConfig, TimestampType};
use crate::error::{io_err, LogError};
use crate::fault::DiskFault;
use crate::leader_epoch::LeaderEpochCache;
use crate::producer_state::{self, ProducerStates, UnstableTxn};
use crate::recovery;
use crate::segment::Segment;
use crate::state_file::PartitionState;
use crate::util::{self, lock, read, sync_dir};

/// What an append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogAppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    /// The largest timestamp appended (the broker's clock under LogAppendTime).
    pub max_timestamp: i64,
    /// The time stamped under LogAppendTime, -1 otherwise.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    /// Bytes appended.
    pub bytes: usize,
}

/// How far a read may go: followers read to the log end, consumers to
/// the high watermark (read_uncommitted) or the last stable offset
/// (read_committed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadBound {
    LogEnd,
    HighWatermark,
    LastStable,
}

/// Batches read, with the offsets a fetch response reports.
#[derive(Clone, Debug)]
pub struct ReadResult {
    /// Whole batches, exactly as stored.
    pub records: Bytes,
    pub high_watermark: i64,
    /// min(high watermark, first offset of the earliest unstable transaction).
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// A record found by timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampOffset {
    pub timestamp: i64,
    pub offset: i64,
    /// The leader epoch of the batch holding the record.
    pub leader_epoch: i32,
}

/// State only the appender touches, behind the writer mutex.
pub(crate) struct Writer {
    pub config: LogConfig,
    /// The last segment of the list; appends go here.
    pub active: Arc<Segment>,
    pub bytes_since_index: u64,
    /// When the active segment got its first batch (segment.ms counts from it).
    pub roll_base_ms: Option<i64>,
    pub unflushed_messages: u64,
    pub last_flush_ms: i64,
    /// Rolled segments whose fsync is still due.
    pub pending_sync: Vec<Arc<Segment>>,
    /// Files were created or removed since the directory was last fsynced.
    pub dir_dirty: bool,
    /// Everything below this offset is fsynced.
    pub recovery_point: i64,
    pub epochs: LeaderEpochCache,
    /// Producers' recent batches and transactions (`producer_state`).
    pub producers: ProducerStates,
    pub closed: bool,
    /// A failed write could not be undone: no more writes until reopened.
    pub offline: bool,
}

/// A partition's log. `Send + Sync`; share it as `Arc<PartitionLog>`.
pub struct PartitionLog {
    pub(crate) dir: PathBuf,
    pub(crate) writer: Mutex<Writer>,
    pub(crate) segments: RwLock<Arc<Vec<Arc<Segment>>>>,
    pub(crate) log_start: AtomicI64,
    pub(crate) log_end: AtomicI64,
    pub(crate) high_watermark: AtomicI64,
    pub(crate) max_message_bytes: AtomicU32,
    /// Whether the topic's `message.timestamp.type` is LogAppendTime, read
    /// without the writer lock when a produced batch is checked.
    pub(crate) log_append_time: AtomicBool,
    /// Whether the topic is compacted (`cleanup.policy` includes
    /// `compact`): a produced record must have a key.
    pub(crate) compacted: AtomicBool,
    /// The transactions not yet stable, by first offset: a copy of the
    /// producer state's, published under the writer mutex whenever a
    /// transaction starts or ends, read by fetches for the last stable offset.
    pub(crate) unstable: Mutex<Vec<UnstableTxn>>,
    /// Serialises flush, checkpoint and close, which write files outside the writer mutex.
    maintenance: Mutex<()>,
    /// Injected fsync failures (tests).
    fault: DiskFault,
    /// Held by a cleaning pass (`cleaner`), so passes on one log never overlap.
    pub(crate) cleaning: Mutex<()>,
    /// Held while a cleaning pass swaps its files in, and by truncation and
    /// retention (the others that delete segment files), taken before the
    /// writer mutex.
    pub(crate) swap_lock: Mutex<()>,
    /// Counts truncations, so a cleaning pass sees one happened under it.
    pub(crate) truncations: AtomicU64,
    /// The cleaner's checkpoint: the first offset not yet cleaned.
    pub(crate) first_dirty: AtomicI64,
}

impl PartitionLog {
    /// Opens (creating if missing) the partition directory and recovers it.
    pub fn open(dir: &Path, config: LogConfig) -> Result<PartitionLog, LogError> {
        let recovered = recovery::recover(dir, &config)?;
        let Some(active) = recovered.segments.last().cloned() else {
            return Err(LogError::corrupt(dir, 0, "recovery left no segment"));
        };
        let roll_base_ms = active.roll_base_ms()?;
        // Only an optimisation: unreadable, the cleaner starts over.
        let first_dirty = crate::cleaner::read_checkpoint(dir)
            .unwrap_or_else(|e| {
                tracing::warn!(dir = %dir.display(), error = %e, "ignoring the cleaner checkpoint");
                None
            })
            .unwrap_or(recovered.log_start);
        let mut producers = producer_state::rebuild(dir, &recovered.segments, recovered.log_end)?;
        producers.prune_stable(recovered.high_watermark);
        tracing::info!(
            dir = %dir.display(),
            segments = recovered.segments.len(),
            log_start = recovered.log_start,
            log_end = recovered.log_end,
            high_watermark = recovered.high_watermark,
            producers = producers.len(),
            "opened partition log"
        );
        Ok(PartitionLog {
            dir: dir.to_path_buf(),
            log_start: AtomicI64::new(recovered.log_start),
            log_end: AtomicI64::new(recovered.log_end),
            high_watermark: AtomicI64::new(recovered.high_watermark),
            max_message_bytes: AtomicU32::new(config.max_message_bytes),
            log_append_time: AtomicBool::new(config.timestamp_type == TimestampType::LogAppendTime),
            compacted: AtomicBool::new(config.compaction.is_some()),
            unstable: Mutex::new(producers.unstable()),
            segments: RwLock::new(Arc::new(recovered.segments)),
            writer: Mutex::new(Writer {
                config,
                active,
                bytes_since_index: 0,
                roll_base_ms,
                unflushed_messages: 0,
                last_flush_ms: util::now_ms(),
                pending_sync: Vec::new(),
                dir_dirty: false,
                recovery_point: recovered.recovery_point,
                epochs: recovered.epochs,
                producers,
                closed: false,
                offline: false,
            }),
            maintenance: Mutex::new(()),
            fault: DiskFault::default(),
            cleaning: Mutex::new(()),
            swap_lock: Mutex::new(()),
            truncations: AtomicU64::new(0),
            first_dirty: AtomicI64::new(first_dirty),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The fault-injection hook of this log's fsyncs.
    pub fn disk_fault(&self) -> &DiskFault {
        &self.fault
    }

    /// Whether a failed write or fsync took the log offline: it refuses
    /// writes, flushes and checkpoints until reopened.
    pub fn is_offline(&self) -> bool {
        self.writer().offline
    }

    fn offline_error(&self) -> LogError {
        LogError::Offline {
            dir: self.dir.clone(),
        }
    }

    pub(crate) fn writer(&self) -> MutexGuard<'_, Writer> {
        lock(&self.writer)
    }

    /// The writer, if the log still accepts writes.
    pub(crate) fn writer_for_update(&self) -> Result<MutexGuard<'_, Writer>, LogError> {
        let w = self.writer();
        if w.closed {
            return Err(LogError::Closed {
                dir: self.dir.clone(),
            });
        }
        if w.offline {
            return Err(LogError::Offline {
                dir: self.dir.clone(),
            });
        }
        Ok(w)
    }

    /// A snapshot of the segments, oldest first.
    pub(crate) fn segment_list(&self) -> Arc<Vec<Arc<Segment>>> {
        read(&self.segments).clone()
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start.load(Ordering::Acquire)
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log_end.load(Ordering::Acquire)
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// Sets the high watermark, clamped to [log start, log end].
    pub fn set_high_watermark(&self, offset: i64) {
        let clamped = offset
            .min(self.log_end_offset())
            .max(self.log_start_offset());
        self.high_watermark.store(clamped, Ordering::Release);
    }

    /// Everything below this offset has been fsynced.
    pub fn recovery_point(&self) -> i64 {
        self.writer().recovery_point
    }

    /// Bytes of all segments.
    pub fn size_in_bytes(&self) -> u64 {
        self.segment_list().iter().map(|s| s.size()).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segment_list().len()
    }

    pub fn config(&self) -> LogConfig {
        self.writer().config.clone()
    }

    /// Applies new settings; they take effect from the next append or maintenance call.
    pub fn update_config(&self, config: LogConfig) {
        self.max_message_bytes
            .store(config.max_message_bytes, Ordering::Relaxed);
        self.log_append_time.store(
            config.timestamp_type == TimestampType::LogAppendTime,
            Ordering::Relaxed,
        );
        self.compacted
            .store(config.compaction.is_some(), Ordering::Relaxed);
        self.writer().config = config;
    }

    /// The decompression cap for decoding this log's stored batches: that
    /// of `max.message.bytes`, or of Kafka's default if the topic's is
    /// lower now (a batch may predate the change).
    pub fn decompression_limit(&self) -> u64 {
        let max = self.max_message_bytes.load(Ordering::Relaxed);
        batch::decompression_limit(max.max(LogConfig::default().max_message_bytes))
    }

    /// Batches from the one holding `offset` (which may start before it),
    /// whole, up to `max_bytes` and below `bound`; the first batch even if
    /// larger than `max_bytes` when `min_one_batch`. Reading at the bound
    /// gives no records; below the log start or past the log end is
    /// [`LogError::OffsetOutOfRange`].
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        bound: ReadBound,
        min_one_batch: bool,
    ) -> Result<ReadResult, LogError> {
        let log_start = self.log_start_offset();
        let log_end = self.log_end_offset();
        let high_watermark = self.high_watermark().min(log_end);
        let out_of_range = || LogError::OffsetOutOfRange {
            offset,
            log_start: self.log_start_offset(),
            log_end,
        };
        if offset < log_start || offset > log_end {
            return Err(out_of_range());
        }
        let last_stable_offset = self.last_stable_offset_at(high_watermark);
        let mut result = ReadResult {
            records: Bytes::new(),
            high_watermark,
            last_stable_offset,
            log_start_offset: log_start,
            log_end_offset: log_end,
        };
        let bound = match bound {
            ReadBound::LogEnd => log_end,
            ReadBound::HighWatermark => high_watermark,
            ReadBound::LastStable => last_stable_offset,
        };
        if offset >= bound {
            return Ok(result);
        }
        let segments = self.segment_list();
        // Retention may have removed the segment since the log start was read.
        let first = segments
            .partition_point(|s| s.base_offset() <= offset)
            .checked_sub(1)
            .ok_or_else(out_of_range)?;
        for segment in &segments[first..] {
            if segment.base_offset() >= bound {
                break;
            }
            if let Some(records) = segment.read(offset, bound, max_bytes, min_one_batch)? {
                result.records = records;
                break;
            }
        }
        Ok(result)
    }

    /// Whether the flush policy says a flush is due: `flush.messages`
    /// records or `flush.ms` since the last flush, or a rolled segment
    /// awaiting its fsync.
    pub fn flush_due(&self, now_ms: i64) -> bool {
        let w = self.writer();
        if w.closed || w.offline {
            return false;
        }
        if !w.pending_sync.is_empty() {
            return true;
        }
        if w.unflushed_messages == 0 {
            return false;
        }
        let by_count = w
            .config
            .flush_interval_messages
            .is_some_and(|n| w.unflushed_messages >= n);
        let by_time = w.config.flush_interval_ms.is_some_and(|ms| {
            now_ms.saturating_sub(w.last_flush_ms) >= i64::try_from(ms).unwrap_or(i64::MAX)
        });
        by_count || by_time
    }

    /// fsyncs every segment file and index with unflushed writes, then
    /// moves the recovery point. Blocking; appends continue meanwhile. If
    /// it fails the log goes offline and no flush is tried again
    /// ([`LogError::Offline`] from then on).
    pub fn flush(&self) -> Result<(), LogError> {
        let _maintenance = lock(&self.maintenance);
        self.flush_inner()
    }

    fn flush_inner(&self) -> Result<(), LogError> {
        let (segments, end, messages, dir_dirty) = {
            let mut w = self.writer();
            if w.offline {
                return Err(self.offline_error());
            }
            if let Err(e) = w.active.persist_indexes() {
                w.offline = true;
                tracing::error!(dir = %self.dir.display(), error = %e, "writing an index failed; the log is offline");
                return Err(e);
            }
            let mut segments = std::mem::take(&mut w.pending_sync);
            segments.push(w.active.clone());
            (
                segments,
                self.log_end_offset(),
                w.unflushed_messages,
                std::mem::take(&mut w.dir_dirty),
            )
        };
        let synced = self
            .fault
            .check(&self.dir)
            .and_then(|()| segments.iter().try_for_each(|s| s.sync()))
            .and_then(|()| {
                if dir_dirty {
                    sync_dir(&self.dir).map_err(io_err(&self.dir))
                } else {
                    Ok(())
                }
            });
        let mut w = self.writer();
        match synced {
            Ok(()) => {
                w.unflushed_messages = w.unflushed_messages.saturating_sub(messages);
                w.recovery_point = w.recovery_point.max(end.min(self.log_end_offset()));
                w.last_flush_ms = util::now_ms();
                Ok(())
            }
            Err(e) => {
                // Never retried: the kernel may have dropped the pages this
                // fsync was for, so a later success would prove nothing.
                w.offline = true;
                tracing::error!(dir = %self.dir.display(), error = %e, "fsync failed; the log is offline and the fsync is not retried");
                Err(e)
            }
        }
    }

    fn state(&self, w: &Writer, clean_shutdown: bool) -> PartitionState {
        PartitionState {
            high_watermark: self.high_watermark(),
            log_start_offset: self.log_start_offset(),
            recovery_point: w.recovery_point,
            clean_shutdown,
        }
    }

    /// Writes the high watermark, log start offset and recovery point to
    /// the state file (atomically: temp file, fsync, rename). A no-op once closed.
    pub fn checkpoint(&self) -> Result<(), LogError> {
        let _maintenance = lock(&self.maintenance);
        let state = {
            let w = self.writer();
            if w.closed || w.offline {
                return Ok(());
            }
            self.state(&w, false)
        };
        state.write(&self.dir)
    }

    /// Refuses further writes, flushes, seals the active segment's indexes
    /// and marks a clean shutdown so the next open skips the scan.
    pub fn close(&self) -> Result<(), LogError> {
        let _maintenance = lock(&self.maintenance);
        {
            let mut w = self.writer();
            if w.closed {
                return Ok(());
            }
            w.closed = true;
            // An offline log gets no more I/O; its next open recovers it
            // (the state file says it was not shut down cleanly).
            if w.offline {
                return Ok(());
            }
        }
        self.flush_inner()?;
        let w = self.writer();
        producer_state::snapshot::write(&self.dir, self.log_end_offset(), &w.producers)?;
        w.active.seal()?;
        w.active.sync()?;
        self.state(&w, !w.offline).write(&self.dir)?;
        tracing::debug!(dir = %self.dir.display(), log_end = self.log_end_offset(), "closed partition log");
        Ok(())
    }

    /// Kafka's `endOffsetFor` (OffsetsForLeaderEpoch): the largest epoch at
    /// or below `epoch` and the start offset of the epoch after it, or the
    /// log end for the latest epoch. `None` for an undefined epoch, one
    /// above every known epoch, or an empty cache.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.writer()
            .epochs
            .end_offset_for(epoch, self.log_end_offset())
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.writer().epochs.latest_epoch()
    }

    /// `(epoch, start offset)` pairs of the leader-epoch cache, oldest first.
    pub fn epoch_entries(&self) -> Vec<(i32, i64)> {
        self.writer()
            .epochs
            .entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    /// Drops the producers whose last batch is older than `expiration_ms`
    /// (`producer.id.expiration.ms`) at `now_ms`; returns how many went.
    pub fn remove_expired_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        self.writer()
            .producers
            .remove_expired(now_ms, expiration_ms)
    }

    /// How many producer ids the log keeps state for.
    pub fn producer_count(&self) -> usize {
        self.writer().producers.len()
    }
}
