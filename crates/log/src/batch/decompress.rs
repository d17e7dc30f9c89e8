//! Reading a compressed batch's records as a stream, with a hard cap on
//! the decompressed bytes.
//!
//! In: a batch's compression codec and the bytes after its 61-byte header.
//! Out: an [`std::io::Read`] of the decompressed record bytes that fails
//! with [`OverLimit`] once more than the cap would come out, so a
//! decompression bomb costs at most the cap in CPU and never its size in
//! memory: gzip, lz4 and zstd are decoded as streams (zstd's window is
//! capped too), and snappy, whose blocks state their decompressed length up
//! front, is checked against the cap before a block is allocated.
//!
//! The cap, [`decompression_limit`], is 64 times `max.message.bytes`
//! (64 MiB at Kafka's default of 1 MiB), and never below 64 MiB: real
//! record data compresses well below 64:1 at batch sizes (Kafka's producers
//! size batches by their compressed estimate, so a batch of very repetitive
//! records may reach tens to one), while a bomb reaches 30,000:1. A batch
//! above the cap is refused with MESSAGE_TOO_LARGE, which lets a Java
//! producer split the batch and retry.

use std::io::{self, Read};

use crate::error::BatchError;

/// The most decompressed bytes one batch may expand to, for a topic whose
/// `max.message.bytes` is `max_message_bytes`.
pub fn decompression_limit(max_message_bytes: u32) -> u64 {
    (u64::from(max_message_bytes) * 64).max(64 << 20)
}

/// The largest zstd window a batch may ask for (2^24 = 16 MiB); every zstd
/// level up to 19 stays below it.
const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// Xerial's snappy framing, used by Kafka's Java clients: an 8-byte magic,
/// two version ints, then blocks each prefixed by its compressed length.
pub(super) const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
pub(super) const XERIAL_HEADER_LEN: usize = 16;

/// The io error a [`Capped`] reader returns past its limit.
#[derive(Debug, thiserror::Error)]
#[error("decompressed data exceeds the limit of {limit} bytes")]
pub(crate) struct OverLimit {
    pub limit: u64,
}

/// A reader that fails once more than `limit` bytes would come out of it.
struct Capped<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(OverLimit { limit: self.limit })),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// The decompressed stream of `payload` (the bytes after a batch header)
/// under `codec` (1 gzip, 2 snappy, 3 lz4, 4 zstd), capped at `limit` bytes.
pub(crate) fn decompressor<'a>(
    codec: u8,
    payload: &'a [u8],
    limit: u64,
) -> Result<Box<dyn Read + 'a>, BatchError> {
    let inner: Box<dyn Read + 'a> = match codec {
        1 => Box::new(flate2::read::GzDecoder::new(payload)),
        2 => Box::new(io::Cursor::new(snappy(payload, limit)?)),
        3 => Box::new(lz4::Decoder::new(payload).map_err(|e| cannot("lz4", &e))?),
        4 => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(payload)
                .map_err(|e| cannot("zstd", &e))?;
            decoder
                .window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(|e| cannot("zstd", &e))?;
            Box::new(decoder)
        }
        other => {
            return Err(BatchError::invalid(format!(
                "unknown compression codec {other}"
            )))
        }
    };
    Ok(Box::new(Capped {
        inner,
        left: limit,
        limit,
    }))
}

fn cannot(codec: &str, e: &dyn std::fmt::Display) -> BatchError {
    BatchError::corrupt(format!("cannot decompress {codec} records: {e}"))
}

/// A read error of a decompressor as the batch's error: over the cap is
/// too large, anything else a corrupt stream.
pub(crate) fn read_error(e: io::Error) -> BatchError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<OverLimit>())
    {
        Some(over) => BatchError::DecompressedTooLarge { limit: over.limit },
        None => BatchError::corrupt(format!("cannot decompress the records: {e}")),
    }
}

/// Snappy, raw or in xerial's framing, into one buffer of at most `limit`
/// bytes: each block's stated length is checked before it is allocated.
fn snappy(payload: &[u8], limit: u64) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::new();
    let block = |compressed: &[u8], out: &mut Vec<u8>| -> Result<(), BatchError> {
        let len = snap::raw::decompress_len(compressed).map_err(|e| cannot("snappy", &e))?;
        if (out.len() + len) as u64 > limit {
            return Err(BatchError::DecompressedTooLarge { limit });
        }
        let start = out.len();
        out.resize(start + len, 0);
        snap::raw::Decoder::new()
            .decompress(compressed, &mut out[start..])
            .map_err(|e| cannot("snappy", &e))?;
        Ok(())
    };
    if !payload.starts_with(XERIAL_MAGIC) {
        block(payload, &mut out)?;
        return Ok(out);
    }
    let mut rest = payload.get(XERIAL_HEADER_LEN..).unwrap_or_default();
    while !rest.is_empty() {
        let Some((len, after)) = rest.split_first_chunk::<4>() else {
            return Err(BatchError::corrupt("truncated snappy block length"));
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len > after.len() {
            return Err(BatchError::corrupt("truncated snappy block"));
        }
        block(&after[..len], &mut out)?;
        rest = &after[len..];
    }
    Ok(out)
}
