//! [`FramedConnection`]: one TCP socket and its read buffer, speaking
//! Kafka's framing — a big-endian `i32` size, then that many bytes of
//! request or response. Both ends use it: the broker's listener reads
//! requests and writes responses, [`KafkaClient`](crate::KafkaClient) writes
//! requests and reads responses.
//!
//! In: bytes from the socket, buffered in a `BytesMut` until a whole frame
//! is there. Out: whole frames ([`FramedConnection::read_frame`]) and
//! frames written with their size prefix
//! ([`FramedConnection::write_frame`], or
//! [`FramedConnection::write_encoded_frame`] when the prefix is already
//! there). A frame size below 0 or above the limit is a [`FrameError`] (the
//! caller closes the connection); so is EOF in the middle of a frame, while
//! EOF between frames is a clean `Ok(None)`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a framed connection could not read or write a frame.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame size {size} is outside 0..={max}")]
    FrameSize { size: i32, max: usize },
    #[error("the peer closed the connection in the middle of a frame ({buffered} bytes buffered)")]
    EofMidFrame { buffered: usize },
}

/// Bytes read ahead of need: the buffer never grows by more than this for a
/// frame that has not arrived yet, so a lying size prefix costs nothing.
const READ_CHUNK: usize = 64 * 1024;

/// A framed Kafka connection.
#[derive(Debug)]
pub struct FramedConnection {
    stream: TcpStream,
    buffer: BytesMut,
    max_frame: usize,
}

impl FramedConnection {
    /// Wraps `stream`, accepting frames of at most `max_frame` bytes.
    pub fn new(stream: TcpStream, max_frame: usize) -> FramedConnection {
        FramedConnection {
            stream,
            buffer: BytesMut::with_capacity(READ_CHUNK),
            max_frame,
        }
    }

    /// The next whole frame (without its size prefix), or `None` when the
    /// peer closed the connection cleanly between frames.
    pub async fn read_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        loop {
            if let Some(frame) = self.parse_frame()? {
                return Ok(Some(frame));
            }
            if self.buffer.capacity() - self.buffer.len() < READ_CHUNK / 4 {
                self.buffer.reserve(READ_CHUNK);
            }
            if self.stream.read_buf(&mut self.buffer).await? == 0 {
                return if self.buffer.is_empty() {
                    Ok(None)
                } else {
                    Err(FrameError::EofMidFrame {
                        buffered: self.buffer.len(),
                    })
                };
            }
        }
    }

    /// Splits one frame off the buffer if it is all there.
    fn parse_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        let Some(prefix) = self.buffer.get(..4) else {
            return Ok(None);
        };
        let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let len = usize::try_from(size)
            .ok()
            .filter(|len| *len <= self.max_frame)
            .ok_or(FrameError::FrameSize {
                size,
                max: self.max_frame,
            })?;
        if self.buffer.len() < 4 + len {
            return Ok(None);
        }
        self.buffer.advance(4);
        Ok(Some(self.buffer.split_to(len).freeze()))
    }

    /// Writes bytes that are already a whole frame, size prefix included
    /// (the broker encodes its responses that way), and flushes them.
    pub async fn write_encoded_frame(&mut self, frame: &[u8]) -> Result<(), FrameError> {
        self.stream.write_all(frame).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// Writes one frame (size prefix added here) and flushes it.
    pub async fn write_frame(&mut self, payload: &[u8]) -> Result<(), FrameError> {
        let size = i32::try_from(payload.len()).map_err(|_| FrameError::FrameSize {
            size: i32::MAX,
            max: i32::MAX as usize,
        })?;
        let mut out = BytesMut::with_capacity(4 + payload.len());
        out.put_i32(size);
        out.put_slice(payload);
        self.stream.write_all(&out).await?;
        self.stream.flush().await?;
        Ok(())
    }
}
