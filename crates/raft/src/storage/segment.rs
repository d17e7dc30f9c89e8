//! Segment files: naming, the frame codec and the recovery scan.
//!
//! A segment `<base:020>.log` holds consecutive entries starting at `base`:
//!
//! ```text
//! header:  magic "KRAFTLOG" (8) | version u32 BE (=1)
//! frames:  length u32 BE | crc32c(payload) u32 BE | payload (eraftpb::Entry, protobuf)
//! ```
//!
//! [`scan`] validates a whole file against a recovery point: past it (in the
//! last segment, after the persisted commit index) the first invalid frame
//! is reported as `torn`, an unsynced tail the caller truncates; at or below
//! it any damage is [`StorageError::Corrupt`] with the file and byte offset.

use std::path::Path;

use protobuf::Message as _;
use raft::eraftpb::Entry;

use super::fsutil::be_u32;
use super::StorageError;

pub(crate) const MAGIC: &[u8; 8] = b"KRAFTLOG";
pub(crate) const VERSION: u32 = 1;
/// Bytes before the first frame.
pub(crate) const HEADER_LEN: u64 = 12;
/// Bytes before a frame's payload.
pub(crate) const FRAME_HEADER_LEN: u64 = 8;
const SUFFIX: &str = ".log";

/// The file name of the segment whose first entry is `base`.
pub fn segment_file_name(base: u64) -> String {
    format!("{base:020}{SUFFIX}")
}

/// Parses `<base:020>.log`.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(SUFFIX)?;
    if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
        stem.parse().ok()
    } else {
        None
    }
}

/// The 12-byte segment header.
pub(crate) fn header() -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..].copy_from_slice(&VERSION.to_be_bytes());
    h
}

