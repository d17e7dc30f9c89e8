//! Making and reading the small pieces every record shares: the record
//! version stamp and 16-byte UUID fields.

use bytes::Bytes;
use kraft_proto::metadata::{metadata_record::Record, MetadataRecord};
use uuid::Uuid;

use crate::MetadataError;

/// The format version of every record type this build writes and reads.
/// Replay rejects any other version rather than guessing at its meaning.
pub const RECORD_VERSION: u32 = 1;

/// Wraps a record in a [`MetadataRecord`] stamped with [`RECORD_VERSION`].
/// Use this wherever records are made.
pub fn record(r: Record) -> MetadataRecord {
    MetadataRecord {
        version: RECORD_VERSION,
        record: Some(r),
    }
}

/// Reads a 16-byte UUID field; `field` names it in the error.
pub(crate) fn parse_uuid(field: &'static str, bytes: &[u8]) -> Result<Uuid, MetadataError> {
    Uuid::from_slice(bytes).map_err(|_| MetadataError::InvalidUuid {
        field,
        len: bytes.len(),
    })
}

/// The wire form of a UUID field.
pub(crate) fn uuid_bytes(id: Uuid) -> Bytes {
    Bytes::copy_from_slice(id.as_bytes())
}
