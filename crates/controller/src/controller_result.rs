//! What a controller operation computes: the records to append and the
//! response to send once they commit. Managers build these purely from an
//! image; nothing changes until the records are replayed.

use kraft_proto::metadata::MetadataRecord;

#[derive(Debug, Clone, PartialEq)]
pub struct ControllerResult<T> {
    pub records: Vec<MetadataRecord>,
    pub response: T,
}

impl<T> ControllerResult<T> {
    pub fn new(records: Vec<MetadataRecord>, response: T) -> Self {
        ControllerResult { records, response }
    }

    /// A response that needs no records (a read, a no-op, or validate-only).
    pub fn response_only(response: T) -> Self {
        ControllerResult {
            records: Vec::new(),
            response,
        }
    }
}
