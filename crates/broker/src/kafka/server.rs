//! [`KafkaServer`]: accepts Kafka client connections and serves each on its
//! own task until shutdown.
//!
//! In: a bound `TcpListener`, the shared [`BrokerContext`], and a shutdown
//! flag on a `watch` channel. A semaphore bounds open connections: when it
//! is exhausted the listener stops accepting until one closes. Each
//! connection reads a frame, serves it and writes the response before
//! reading the next one, so responses go out in request order (Kafka
//! likewise serves one request per connection at a time).
//!
//! While the broker counts itself fenced (see
//! [`BrokerContext::counts_itself_fenced`]) connections are closed at their
//! next request instead of served.
//!
//! Shutdown: when the flag turns true (or its sender is dropped) the
//! listener stops accepting, every connection finishes the request it is
//! serving and closes, and `serve` returns once all of them are gone.

use std::sync::Arc;

use kraft_kafka_client::frame::FramedConnection;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::context::BrokerContext;
use crate::kafka::error::ConnectionError;
use crate::kafka::request::serve_request;
use crate::kafka::MAX_REQUEST_BYTES;

/// The Kafka protocol listener.
pub struct KafkaServer;

impl KafkaServer {
    /// Most connections served at once by [`serve`](Self::serve).
    pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

    /// Serves `listener` until `shutdown` turns true, with at most
    /// [`DEFAULT_MAX_CONNECTIONS`](Self::DEFAULT_MAX_CONNECTIONS) open
    /// connections.
    pub async fn serve(
        listener: TcpListener,
        ctx: Arc<BrokerContext>,
        shutdown: watch::Receiver<bool>,
    ) {
        Self::serve_with_limit(listener, ctx, shutdown, Self::DEFAULT_MAX_CONNECTIONS).await
    }

    /// [`serve`](Self::serve) with a chosen connection limit.
    pub async fn serve_with_limit(
        listener: TcpListener,
        ctx: Arc<BrokerContext>,
        mut shutdown: watch::Receiver<bool>,
        max_connections: usize,
    ) {
        let permits = Arc::new(Semaphore::new(max_connections.max(1)));
        let mut connections = JoinSet::new();
        let addr = listener.local_addr().ok();
        tracing::info!(?addr, listener = %ctx.listener_name, "Kafka listener started");
        loop {
            let permit = tokio::select! {
                _ = stopped(&mut shutdown) => break,
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            };
            let accepted = tokio::select! {
                _ = stopped(&mut shutdown) => break,
                accepted = listener.accept() => accepted,
            };
            // Forget connections that have finished, so the set holds only
            // open ones however many clients come and go.
            while connections.try_join_next().is_some() {}
            match accepted {
                Ok((stream, peer)) => {
                    let ctx = ctx.clone();
                    let shutdown = shutdown.clone();
                    connections.spawn(async move {
                        let _permit = permit;
                        serve_connection(stream, peer, ctx, shutdown).await;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed on the Kafka listener");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
        drop(listener);
        tracing::info!(open = connections.len(), "Kafka listener stopping");
        while connections.join_next().await.is_some() {}
        tracing::info!(?addr, "Kafka listener stopped");
    }
}

/// Resolves once shutdown is requested (or can no longer be signalled).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    ctx: Arc<BrokerContext>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let mut connection = FramedConnection::new(stream, MAX_REQUEST_BYTES);
    tracing::debug!(%peer, "Kafka connection opened");
    let outcome: Result<(), ConnectionError> = async {
        loop {
            let frame = tokio::select! {
                _ = stopped(&mut shutdown) => return Ok(()),
                frame = connection.read_frame() => frame?,
            };
            let Some(frame) = frame else {
                return Ok(());
            };
            // A broker that counts itself fenced (no heartbeat answered for a
            // session) has stale metadata and leads nothing: it hangs up, so
            // the client turns to a broker that knows the cluster as it is.
            if ctx.counts_itself_fenced() {
                tracing::debug!(%peer, "fenced: closing a client connection");
                return Ok(());
            }
            if let Some(response) = serve_request(&ctx, frame).await? {
                connection.write_encoded_frame(&response).await?;
            }
        }
    }
    .await;
    match outcome {
        Ok(()) => tracing::debug!(%peer, "Kafka connection closed"),
        Err(ConnectionError::Io(e)) => {
            tracing::debug!(%peer, error = %e, "Kafka connection lost")
        }
        Err(e) => tracing::warn!(%peer, error = %e, "closing Kafka connection"),
    }
}
