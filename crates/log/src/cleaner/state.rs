//! The cleaner's checkpoint of one partition: the first dirty offset,
//! below which the log was cleaned (Kafka keeps this per log dir in
//! `cleaner-offset-checkpoint`; here each partition has its own file).
//!
//! In: the offset a pass cleaned up to ([`write()`]), or a truncation below
//! it. Out: the offset, read once at open ([`read`]); a missing file means
//! nothing was cleaned. The file is `cleaner.checkpoint` in the checksummed
//! container of `state_file.rs`, replaced atomically.

use std::path::Path;

use crate::error::LogError;
use crate::state_file::{read_checksummed, write_checksummed};

const FILE: &str = "cleaner.checkpoint";
const MAGIC: &[u8; 4] = b"KRCC";
const VERSION: u16 = 1;

/// The first dirty offset saved, if any.
pub(crate) fn read(dir: &Path) -> Result<Option<i64>, LogError> {
    let Some((version, payload)) = read_checksummed(dir, FILE, MAGIC)? else {
        return Ok(None);
    };
    let bytes: [u8; 8] = payload
        .as_slice()
        .try_into()
        .ok()
        .filter(|_| version == VERSION)
        .ok_or_else(|| {
            LogError::corrupt(
                &dir.join(FILE),
                0,
                format!("unknown version {version} or length {}", payload.len()),
            )
        })?;
    Ok(Some(i64::from_be_bytes(bytes)))
}

/// Saves the first dirty offset (fsynced, atomic).
pub(crate) fn write(dir: &Path, first_dirty: i64) -> Result<(), LogError> {
    write_checksummed(dir, FILE, MAGIC, VERSION, &first_dirty.to_be_bytes())
}
