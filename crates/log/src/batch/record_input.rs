//! Where the record walker ([`super::records`]) reads bytes from, and
//! how it fails: the [`Input`] trait, in place over an uncompressed batch
//! ([`Slice`], a record's body a [`SliceBody`]) or streamed out of a
//! capped decompressor ([`Stream`], [`StreamBody`]); Kafka's zigzag
//! varints; and [`Fault`], the walk's small `Copy` error.
//!
//! In: bytes. Out: bytes, varints and faults; a body never reads past the
//! record's stated length, a take never past the input.

use std::io::{BufRead, BufReader, Read};
use std::ops::Range;

use bytes::Bytes;

use super::decompress::read_error;
use crate::error::BatchError;

/// Why a record does not decode: small and `Copy`, so that the walk's
/// results stay in registers; the walk in `records.rs` turns it into a
/// [`BatchError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fault {
    /// The batch ended before the record did.
    Truncated,
    /// A field runs past the record's stated length.
    Overrun,
    /// The record's stated length is longer than its fields.
    Underrun,
    /// A record length below the 6 bytes every body takes.
    RecordLength(i32),
    /// A key, value or header length below -1, or a negative header key
    /// length or header count.
    Length(Field, i32),
    VarintTooLong,
    TimestampOverflow,
    /// A record whose offset delta is not its index.
    OffsetDelta(i32),
    /// The decompressor failed; the stream keeps the error.
    Stream,
}

/// A record field whose length can be wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Field {
    Key,
    Value,
    HeaderCount,
    HeaderKey,
    HeaderValue,
}

impl Field {
    pub(super) fn name(self) -> &'static str {
        match self {
            Field::Key => "key length",
            Field::Value => "value length",
            Field::HeaderCount => "header count",
            Field::HeaderKey => "header key length",
            Field::HeaderValue => "header value length",
        }
    }
}

/// Where the bytes of records come from.
pub(super) trait Input {
    /// The input for the next `len` bytes, one record's body: reading past
    /// them is [`Fault::Overrun`].
    type Body<'s>: Input
    where
        Self: 's;
    fn body(&mut self, len: u64) -> Result<Self::Body<'_>, Fault>;
    /// The next byte.
    fn byte(&mut self) -> Result<u8, Fault>;
    /// Whether no byte is left.
    fn at_end(&mut self) -> Result<bool, Fault>;
    /// The next `n` bytes, returned if `keep`, else skipped.
    fn take(&mut self, n: u64, keep: bool) -> Result<Option<Bytes>, Fault>;
}

/// Uncompressed records, in place.
pub(super) struct Slice<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
    /// The batch as `Bytes` and where `buf` starts in it, to slice kept
    /// keys and values without a copy.
    pub(super) owner: Option<(&'a Bytes, usize)>,
}

impl<'a> Slice<'a> {
    /// Skips `n` bytes; their range, or `fault` if fewer are left.
    #[inline]
    fn advance(&mut self, n: u64, fault: Fault) -> Result<Range<usize>, Fault> {
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .filter(|end| *end <= self.buf.len())
            .ok_or(fault)?;
        let range = self.pos..end;
        self.pos = end;
        Ok(range)
    }

    #[inline]
    fn next(&mut self, fault: Fault) -> Result<u8, Fault> {
        let b = *self.buf.get(self.pos).ok_or(fault)?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    fn take_or(&mut self, n: u64, keep: bool, fault: Fault) -> Result<Option<Bytes>, Fault> {
        let range = self.advance(n, fault)?;
        Ok(keep.then(|| match self.owner {
            Some((owner, at)) => owner.slice(at + range.start..at + range.end),
            None => Bytes::copy_from_slice(&self.buf[range]),
        }))
    }
}

impl<'a> Input for Slice<'a> {
    type Body<'s>
        = SliceBody<'a>
    where
        Self: 's;

    #[inline]
    fn body(&mut self, len: u64) -> Result<SliceBody<'a>, Fault> {
        let range = self.advance(len, Fault::Truncated)?;
        Ok(SliceBody(Slice {
            buf: &self.buf[range.clone()],
            pos: 0,
            owner: self.owner.map(|(owner, at)| (owner, at + range.start)),
        }))
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, Fault> {
        self.next(Fault::Truncated)
    }

    #[inline]
    fn at_end(&mut self) -> Result<bool, Fault> {
        Ok(self.pos >= self.buf.len())
    }

