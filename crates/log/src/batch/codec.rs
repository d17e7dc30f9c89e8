//! Whole-payload decompression and compression of a batch's records, for
//! rewriting stored batches (the log cleaner) with the codec they came in.
//!
//! In: a stored batch's codec and payload (the bytes after its header).
//! Out: [`decompress_all`] gives the record bytes, capped as every
//! decompression in the crate is ([`super::decompress`]); [`compress`]
//! turns record bytes back into a payload of the same codec, in a framing
//! Kafka's Java clients read (gzip; snappy raw or in xerial's framing, as
//! the original was; lz4 frames with independent blocks and no content
//! checksum, as Kafka writes them; zstd).

use std::io::{Read, Write};

use super::decompress::{decompressor, read_error, XERIAL_HEADER_LEN, XERIAL_MAGIC};
use crate::error::BatchError;

/// The record bytes of `payload` under `codec`, at most `limit` of them.
pub(crate) fn decompress_all(codec: u8, payload: &[u8], limit: u64) -> Result<Vec<u8>, BatchError> {
    let mut reader = decompressor(codec, payload, limit)?;
    let mut out = Vec::new();
    reader.read_to_end(&mut out).map_err(read_error)?;
    Ok(out)
}

/// `records` compressed under `codec`; `original` is the payload being
/// rewritten (snappy keeps its framing).
pub(crate) fn compress(codec: u8, records: &[u8], original: &[u8]) -> Result<Vec<u8>, BatchError> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        BatchError::invalid(format!("cannot compress the records with {what}: {e}"))
    };
    match codec {
        0 => Ok(records.to_vec()),
        1 => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(records).map_err(|e| failed("gzip", &e))?;
            enc.finish().map_err(|e| failed("gzip", &e))
        }
        2 => {
            let mut enc = snap::raw::Encoder::new();
            if !original.starts_with(XERIAL_MAGIC) {
                return enc.compress_vec(records).map_err(|e| failed("snappy", &e));
            }
            // Xerial: magic, version 1, compatible version 1, then blocks.
            let mut out = original[..XERIAL_HEADER_LEN].to_vec();
            for chunk in records.chunks(32 * 1024) {
                let block = enc.compress_vec(chunk).map_err(|e| failed("snappy", &e))?;
                out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        3 => {
            let mut enc = lz4::EncoderBuilder::new()
                .block_mode(lz4::BlockMode::Independent)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .block_size(lz4::BlockSize::Max64KB)
                .build(Vec::new())
                .map_err(|e| failed("lz4", &e))?;
            enc.write_all(records).map_err(|e| failed("lz4", &e))?;
            let (out, done) = enc.finish();
            done.map_err(|e| failed("lz4", &e))?;
            Ok(out)
        }
        4 => zstd::stream::encode_all(records, 3).map_err(|e| failed("zstd", &e)),
        other => Err(BatchError::invalid(format!(
            "unknown compression codec {other}"
        ))),
    }
}
