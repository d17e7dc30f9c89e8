//! Per-partition log settings: the topic configs that shape segments,
//! indexes, retention, flushing and validation.
//!
//! In: built by the broker from the topic's dynamic configs over its own
//! `log.*` defaults (Kafka's key names are given on each field), then handed
//! to [`crate::PartitionLog::open`] or [`crate::PartitionLog::update_config`].
//! Out: read by the append path (rolls, index interval, validation), by
//! [`crate::PartitionLog::flush_due`], by retention and by the cleaner.

pub use crate::cleaner::CompactionConfig;

/// `message.timestamp.type`: whose clock the batch's timestamp is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimestampType {
    /// The producer's timestamps are kept as sent.
    #[default]
    CreateTime,
    /// The broker stamps each batch's maxTimestamp with its own clock at append.
    LogAppendTime,
}

/// Settings of one partition log. `Default` gives Kafka's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: the active segment rolls before it would exceed this.
    pub segment_bytes: u64,
    /// `segment.ms`: the active segment rolls on append once it is this old.
    pub segment_ms: Option<u64>,
    /// `segment.index.bytes`: the active segment rolls before an index would exceed this.
    pub segment_index_bytes: u64,
    /// `index.interval.bytes`: bytes of batches between two index entries.
    pub index_interval_bytes: u32,
    /// `retention.ms`: sealed segments whose newest timestamp is older are deleted. `None` = forever.
    pub retention_ms: Option<i64>,
    /// `retention.bytes`: oldest sealed segments are deleted while the log is larger. `None` = unbounded.
    pub retention_bytes: Option<u64>,
    /// `flush.messages`: fsync after this many appended records. `None` = never by count.
    pub flush_interval_messages: Option<u64>,
    /// `flush.ms`: fsync when unflushed data is this old. `None` = never by time.
    pub flush_interval_ms: Option<u64>,
    /// `max.message.bytes`: the largest record batch a producer may append.
    pub max_message_bytes: u32,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `cleanup.policy` includes `compact`: the topic's compaction
    /// settings, for the cleaner ([`crate::PartitionLog::clean`]). `None`:
    /// the log is never compacted.
    pub compaction: Option<CompactionConfig>,
}

impl Default for LogConfig {
    fn default() -> Self {
        const WEEK_MS: u64 = 7 * 24 * 60 * 60 * 1000;
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: Some(WEEK_MS),
            segment_index_bytes: 10 << 20,
            index_interval_bytes: 4096,
            retention_ms: Some(WEEK_MS as i64),
            retention_bytes: None,
            flush_interval_messages: None,
            flush_interval_ms: None,
            max_message_bytes: 1_048_588,
            timestamp_type: TimestampType::CreateTime,
            compaction: None,
        }
    }
}

impl LogConfig {
    /// The size a segment may reach: `segment.bytes`, capped so that every
    /// position fits the 32-bit index entries (Kafka caps it at 2 GiB too).
    pub(crate) fn max_segment_bytes(&self) -> u64 {
        self.segment_bytes.min(i32::MAX as u64)
    }

    /// Offset-index entries a segment may hold before it rolls.
    pub(crate) fn max_offset_index_entries(&self) -> usize {
        usize::try_from(
            self.segment_index_bytes
                / <crate::index::OffsetEntry as crate::index::IndexEntry>::LEN as u64,
        )
        .unwrap_or(usize::MAX)
        .max(1)
    }

    /// Time-index entries a segment may hold before it rolls.
    pub(crate) fn max_time_index_entries(&self) -> usize {
        usize::try_from(
            self.segment_index_bytes
                / <crate::index::TimeEntry as crate::index::IndexEntry>::LEN as u64,
        )
        .unwrap_or(usize::MAX)
        .max(1)
    }
}
