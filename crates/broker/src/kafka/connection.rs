//! [`ClientConnection`]: the broker's end of one client socket — Kafka's
//! framing (a big-endian `i32` size, then that many bytes) with the
//! listener's limits applied as the bytes move.
//!
//! In: bytes from the socket. A frame's size is read first (4 bytes, and
//! never more than the frame needs: bytes of the next request stay in the
//! socket); then its bytes are taken from the shared request
//! [`MemoryPool`] *before* they are read — reading pauses while the pool is
//! empty — and read into a buffer that grows as they arrive, so a size
//! prefix that lies costs no memory. Out: the frame and its
//! [`MemoryPermit`], which the caller keeps until the answer is written;
//! and whole answers written back.
//!
//! `connections.max.idle.ms`: every wait for the peer (a byte to read, room
//! to write) gives up after the idle time, which closes the connection, as
//! Kafka closes a connection with no activity. A client that stops
//! reading its answers therefore holds its bytes for one idle time at most.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::context::{MemoryPermit, MemoryPool};
use crate::kafka::error::ConnectionError;

/// The most a frame's buffer grows by per read: memory follows the bytes
/// that arrived, not the size the prefix announced.
const READ_CHUNK: usize = 64 * 1024;

/// One client socket.
pub struct ClientConnection {
    stream: TcpStream,
    max_frame: usize,
    idle: Duration,
}

impl ClientConnection {
    /// Wraps `stream`: frames of at most `max_frame` bytes, closed after
    /// `idle` without progress.
    pub fn new(stream: TcpStream, max_frame: usize, idle: Duration) -> ClientConnection {
        ClientConnection {
            stream,
            max_frame,
            idle,
        }
    }

    /// Sets the largest frame accepted from now on.
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.max_frame = max_frame;
    }

    /// The next request frame (without its size) and the pool bytes it
    /// holds, or `None` when the peer closed the connection between frames.
    pub async fn read_request(
        &mut self,
        pool: &MemoryPool,
    ) -> Result<Option<(Bytes, MemoryPermit)>, ConnectionError> {
        let mut prefix = [0u8; 4];
        let mut got = 0;
        while got < prefix.len() {
            let n = idle_bound(self.idle, self.stream.read(&mut prefix[got..])).await?;
            if n == 0 {
                return if got == 0 {
                    Ok(None)
                } else {
                    Err(ConnectionError::EofMidFrame { buffered: got })
                };
            }
            got += n;
        }
        let size = i32::from_be_bytes(prefix);
        let len = usize::try_from(size)
            .ok()
            .filter(|len| *len <= self.max_frame)
            .ok_or(ConnectionError::FrameSize {
                size,
                max: self.max_frame,
            })?;
        let permit = pool.acquire(len).await;
        let mut frame = BytesMut::new();
        while frame.len() < len {
            let want = (len - frame.len()).min(READ_CHUNK);
            frame.reserve(want);
            let mut room = (&mut frame).limit(want);
            if idle_bound(self.idle, self.stream.read_buf(&mut room)).await? == 0 {
                return Err(ConnectionError::EofMidFrame {
                    buffered: 4 + frame.len(),
                });
            }
        }
        Ok(Some((frame.freeze(), permit)))
    }

    /// Writes an answer (size prefix included) and flushes it; each write
    /// must make progress within the idle time.
    pub async fn write_response(&mut self, mut bytes: &[u8]) -> Result<(), ConnectionError> {
        while !bytes.is_empty() {
            let n = idle_bound(self.idle, self.stream.write(bytes)).await?;
            if n == 0 {
                return Err(ConnectionError::Io(std::io::ErrorKind::WriteZero.into()));
            }
            bytes = &bytes[n..];
        }
        idle_bound(self.idle, self.stream.flush()).await?;
        Ok(())
    }
}

/// `io`, or [`ConnectionError::Idle`] if it makes no progress within `idle`.
async fn idle_bound<T>(
    idle: Duration,
    io: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, ConnectionError> {
    match tokio::time::timeout(idle, io).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(ConnectionError::Idle(idle)),
    }
}