/// Appends the frame of `entry` to `out`.
pub(crate) fn encode_frame(entry: &Entry, out: &mut Vec<u8>) -> Result<(), StorageError> {
    let payload = entry.write_to_bytes().map_err(|e| StorageError::Encode {
        what: "raft entry",
        reason: e.to_string(),
    })?;
    let len = u32::try_from(payload.len()).map_err(|_| StorageError::Encode {
        what: "raft entry",
        reason: format!("{} bytes does not fit a frame", payload.len()),
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

/// The `synced_through` of a sealed segment: every byte was fsynced when
/// the log rolled past it, so any damage in it is corruption.
pub(crate) const SEALED: u64 = u64::MAX;

/// What [`scan`] found in one segment file.
#[derive(Debug)]
pub(crate) struct ScannedSegment {
    /// Each valid entry with the byte offset of its frame.
    pub entries: Vec<(Entry, u64)>,
    /// Bytes of the file that are valid (header plus whole frames).
    pub valid_len: u64,
    /// Why the bytes after `valid_len` are an unsynced tail to cut off, if any.
    pub torn: Option<String>,
}

/// Validates the segment file `path` whose content is `data` and whose file
/// name says it starts at `base`.
///
/// `synced_through` is the recovery point: entries up to that index were
/// fsynced ([`SEALED`] for a sealed segment), so damage where they should be
/// is [`StorageError::Corrupt`]. Past it, the first invalid frame (cut short,
/// bad length or checksum, zeros, undecodable, out of sequence) ends the
/// log, whatever follows it: a power loss can leave unsynced pages unwritten
/// or garbage while later ones reached the disk. It is reported as `torn`.
/// A segment wholly past the point whose header is a prefix of the header
/// or zeros (created, never synced) is torn at 0.
pub(crate) fn scan(
    path: &Path,
    data: &[u8],
    base: u64,
    synced_through: u64,
) -> Result<ScannedSegment, StorageError> {
    let corrupt = |offset: u64, reason: String| StorageError::Corrupt {
        file: path.to_path_buf(),
        offset,
        reason,
    };
    let file_len = data.len() as u64;
    let expected_header = header();
    let head = &data[..data.len().min(HEADER_LEN as usize)];
    if file_len < HEADER_LEN || head != expected_header {
        let unwritten = expected_header.starts_with(head) || head.iter().all(|&b| b == 0);
        if base > synced_through && unwritten {
            // A crash soon after the file was created.
            return Ok(ScannedSegment {
                entries: Vec::new(),
                valid_len: 0,
                torn: Some(format!("unwritten segment header in {file_len} bytes")),
            });
        }
        if file_len < HEADER_LEN {
            return Err(corrupt(
                0,
                format!("{file_len}-byte file is shorter than a segment header"),
            ));
        }
        if &data[..8] != MAGIC {
            return Err(corrupt(0, "bad segment magic".to_string()));
        }
        let version = be_u32(&data[8..12]);
        return Err(corrupt(
            8,
            format!("unsupported segment format version {version}"),
        ));
    }

    let mut entries = Vec::new();
    let mut pos = HEADER_LEN;
    let mut expected_index = base;
    let torn = loop {
        if pos == file_len {
            break None;
        }
        match read_frame(&data[pos as usize..], expected_index) {
            Ok((entry, frame_len)) => {
                entries.push((entry, pos));
                expected_index += 1;
                pos += frame_len;
            }
            Err(reason) if expected_index > synced_through => break Some(reason),
            Err(reason) => return Err(corrupt(pos, reason)),
        }
    };
    Ok(ScannedSegment {
        entries,
        valid_len: pos,
        torn,
    })
}

/// Decodes the frame at the start of `rest`, which must hold the entry at
/// `expected_index`: the entry and the frame's length, or why it is invalid.
fn read_frame(rest: &[u8], expected_index: u64) -> Result<(Entry, u64), String> {
    if rest.iter().all(|&b| b == 0) {
        return Err(format!("{} zero bytes to the end", rest.len()));
    }
    if (rest.len() as u64) < FRAME_HEADER_LEN {
        return Err(format!("incomplete {}-byte frame header", rest.len()));
    }
    let len = u64::from(be_u32(&rest[..4]));
    let crc = be_u32(&rest[4..8]);
    let frame_len = FRAME_HEADER_LEN + len;
    if frame_len > rest.len() as u64 {
        return Err(format!(
            "{len}-byte frame runs {} bytes past the end",
            frame_len - rest.len() as u64
        ));
    }
    let payload = &rest[FRAME_HEADER_LEN as usize..frame_len as usize];
    if crc32c::crc32c(payload) != crc {
        return Err("frame checksum mismatch".to_string());
    }
    if len == 0 {
        return Err("empty frame".to_string());
    }
    let entry =
        Entry::parse_from_bytes(payload).map_err(|e| format!("undecodable raft entry: {e}"))?;
    if entry.index != expected_index {
        return Err(format!(
            "expected entry index {expected_index}, found {}",
            entry.index
        ));
    }
    Ok((entry, frame_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: format!("payload-{index}").into_bytes().into(),
            ..Entry::default()
        }
    }

    fn segment(base: u64, n: u64) -> (Vec<u8>, Vec<u64>) {
        let mut data = header().to_vec();
        let mut offsets = Vec::new();
        for i in base..base + n {
            offsets.push(data.len() as u64);
            encode_frame(&entry(i, 1), &mut data).unwrap();
        }
        (data, offsets)
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(segment_file_name(1), "00000000000000000001.log");
        assert_eq!(parse_file_name("00000000000000000001.log"), Some(1));
        assert_eq!(parse_file_name("1.log"), None);
        assert_eq!(parse_file_name("0000000000000000000x.log"), None);
    }

    #[test]
    fn scans_clean_segment() {
        let (data, offsets) = segment(5, 3);
        let s = scan(Path::new("x"), &data, 5, SEALED).unwrap();
        assert_eq!(s.torn, None);
        assert_eq!(s.valid_len, data.len() as u64);
        let found: Vec<_> = s.entries.iter().map(|(e, o)| (e.index, *o)).collect();
        assert_eq!(
            found,
            vec![(5, offsets[0]), (6, offsets[1]), (7, offsets[2])]
        );
    }

    #[test]
    fn zero_tail_and_short_header_are_torn_only_in_last_segment() {
        let (mut data, _) = segment(1, 2);
        let len = data.len() as u64;
        data.extend_from_slice(&[0u8; 100]);
        let s = scan(Path::new("x"), &data, 1, 0).unwrap();
        assert_eq!((s.entries.len(), s.valid_len), (2, len));
        assert!(s.torn.is_some());
        assert!(scan(Path::new("x"), &data, 1, SEALED).is_err());

        let s = scan(Path::new("x"), &header()[..5], 1, 0).unwrap();
        assert_eq!((s.entries.len(), s.valid_len), (0, 0));
        assert!(scan(Path::new("x"), b"KRAFTXX", 1, 0).is_err());
    }

    #[test]
    fn wrong_first_index_is_corrupt() {
        let (data, _) = segment(1, 2);
        let err = scan(Path::new("x"), &data, 2, 2).unwrap_err();
        assert!(
            matches!(
                err,
                StorageError::Corrupt {
                    offset: HEADER_LEN,
                    ..
                }
            ),
            "{err}"
        );
        // Past the recovery point it ends the log instead.
        let s = scan(Path::new("x"), &data, 2, 1).unwrap();
        assert_eq!((s.entries.len(), s.valid_len), (0, HEADER_LEN));
        assert!(s.torn.is_some());
    }
}
