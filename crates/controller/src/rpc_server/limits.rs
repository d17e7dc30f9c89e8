//! The CONTROLLER listener's connection limits: how many connections it
//! holds at once, and how long one may sit without completing a frame.
//!
//! In: accepted sockets and their frames. [`accept`] hangs up at once on a
//! connection beyond [`ConnectionLimits::max_connections`] (with a warning
//! at most once a second); [`next_frame`] ends a connection that completes
//! no frame within [`ConnectionLimits::idle_timeout`] (an idle peer, or
//! one dribbling a frame's bytes). The size of a frame is capped by the
//! codec (`kraft_rpc::MAX_FRAME_BYTES`), which reserves nothing up front.
//!
//! These limits bound what an anonymous client can hold, not who may
//! connect: authenticating peers, brokers and admin clients comes with the
//! security work (the listener knows no identities yet).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures::StreamExt;
use kraft_rpc::FrameCodec;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

/// Limits on the connections of one CONTROLLER listener.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Connections held at once; more are closed as soon as accepted. A
    /// controller serves its peers (one connection each way), each broker
    /// (a small pool) and admin tools, so a thousand leaves ample room.
    pub max_connections: usize,
    /// Kafka's `connections.max.idle.ms` (10 minutes): a connection that
    /// completes no frame for this long is closed. Brokers and Raft peers
    /// reconnect on their next request. Time spent answering (a metadata
    /// long poll) does not count.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 1000,
            idle_timeout: Duration::from_secs(600),
        }
    }
}

/// Accepts connections until the task is dropped, running `serve` on each
/// while fewer than `limits.max_connections` are open.
pub(super) async fn accept<F, Fut>(listener: TcpListener, limits: ConnectionLimits, serve: F)
where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Forget finished connections: the set holds open ones.
                    while connections.try_join_next().is_some() {}
                    if connections.len() >= limits.max_connections {
                        refused(peer, limits.max_connections);
                        drop(stream);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve(stream, peer));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed on the CONTROLLER listener");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// The next frame, or `None` when the peer closed the connection or
/// completed no frame within `idle` (the caller then closes it).
pub(super) async fn next_frame<S>(
    framed: &mut Framed<S, FrameCodec>,
    idle: Duration,
) -> Option<std::io::Result<BytesMut>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(idle, framed.next()).await {
        Ok(frame) => frame,
        Err(_) => {
            tracing::debug!(?idle, "idle controller connection closed");
            None
        }
    }
}

/// When the last refusal was logged, and how many since were not.
static REFUSED: Mutex<(Option<Instant>, u64)> = Mutex::new((None, 0));

fn refused(peer: SocketAddr, limit: usize) {
    let Ok(mut warned) = REFUSED.lock() else {
        return;
    };
    let now = Instant::now();
    if warned
        .0
        .is_some_and(|at| now.duration_since(at) < Duration::from_secs(1))
    {
        warned.1 += 1;
        return;
    }
    let suppressed = std::mem::take(&mut warned.1);
    warned.0 = Some(now);
    tracing::warn!(%peer, limit, suppressed, "CONTROLLER listener at its connection limit; connection refused");
}

#[cfg(test)]
mod tests {
    use bytes::BufMut;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Reads until `stream` closes, or the wait ends; true if it closed.
    async fn closes(stream: &mut TcpStream) -> bool {
        let mut buf = [0u8; 16];
        matches!(
            tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_are_closed_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = ConnectionLimits {
            max_connections: 2,
            idle_timeout: Duration::from_secs(600),
        };
        let (served_tx, mut served) = tokio::sync::mpsc::unbounded_channel();
        let server = tokio::spawn(accept(listener, limits, move |mut stream, _| {
            let served = served_tx.clone();
            async move {
                let _ = served.send(());
                // Hold the connection until the client closes it.
                let mut buf = [0u8; 16];
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
            }
        }));
        let _a = TcpStream::connect(addr).await.unwrap();
        let _b = TcpStream::connect(addr).await.unwrap();
        served.recv().await.unwrap();
        served.recv().await.unwrap();
        let mut third = TcpStream::connect(addr).await.unwrap();
        assert!(closes(&mut third).await, "a third connection was kept");
        // One closes: there is room again (once the server has seen it go;
        // until then a newcomer is still refused).
        drop(_a);
        loop {
            let mut next = TcpStream::connect(addr).await.unwrap();
            tokio::select! {
                _ = served.recv() => break,
                closed = closes(&mut next) => assert!(closed, "neither served nor refused"),
            }
        }
        server.abort();
    }

    #[tokio::test]
    async fn a_connection_that_completes_no_frame_is_ended() {
        let (client, server) = tokio::io::duplex(1024);
        let mut framed = Framed::new(server, kraft_rpc::frame_codec());
        let mut client = client;
        let mut half = BytesMut::new();
        half.put_u32(100);
        half.put_slice(&[0; 10]);
        client.write_all(&half).await.unwrap();
        assert!(next_frame(&mut framed, Duration::from_millis(100))
            .await
            .is_none());
        // A whole frame within the limit is delivered.
        let (client, server) = tokio::io::duplex(1024);
        let mut framed = Framed::new(server, kraft_rpc::frame_codec());
        let mut client = client;
        let mut whole = BytesMut::new();
        whole.put_u32(3);
        whole.put_slice(b"abc");
        client.write_all(&whole).await.unwrap();
        let frame = next_frame(&mut framed, Duration::from_secs(60)).await;
        assert_eq!(&frame.unwrap().unwrap()[..], b"abc");
    }
}