    #[inline]
    fn take(&mut self, n: u64, keep: bool) -> Result<Option<Bytes>, Fault> {
        self.take_or(n, keep, Fault::Truncated)
    }
}

/// A record's body in place: its slice bounds it.
pub(super) struct SliceBody<'a>(Slice<'a>);

impl<'a> Input for SliceBody<'a> {
    type Body<'s>
        = SliceBody<'a>
    where
        Self: 's;

    fn body(&mut self, _len: u64) -> Result<SliceBody<'a>, Fault> {
        Err(Fault::Overrun)
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, Fault> {
        self.0.next(Fault::Overrun)
    }

    #[inline]
    fn at_end(&mut self) -> Result<bool, Fault> {
        self.0.at_end()
    }

    #[inline]
    fn take(&mut self, n: u64, keep: bool) -> Result<Option<Bytes>, Fault> {
        self.0.take_or(n, keep, Fault::Overrun)
    }
}

/// Decompressed records, streamed.
pub(super) struct Stream<R> {
    pub(super) reader: BufReader<R>,
    pub(super) pos: u64,
    /// Why the decompressor failed, once it has.
    pub(super) error: Option<BatchError>,
}

impl<R: Read> Stream<R> {
    fn failed(&mut self, e: std::io::Error) -> Fault {
        self.error = Some(read_error(e));
        Fault::Stream
    }
}

impl<R: Read> Input for Stream<R> {
    type Body<'s>
        = StreamBody<'s, R>
    where
        Self: 's;

    fn body(&mut self, len: u64) -> Result<StreamBody<'_, R>, Fault> {
        let start = self.pos;
        Ok(StreamBody {
            input: self,
            start,
            length: len,
        })
    }

    fn byte(&mut self) -> Result<u8, Fault> {
        let mut b = [0u8; 1];
        match self.reader.read_exact(&mut b) {
            Ok(()) => {
                self.pos += 1;
                Ok(b[0])
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(Fault::Truncated),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn at_end(&mut self) -> Result<bool, Fault> {
        match self.reader.fill_buf() {
            Ok(buf) => Ok(buf.is_empty()),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn take(&mut self, n: u64, keep: bool) -> Result<Option<Bytes>, Fault> {
        let mut limited = (&mut self.reader).take(n);
        let read = if keep {
            // Grows with the bytes that really arrive, never sized by `n`.
            let mut out = Vec::new();
            limited
                .read_to_end(&mut out)
                .map(|got| (got as u64, Some(Bytes::from(out))))
        } else {
            std::io::copy(&mut limited, &mut std::io::sink()).map(|got| (got, None))
        };
        let (got, kept) = read.map_err(|e| self.failed(e))?;
        self.pos += got;
        if got < n {
            return Err(Fault::Truncated);
        }
        Ok(kept)
    }
}

/// A streamed record's body: reads may not go past its stated length.
pub(super) struct StreamBody<'i, R> {
    input: &'i mut Stream<R>,
    start: u64,
    length: u64,
}

impl<R: Read> StreamBody<'_, R> {
    fn left(&self) -> u64 {
        self.length.saturating_sub(self.input.pos - self.start)
    }
}

impl<'i, R: Read> Input for StreamBody<'i, R> {
    type Body<'s>
        = SliceBody<'static>
    where
        Self: 's;

    fn body(&mut self, _len: u64) -> Result<SliceBody<'static>, Fault> {
        Err(Fault::Overrun)
    }

    fn byte(&mut self) -> Result<u8, Fault> {
        if self.left() == 0 {
            return Err(Fault::Overrun);
        }
        self.input.byte()
    }

    fn at_end(&mut self) -> Result<bool, Fault> {
        Ok(self.left() == 0)
    }

    fn take(&mut self, n: u64, keep: bool) -> Result<Option<Bytes>, Fault> {
        if n > self.left() {
            return Err(Fault::Overrun);
        }
        self.input.take(n, keep)
    }
}

/// A zigzag varint of at most 5 bytes.
#[inline]
pub(super) fn varint(input: &mut impl Input) -> Result<i32, Fault> {
    let raw = unsigned(input, 5)?;
    let raw = u32::try_from(raw).map_err(|_| Fault::VarintTooLong)?;
    Ok((raw >> 1) as i32 ^ -((raw & 1) as i32))
}

/// A zigzag varlong of at most 10 bytes.
#[inline]
pub(super) fn varlong(input: &mut impl Input) -> Result<i64, Fault> {
    let raw = unsigned(input, 10)?;
    Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
}

#[inline]
fn unsigned(input: &mut impl Input, max_bytes: u32) -> Result<u64, Fault> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        let b = input.byte()?;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Fault::VarintTooLong)
}
