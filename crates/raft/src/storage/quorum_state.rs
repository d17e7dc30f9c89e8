//! The `quorum-state` file: the durable term, vote, commit index and voter
//! set (`kraft_proto::raft::QuorumState`).
//!
//! Layout (all integers big-endian):
//!
//! ```text
//! magic "KRAFTQST" (8) | version u32 (=1) | crc32c(payload) u32 | payload length u32 | payload
//! ```
//!
//! The file is only ever replaced whole (temporary file, fsync, rename,
//! directory fsync), so a torn write cannot happen: any mismatch is reported
//! as corruption.

use std::fs;
use std::io;
use std::path::Path;

use kraft_proto::raft::QuorumState;
use prost::Message;

use super::fsutil::{be_u32, io_err, write_atomic};
use super::StorageError;

pub(crate) const FILE_NAME: &str = "quorum-state";
const MAGIC: &[u8; 8] = b"KRAFTQST";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 4 + 4;

/// Encodes the file's content.
pub(crate) fn encode(state: &QuorumState) -> Vec<u8> {
    let payload = state.encode_to_vec();
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Decodes the file's content; `file` names it in errors.
pub(crate) fn decode(file: &Path, bytes: &[u8]) -> Result<QuorumState, StorageError> {
    let corrupt = |offset: u64, reason: String| StorageError::Corrupt {
        file: file.to_path_buf(),
        offset,
        reason,
    };
    if bytes.len() < HEADER_LEN {
        return Err(corrupt(
            0,
            format!("file is {} bytes, shorter than its header", bytes.len()),
        ));
    }
    if &bytes[..8] != MAGIC {
        return Err(corrupt(0, "bad magic".to_string()));
    }
    let version = be_u32(&bytes[8..12]);
    if version != VERSION {
        return Err(corrupt(8, format!("unsupported format version {version}")));
    }
    let crc = be_u32(&bytes[12..16]);
    let len = be_u32(&bytes[16..20]) as usize;
    let payload = &bytes[HEADER_LEN..];
    if payload.len() != len {
        return Err(corrupt(
            16,
            format!("payload length {len} but {} bytes follow", payload.len()),
        ));
    }
    if crc32c::crc32c(payload) != crc {
        return Err(corrupt(HEADER_LEN as u64, "checksum mismatch".to_string()));
    }
    QuorumState::decode(payload)
        .map_err(|e| corrupt(HEADER_LEN as u64, format!("undecodable quorum state: {e}")))
}

/// Reads `dir/quorum-state`; `None` if the file does not exist.
pub(crate) fn read(dir: &Path) -> Result<Option<QuorumState>, StorageError> {
    let path = dir.join(FILE_NAME);
    match fs::read(&path) {
        Ok(bytes) => decode(&path, &bytes).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// Replaces `dir/quorum-state` atomically; durable when this returns.
pub(crate) fn write(dir: &Path, state: &QuorumState) -> Result<(), StorageError> {
    write_atomic(dir, FILE_NAME, &encode(state)).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> QuorumState {
        QuorumState {
            term: 7,
            vote: 2,
            commit: 41,
            voters: vec![1, 2, 3],
            learners: vec![],
        }
    }

    #[test]
    fn round_trip_through_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        write(dir.path(), &sample()).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(sample()));
        let next = QuorumState {
            term: 8,
            ..sample()
        };
        write(dir.path(), &next).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(next));
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let good = encode(&sample());
        let path = Path::new("quorum-state");
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            let err = decode(path, &bad).unwrap_err();
            assert!(
                matches!(err, StorageError::Corrupt { .. }),
                "byte {i}: {err}"
            );
        }
        for len in 0..good.len() {
            assert!(decode(path, &good[..len]).is_err(), "truncated to {len}");
        }
    }
}
