//! The snapshot file: a [`MetadataImage`] written back as records, framed
//! and checksummed (layout documented in `proto/metadata.proto`):
//!
//! ```text
//! magic "KRAFTSNP" | format version u32 BE (= 1)
//! frame*  where frame = u32 BE payload length | u32 BE crc32c(payload) | payload
//!   first frame:   SnapshotHeader
//!   middle frames: RecordBatch (at most ~1 MiB / 4096 records each)
//!   last frame:    SnapshotFooter { record_count, checksum = crc32c of every byte before this frame }
//! ```
//!
//! [`encode`] turns `(header, image)` into bytes; [`decode`] turns bytes back
//! into `(header, image)` by replaying the records into an empty image, and
//! accepts a snapshot whole or not at all: any damage is an error that says
//! what and where, never a panic and never a different image.
//! [`decode_header`] only peeks at the header.

use kraft_proto::metadata::{MetadataRecord, RecordBatch, SnapshotFooter, SnapshotHeader};
use prost::Message;

use crate::{MetadataDelta, MetadataImage, SnapshotError};

/// The first 8 bytes of every snapshot file.
pub const MAGIC: [u8; 8] = *b"KRAFTSNP";
/// The snapshot format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// A batch frame is closed before it would pass this many payload bytes
/// (a single larger record gets a frame of its own).
pub const MAX_BATCH_BYTES: usize = 1 << 20;
/// A batch frame holds at most this many records.
pub const MAX_BATCH_RECORDS: usize = 4096;

const PREAMBLE_LEN: usize = MAGIC.len() + 4;
const FRAME_HEADER_LEN: usize = 8;

/// Encodes `image` as a snapshot with `header`.
///
/// Contract: `header.offset` must equal `image.offset()` (checked in debug
/// builds); [`decode`] gives the image the header's offset. The other header
/// fields (Raft term, voters, timestamp) are the caller's and are stored
/// as given.
pub fn encode(header: &SnapshotHeader, image: &MetadataImage) -> Vec<u8> {
    debug_assert_eq!(
        header.offset,
        image.offset(),
        "snapshot header offset must equal the image offset"
    );
    encode_with_limits(header, image, MAX_BATCH_BYTES, MAX_BATCH_RECORDS)
}

fn encode_with_limits(
    header: &SnapshotHeader,
    image: &MetadataImage,
    max_batch_bytes: usize,
    max_batch_records: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    write_frame(&mut out, &header.encode_to_vec());

    let mut record_count = 0u64;
    let mut batch = RecordBatch::default();
    let mut batch_bytes = 0usize;
    for r in image.to_records() {
        let len = r.encoded_len();
        // Field tag (1 byte) + length prefix + the record.
        let framed = 1 + prost::length_delimiter_len(len) + len;
        if !batch.records.is_empty()
            && (batch_bytes + framed > max_batch_bytes || batch.records.len() >= max_batch_records)
        {
            write_frame(&mut out, &std::mem::take(&mut batch).encode_to_vec());
            batch_bytes = 0;
        }
        batch_bytes += framed;
        record_count += 1;
        batch.records.push(r);
    }
    if !batch.records.is_empty() {
        write_frame(&mut out, &batch.encode_to_vec());
    }

    let footer = SnapshotFooter {
        record_count,
        checksum: crc32c::crc32c(&out),
    };
    write_frame(&mut out, &footer.encode_to_vec());
    out
}

