//! Small files of our own, versioned, checksummed and written atomically,
//! and the partition's state file.
//!
//! Container layout (big-endian): magic (4 bytes), format version (u16),
//! payload length (u32), payload, CRC-32C of everything before it (u32).
//! Writes go to `<name>.tmp`, are fsynced, renamed over `<name>`, and the
//! directory is fsynced, so a reader sees the old file or the new one.
//!
//! The state file `partition.state` holds the high watermark, the log
//! start offset, the recovery point (everything below it is fsynced) and
//! the clean-shutdown flag. In: [`crate::PartitionLog::checkpoint`] and
//! `close`. Out: read once by recovery at open.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use crate::error::{io_err, LogError};
use crate::util::sync_dir;

const HEAD_LEN: usize = 4 + 2 + 4;
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// Writes `payload` as `dir/name` in the checksummed container, atomically.
pub(crate) fn write_checksummed(
    dir: &Path,
    name: &str,
    magic: &[u8; 4],
    version: u16,
    payload: &[u8],
) -> Result<(), LogError> {
    let mut bytes = Vec::with_capacity(HEAD_LEN + payload.len() + 4);
    bytes.extend_from_slice(magic);
    bytes.extend_from_slice(&version.to_be_bytes());
    bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    bytes.extend_from_slice(payload);
    let crc = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&crc.to_be_bytes());

    let path = dir.join(name);
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let write = || -> io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()
    };
    write().map_err(io_err(&tmp))?;
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    sync_dir(dir).map_err(io_err(dir))
}

/// Reads `dir/name` written by [`write_checksummed`]: `None` if missing,
/// otherwise the version and payload. Anything inconsistent is `Corrupt`.
pub(crate) fn read_checksummed(
    dir: &Path,
    name: &str,
    magic: &[u8; 4],
) -> Result<Option<(u16, Vec<u8>)>, LogError> {
    let path = dir.join(name);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let corrupt = |position: usize, reason: &str| LogError::corrupt(&path, position as u64, reason);
    if bytes.len() < HEAD_LEN + 4 {
        return Err(corrupt(0, "file is shorter than its header"));
    }
    if &bytes[0..4] != magic {
        return Err(corrupt(
            0,
            "wrong magic: not the file this name should hold",
        ));
    }
    let version = u16::from_be_bytes([bytes[4], bytes[5]]);
    let len = u32::from_be_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]) as usize;
    if bytes.len() != HEAD_LEN + len + 4 {
        return Err(corrupt(6, "payload length does not match the file size"));
    }
    let body_end = HEAD_LEN + len;
    let stored = u32::from_be_bytes([
        bytes[body_end],
        bytes[body_end + 1],
        bytes[body_end + 2],
        bytes[body_end + 3],
    ]);
    if crc32c::crc32c(&bytes[..body_end]) != stored {
        return Err(corrupt(body_end, "checksum mismatch"));
    }
    Ok(Some((version, bytes[HEAD_LEN..body_end].to_vec())))
}

pub(crate) const STATE_FILE: &str = "partition.state";
const STATE_MAGIC: &[u8; 4] = b"KRPS";
const STATE_VERSION: u16 = 1;
const STATE_PAYLOAD_LEN: usize = 8 * 3 + 1;

/// What a partition log remembers across restarts besides its segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PartitionState {
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// Everything below this offset was fsynced.
    pub recovery_point: i64,
    /// Written by `close` after a full flush; cleared at open.
    pub clean_shutdown: bool,
}

impl PartitionState {
    pub fn read(dir: &Path) -> Result<Option<PartitionState>, LogError> {
        let Some((version, payload)) = read_checksummed(dir, STATE_FILE, STATE_MAGIC)? else {
            return Ok(None);
        };
        let path = dir.join(STATE_FILE);
        if version != STATE_VERSION {
            return Err(LogError::corrupt(
                &path,
                4,
                format!("unknown format version {version}"),
            ));
        }
        if payload.len() != STATE_PAYLOAD_LEN {
            return Err(LogError::corrupt(&path, 10, "payload has the wrong size"));
        }
        let i64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&payload[at..at + 8]);
            i64::from_be_bytes(b)
        };
        Ok(Some(PartitionState {
            high_watermark: i64_at(0),
            log_start_offset: i64_at(8),
            recovery_point: i64_at(16),
            clean_shutdown: payload[24] != 0,
        }))
    }

    pub fn write(&self, dir: &Path) -> Result<(), LogError> {
        let mut payload = Vec::with_capacity(STATE_PAYLOAD_LEN);
        payload.extend_from_slice(&self.high_watermark.to_be_bytes());
        payload.extend_from_slice(&self.log_start_offset.to_be_bytes());
        payload.extend_from_slice(&self.recovery_point.to_be_bytes());
        payload.push(u8::from(self.clean_shutdown));
        write_checksummed(dir, STATE_FILE, STATE_MAGIC, STATE_VERSION, &payload)
    }
}
