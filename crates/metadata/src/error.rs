//! Error types of this crate.
//!
//! [`MetadataError`] is what replaying a record can fail with: the record is
//! malformed, or it does not fit the image it is replayed onto (a stale
//! broker epoch, an unknown topic, ...). [`SnapshotError`] is what decoding a
//! snapshot file can fail with; every variant that is about the bytes names
//! the byte offset where the problem was found.

use uuid::Uuid;

/// A record could not be replayed. The image or delta it was replayed onto
/// is unchanged by the failing record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("unsupported metadata record version {version} (this build knows version {known})", known = crate::RECORD_VERSION)]
    UnsupportedRecordVersion { version: u32 },

    #[error("metadata record (version {version}) carries no record")]
    MissingRecord { version: u32 },

    #[error("{field} must be a 16-byte UUID, got {len} bytes")]
    InvalidUuid { field: &'static str, len: usize },

    #[error("broker {broker_id} is not registered")]
    UnknownBroker { broker_id: i32 },

    #[error("stale record for broker {broker_id}: record epoch {record_epoch}, registered epoch {current_epoch}")]
    StaleBrokerEpoch {
        broker_id: i32,
        record_epoch: i64,
        current_epoch: i64,
    },

    #[error("broker {broker_id} endpoint {endpoint:?} has invalid port {port}")]
    InvalidPort {
        broker_id: i32,
        endpoint: String,
        port: i32,
    },

    #[error("next producer id {next} does not move past the current {current}")]
    ProducerIdNotIncreasing { next: i64, current: i64 },

    #[error("topic record has an empty name")]
    EmptyTopicName,

    #[error("a topic named {name:?} already exists")]
    DuplicateTopicName { name: String },

    #[error("a topic with id {id} already exists")]
    DuplicateTopicId { id: Uuid },

    #[error("unknown topic id {id}")]
    UnknownTopicId { id: Uuid },

    #[error("invalid partition id {partition_id} for topic {topic_id}")]
    InvalidPartitionId { topic_id: Uuid, partition_id: i32 },

    #[error("unknown partition {partition_id} of topic {topic_id}")]
    UnknownPartition { topic_id: Uuid, partition_id: i32 },

    #[error("{which} epoch overflow on partition {partition_id} of topic {topic_id}")]
    EpochOverflow {
        topic_id: Uuid,
        partition_id: i32,
        which: &'static str,
    },

    #[error("invalid config resource type {value}")]
    InvalidConfigResourceType { value: i32 },

    #[error("invalid level {level} for feature {name:?} (must be 0..=32767)")]
    InvalidFeatureLevel { name: String, level: i32 },

    #[error("batch offset {offset} is not above the current metadata offset {current}")]
    NonIncreasingOffset { offset: u64, current: u64 },

    #[error("record {index} of the batch at offset {offset}: {source}")]
    InBatch {
        offset: u64,
        index: usize,
        #[source]
        source: Box<MetadataError>,
    },
}

/// A snapshot file could not be decoded. Nothing of a snapshot is accepted
/// unless all of it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a snapshot file: bad magic (expected \"KRAFTSNP\")")]
    BadMagic,

    #[error("unsupported snapshot format version {version} (this build reads version {known})", known = crate::snapshot::FORMAT_VERSION)]
    UnsupportedVersion { version: u32 },

    #[error("truncated snapshot: incomplete {what} at byte {at}")]
    Truncated { what: &'static str, at: usize },

    #[error(
        "crc mismatch in the frame at byte {at}: stored {stored:#010x}, computed {computed:#010x}"
    )]
    CrcMismatch {
        at: usize,
        stored: u32,
        computed: u32,
    },

    #[error("malformed {what} in the frame at byte {at}: {source}")]
    Malformed {
        what: &'static str,
        at: usize,
        #[source]
        source: prost::DecodeError,
    },

    #[error("snapshot has no footer: the last frame (at byte {at}) is not a footer")]
    MissingFooter { at: usize },

    #[error("snapshot checksum mismatch: footer says {stored:#010x}, content is {computed:#010x}")]
    ChecksumMismatch { stored: u32, computed: u32 },

    #[error("snapshot record count mismatch: footer says {stored}, found {found}")]
    RecordCountMismatch { stored: u64, found: u64 },

    #[error("{len} trailing bytes after the footer, at byte {at}")]
    TrailingBytes { at: usize, len: usize },

    #[error("replaying the batch in the frame at byte {at}: {source}")]
    Replay {
        at: usize,
        #[source]
        source: MetadataError,
    },
}