fn write_frame(out: &mut Vec<u8>, payload: &[u8]) {
    // Batches are capped near 1 MiB; only a single record over 4 GiB could
    // break this, and no record is remotely that large.
    let len = u32::try_from(payload.len()).expect("snapshot frame payload exceeds 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Decodes a snapshot: checks every frame's crc and the footer (checksum,
/// record count, nothing after it), then replays the records into an empty
/// image whose offset is set to `header.offset`.
pub fn decode(bytes: &[u8]) -> Result<(SnapshotHeader, MetadataImage), SnapshotError> {
    let mut frames = Frames::new(bytes)?;
    let header = read_header(&mut frames)?;

    // Pass 1: find the footer, verifying the integrity of everything.
    let mut batches = Vec::new();
    let mut crc_before = crc32c::crc32c(&bytes[..frames.pos]);
    let mut crc_pos = frames.pos;
    let footer = loop {
        let Some(frame) = frames.next()? else {
            return Err(missing_footer(bytes, &batches, frames.pos));
        };
        crc_before = crc32c::crc32c_append(crc_before, &bytes[crc_pos..frame.at]);
        crc_pos = frame.at;
        if let Some(footer) = as_footer(frame.payload).filter(|f| f.checksum == crc_before) {
            if frames.pos != bytes.len() {
                return Err(SnapshotError::TrailingBytes {
                    at: frames.pos,
                    len: bytes.len() - frames.pos,
                });
            }
            break footer;
        }
        batches.push(frame);
    };

    // Pass 2: decode and replay the batches.
    let mut delta = MetadataDelta::new(MetadataImage::empty());
    let mut found = 0u64;
    for frame in batches {
        let batch =
            RecordBatch::decode(frame.payload).map_err(|source| SnapshotError::Malformed {
                what: "record batch",
                at: frame.at,
                source,
            })?;
        found += batch.records.len() as u64;
        replay_all(&mut delta, &batch.records).map_err(|source| SnapshotError::Replay {
            at: frame.at,
            source,
        })?;
    }
    if found != footer.record_count {
        return Err(SnapshotError::RecordCountMismatch {
            stored: footer.record_count,
            found,
        });
    }
    delta.set_offset(header.offset);
    Ok((header, delta.apply()))
}

/// Reads only the preamble and the header frame; does not verify the rest.
pub fn decode_header(bytes: &[u8]) -> Result<SnapshotHeader, SnapshotError> {
    read_header(&mut Frames::new(bytes)?)
}

fn read_header(frames: &mut Frames<'_>) -> Result<SnapshotHeader, SnapshotError> {
    let frame = frames.next()?.ok_or(SnapshotError::Truncated {
        what: "header frame",
        at: frames.pos,
    })?;
    SnapshotHeader::decode(frame.payload).map_err(|source| SnapshotError::Malformed {
        what: "snapshot header",
        at: frame.at,
        source,
    })
}

fn replay_all(
    delta: &mut MetadataDelta,
    records: &[MetadataRecord],
) -> Result<(), crate::MetadataError> {
    records.iter().try_for_each(|r| delta.replay(r))
}

/// A frame payload read as a footer, if it parses as one. A non-empty
/// record batch never does (its field 1 has another wire type); the empty
/// payload parses as both, but the encoder never writes an empty batch. The
/// caller also requires the footer's checksum to match before taking a
/// frame for the footer, so a batch is never mistaken for it.
fn as_footer(payload: &[u8]) -> Option<SnapshotFooter> {
    SnapshotFooter::decode(payload).ok()
}

/// The error for a snapshot whose frames end without a verified footer: a
/// footer-shaped last frame means its checksum is wrong; anything else
/// means the footer is missing (e.g. the file was cut at a frame boundary).
fn missing_footer(bytes: &[u8], batches: &[Frame<'_>], end: usize) -> SnapshotError {
    match batches.last() {
        Some(last) => match as_footer(last.payload) {
            Some(footer) => SnapshotError::ChecksumMismatch {
                stored: footer.checksum,
                computed: crc32c::crc32c(&bytes[..last.at]),
            },
            None => SnapshotError::MissingFooter { at: last.at },
        },
        None => SnapshotError::MissingFooter { at: end },
    }
}

/// One crc-checked frame: where it starts and its payload.
struct Frame<'a> {
    at: usize,
    payload: &'a [u8],
}

/// Walks the frames after a checked preamble.
struct Frames<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Frames<'a> {
    /// Checks the magic and format version.
    fn new(bytes: &'a [u8]) -> Result<Self, SnapshotError> {
        let magic_len = bytes.len().min(MAGIC.len());
        if bytes[..magic_len] != MAGIC[..magic_len] {
            return Err(SnapshotError::BadMagic);
        }
        let Some(version) = bytes.get(MAGIC.len()..PREAMBLE_LEN) else {
            return Err(SnapshotError::Truncated {
                what: "file preamble",
                at: 0,
            });
        };
        let version = u32::from_be_bytes([version[0], version[1], version[2], version[3]]);
        if version != FORMAT_VERSION {
            return Err(SnapshotError::UnsupportedVersion { version });
        }
        Ok(Self {
            bytes,
            pos: PREAMBLE_LEN,
        })
    }

    /// The next frame, `None` at the end of the bytes.
    fn next(&mut self) -> Result<Option<Frame<'a>>, SnapshotError> {
        let at = self.pos;
        let rest = &self.bytes[at..];
        if rest.is_empty() {
            return Ok(None);
        }
        let Some((head, body)) = rest.split_first_chunk::<FRAME_HEADER_LEN>() else {
            return Err(SnapshotError::Truncated {
                what: "frame header",
                at,
            });
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let stored = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        let payload = usize::try_from(len)
            .ok()
            .and_then(|len| body.get(..len))
            .ok_or(SnapshotError::Truncated {
                what: "frame payload",
                at,
            })?;
        let computed = crc32c::crc32c(payload);
        if computed != stored {
            return Err(SnapshotError::CrcMismatch {
                at,
                stored,
                computed,
            });
        }
        self.pos = at + FRAME_HEADER_LEN + payload.len();
        Ok(Some(Frame { at, payload }))
    }
}

#[cfg(test)]
mod tests {
    use kraft_proto::metadata::{metadata_record::Record, FeatureLevelRecord};

    use super::*;

    fn image_with_features(n: usize) -> MetadataImage {
        let mut delta = MetadataDelta::new(MetadataImage::empty());
        for i in 0..n {
            let r = crate::record(Record::FeatureLevel(FeatureLevelRecord {
                name: format!("feature.{i:04}"),
                feature_level: 1,
            }));
            delta.replay(&r).unwrap();
        }
        delta.set_offset(9);
        delta.apply()
    }

    fn frame_count(bytes: &[u8]) -> usize {
        let mut frames = Frames::new(bytes).unwrap();
        let mut n = 0;
        while frames.next().unwrap().is_some() {
            n += 1;
        }
        n
    }

    #[test]
    fn batches_split_by_record_count_and_bytes() {
        let image = image_with_features(25);
        let header = SnapshotHeader {
            offset: 9,
            ..Default::default()
        };
        // header + ceil(25 / 10) batches + footer
        let bytes = encode_with_limits(&header, &image, usize::MAX, 10);
        assert_eq!(frame_count(&bytes), 1 + 3 + 1);
        assert_eq!(decode(&bytes).unwrap(), (header.clone(), image.clone()));
        // ~20 bytes a record: 100 bytes hold 4 records.
        let bytes = encode_with_limits(&header, &image, 100, usize::MAX);
        assert_eq!(frame_count(&bytes), 1 + 7 + 1);
        assert_eq!(decode(&bytes).unwrap(), (header.clone(), image.clone()));
        // A record larger than the limit gets a frame of its own.
        let bytes = encode_with_limits(&header, &image, 1, usize::MAX);
        assert_eq!(frame_count(&bytes), 1 + 25 + 1);
        assert_eq!(decode(&bytes).unwrap().1, image);
    }

    #[test]
    fn default_limits_keep_batches_small() {
        let image = image_with_features(MAX_BATCH_RECORDS + 1);
        let header = SnapshotHeader {
            offset: 9,
            ..Default::default()
        };
        let bytes = encode(&header, &image);
        assert_eq!(frame_count(&bytes), 1 + 2 + 1);
        assert_eq!(decode(&bytes).unwrap().1, image);
    }

    #[test]
    fn empty_image_round_trips() {
        let header = SnapshotHeader::default();
        let bytes = encode(&header, &MetadataImage::empty());
        assert_eq!(frame_count(&bytes), 2);
        assert_eq!(decode(&bytes).unwrap(), (header, MetadataImage::empty()));
    }
}
