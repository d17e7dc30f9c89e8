//! The crate's errors and the Kafka error code each one maps to.
//!
//! In: raised by batch validation ([`BatchError`]) and by every file
//! operation of a partition log ([`LogError`]). Out: the broker puts
//! `kafka_error_code()` in its response and logs the message, which names
//! the file and byte position whenever a file is at fault.

use kafka_protocol::error::ResponseError;
use std::io;
use std::path::{Path, PathBuf};

/// A record batch that cannot be appended as it is.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Bad CRC, lengths that do not add up, truncated bytes.
    #[error("corrupt record batch: {reason}")]
    Corrupt { reason: String },
    /// Larger than `max.message.bytes`.
    #[error("record batch of {size} bytes is larger than max.message.bytes ({max})")]
    TooLarge { size: usize, max: u32 },
    /// Compressed records that expand past the decompression cap (see
    /// `batch::decompression_limit`). MESSAGE_TOO_LARGE, so that a Java
    /// producer splits the batch and retries.
    #[error("record batch decompresses to more than {limit} bytes")]
    DecompressedTooLarge { limit: u64 },
    /// Well-formed but not acceptable: wrong magic, several batches, a control
    /// batch from a client, inconsistent counts.
    #[error("invalid record batch: {reason}")]
    Invalid { reason: String },
}

impl BatchError {
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            BatchError::Corrupt { .. } => ResponseError::CorruptMessage.code(),
            BatchError::TooLarge { .. } | BatchError::DecompressedTooLarge { .. } => {
                ResponseError::MessageTooLarge.code()
            }
            BatchError::Invalid { .. } => ResponseError::InvalidRecord.code(),
        }
    }

    pub(crate) fn corrupt(reason: impl Into<String>) -> Self {
        BatchError::Corrupt {
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        BatchError::Invalid {
            reason: reason.into(),
        }
    }
}

/// A partition log operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("offset {offset} is out of range: the log holds [{log_start}, {log_end})")]
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },
    /// A file holds bytes that cannot be what this crate wrote there. Never
    /// skipped: the partition stays offline until someone looks.
    #[error("corrupt file {} at byte {position}: {reason}", .file.display())]
    Corrupt {
        file: PathBuf,
        position: u64,
        reason: String,
    },
    #[error("I/O error on {}: {source}", .file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A leader append with an epoch older than one the log already has.
    #[error("leader epoch {epoch} is older than the log's latest epoch {latest}")]
    FencedLeaderEpoch { epoch: i32, latest: i32 },
    /// Replicated batches must start at or after the log end, each after the one before.
    #[error("replicated batch starts at offset {found}, below the expected {expected}")]
    NonContiguous { expected: i64, found: i64 },
    /// The log was closed; nothing more may be written.
    #[error("partition log {} is closed", .dir.display())]
    Closed { dir: PathBuf },
    /// A write failed and could not be undone; the log refuses further writes
    /// until it is reopened (which recovers it).
    #[error("partition log {} is offline after a failed write", .dir.display())]
    Offline { dir: PathBuf },
    /// A producer's batch whose sequence does not follow its last one (or a
    /// new epoch that does not start at 0).
    #[error("out of order sequence number {sequence} from producer {producer_id} at offset {offset}: {reason}")]
    OutOfOrderSequence {
        producer_id: i64,
        offset: i64,
        sequence: i32,
        reason: String,
    },
    /// A producer's batch with an epoch older than the one the log has seen.
    #[error("epoch {epoch} of producer {producer_id} is older than its current epoch {current}")]
    InvalidProducerEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    /// A batch outside a transaction from a producer whose transaction is open.
    #[error("producer {producer_id} has a transaction open since offset {first_offset}: a batch at offset {offset} must be transactional")]
    InvalidTxnState {
        producer_id: i64,
        offset: i64,
        first_offset: i64,
    },
    /// A transactional write the coordinator did not confirm (KIP-890):
    /// the partition was not added to the producer's transaction, or the
    /// transaction ended meanwhile.
    #[error("producer {producer_id} has no ongoing transaction with this partition in it")]
    TxnNotVerified { producer_id: i64 },
    /// A transaction marker from a coordinator older than the one that
    /// wrote the producer's last marker.
    #[error("coordinator epoch {coordinator_epoch} of a marker for producer {producer_id} is older than {current}")]
    CoordinatorFenced {
        producer_id: i64,
        coordinator_epoch: i32,
        current: i32,
    },
}

impl LogError {
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            LogError::Batch(e) => e.kafka_error_code(),
            LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange.code(),
            LogError::Corrupt { .. }
            | LogError::Io { .. }
            | LogError::Closed { .. }
            | LogError::Offline { .. } => ResponseError::KafkaStorageError.code(),
            LogError::FencedLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch.code(),
            LogError::NonContiguous { .. } => ResponseError::UnknownServerError.code(),
            LogError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber.code(),
            LogError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch.code(),
            LogError::InvalidTxnState { .. } | LogError::TxnNotVerified { .. } => {
                ResponseError::InvalidTxnState.code()
            }
            LogError::CoordinatorFenced { .. } => {
                ResponseError::TransactionCoordinatorFenced.code()
            }
        }
    }

    /// Whether the error means the storage under the log failed (an I/O
    /// error, or a log already offline because of one): the broker then
    /// takes the whole log dir offline, as Kafka's LogDirFailureChannel does.
    pub fn is_storage_failure(&self) -> bool {
        matches!(self, LogError::Io { .. } | LogError::Offline { .. })
    }

    pub(crate) fn corrupt(file: &Path, position: u64, reason: impl Into<String>) -> Self {
        LogError::Corrupt {
            file: file.to_path_buf(),
            position,
            reason: reason.into(),
        }
    }
}

/// `map_err` adapter: an I/O error on `file`.
pub(crate) fn io_err(file: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        file: file.to_path_buf(),
        source,
    }
}
