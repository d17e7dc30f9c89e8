//! [`KafkaServer`]: accepts Kafka client connections and serves each on its
//! own task until shutdown.
//!
//! In: a bound `TcpListener`, the shared [`BrokerContext`] (its
//! [`BrokerConfig`](crate::context::BrokerConfig) holds the limits), and a
//! shutdown flag on a `watch` channel. Each connection reads a frame, serves
//! it and writes the response before reading the next one, so responses go
//! out in request order (Kafka likewise serves one request per connection at
//! a time).
//!
//! Limits, with Kafka's names (all in [`ClientConnection`] and
//! [`ConnectionLimits`]): `max.connections` and `max.connections.per.ip`
//! (a connection past either is closed), `connections.max.idle.ms` (a
//! connection with no progress for that long is closed),
//! `queued.max.request.bytes` (request bytes come from one pool shared by
//! every connection before they are read, and go back once the answer is
//! written), and `socket.request.max.bytes` ([`MAX_REQUEST_BYTES`]).
//!
//! Followers are not starved by clients: a connection past a limit gets
//! [`PROBATION`] to send its first request, and is served outside the limits
//! if that request is a Fetch v15+ from a registered broker quoting its
//! current broker epoch (the check the Fetch handler makes); at most
//! [`PROBATION_SLOTS`] connections wait so at once, the rest are closed at
//! once.
//!
//! While the broker counts itself fenced (see
//! [`BrokerContext::counts_itself_fenced`]) connections are closed at their
//! next request instead of served.
//!
//! Shutdown: when the flag turns true (or its sender is dropped) the
//! listener stops accepting, every connection finishes the request it is
//! serving and closes, and `serve` returns once all of them are gone.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, FetchRequest, RequestHeader};
use kafka_protocol::protocol::Decodable;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::context::{holding, BrokerContext, MemoryPermit};
use crate::handlers::fetch::check_follower;
use crate::kafka::connection::ClientConnection;
use crate::kafka::error::ConnectionError;
use crate::kafka::limits::{Admitted, ConnectionLimits};
use crate::kafka::request::{serve_request, FramePrefix};
use crate::kafka::MAX_REQUEST_BYTES;

/// How long a connection past the limits has to prove it is a follower.
pub const PROBATION: Duration = Duration::from_secs(5);
/// Connections past the limits that may wait to prove it at once.
pub const PROBATION_SLOTS: usize = 64;
/// The largest first request of a connection on probation.
const PROBATION_MAX_FRAME: usize = 1024 * 1024;

/// The Kafka protocol listener.
pub struct KafkaServer;

/// How an accepted connection was let in.
enum Admission {
    /// Within the limits.
    Client(Admitted),
    /// Past them: it may still prove to be a follower.
    Probation(OwnedSemaphorePermit, ConnectionLimits),
}

impl KafkaServer {
    /// Serves `listener` until `shutdown` turns true.
    pub async fn serve(
        listener: TcpListener,
        ctx: Arc<BrokerContext>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let limits = ConnectionLimits::new(
            ctx.config.max_connections,
            ctx.config.max_connections_per_ip,
        );
        let probation = Arc::new(Semaphore::new(PROBATION_SLOTS));
        let mut connections = JoinSet::new();
        let addr = listener.local_addr().ok();
        tracing::info!(?addr, listener = %ctx.listener_name, "Kafka listener started");
        loop {
            let accepted = tokio::select! {
                _ = stopped(&mut shutdown) => break,
                // Forget connections that have finished, so the set holds
                // only open ones however many clients come and go.
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let admission = match limits.admit(peer.ip()) {
                        Some(admitted) => Admission::Client(admitted),
                        None => match probation.clone().try_acquire_owned() {
                            Ok(slot) => Admission::Probation(slot, limits.clone()),
                            Err(_) => {
                                tracing::debug!(%peer, "past max.connections(.per.ip): closed");
                                continue;
                            }
                        },
                    };
                    let ctx = ctx.clone();
                    let shutdown = shutdown.clone();
                    connections.spawn(serve_connection(stream, peer, ctx, shutdown, admission));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed on the Kafka listener");
                    tokio::time::sleep(Duration::from_millis(50)).await;
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
    admission: Admission,
) {
    let _ = stream.set_nodelay(true);
    let mut connection =
        ClientConnection::new(stream, MAX_REQUEST_BYTES, ctx.config.connections_max_idle);
    tracing::debug!(%peer, "Kafka connection opened");
    let outcome: Result<(), ConnectionError> = async {
        let mut first: Option<(Bytes, MemoryPermit)> = None;
        let _admitted = match admission {
            Admission::Client(admitted) => admitted,
            Admission::Probation(slot, limits) => {
                connection.set_max_frame(PROBATION_MAX_FRAME);
                let read =
                    tokio::time::timeout(PROBATION, connection.read_request(&ctx.memory.requests))
                        .await;
                drop(slot);
                let Ok(Ok(Some(request))) = read else {
                    tracing::debug!(%peer, "past the connection limits: closed");
                    return Ok(());
                };
                let Some(admitted) =
                    follower_of(&ctx, &request.0).and_then(|broker| limits.admit_follower(broker))
                else {
                    tracing::debug!(%peer, "past the connection limits and not a follower: closed");
                    return Ok(());
                };
                connection.set_max_frame(MAX_REQUEST_BYTES);
                first = Some(request);
                admitted
            }
        };
        loop {
            let (frame, permit) = match first.take() {
                Some(request) => request,
                None => {
                    let read = tokio::select! {
                        _ = stopped(&mut shutdown) => return Ok(()),
                        read = connection.read_request(&ctx.memory.requests) => read?,
                    };
                    match read {
                        Some(request) => request,
                        None => return Ok(()),
                    }
                }
            };
            // A broker that counts itself fenced (no heartbeat answered for a
            // session) has stale metadata and leads nothing: it hangs up, so
            // the client turns to a broker that knows the cluster as it is.
            if ctx.counts_itself_fenced() {
                tracing::debug!(%peer, "fenced: closing a client connection");
                return Ok(());
            }
            let (response, held) = holding(serve_request(&ctx, frame)).await;
            if let Some(response) = response? {
                connection.write_response(&response).await?;
            }
            // The request is done: its bytes and its answer's go back.
            drop(held);
            drop(permit);
        }
    }
    .await;
    match outcome {
        Ok(()) => tracing::debug!(%peer, "Kafka connection closed"),
        Err(ConnectionError::Io(e)) => {
            tracing::debug!(%peer, error = %e, "Kafka connection lost")
        }
        Err(e @ ConnectionError::Idle(_)) => {
            tracing::debug!(%peer, error = %e, "closing Kafka connection")
        }
        Err(e) => tracing::warn!(%peer, error = %e, "closing Kafka connection"),
    }
}

/// The broker id a connection's first request proves it is a follower of:
/// a Fetch v15+ whose `ReplicaState` quotes a registered broker's current
/// epoch.
fn follower_of(ctx: &BrokerContext, frame: &Bytes) -> Option<i32> {
    let prefix = FramePrefix::read(frame).ok()?;
    if prefix.api_key != ApiKey::Fetch as i16 || prefix.api_version < 15 {
        return None;
    }
    let version = prefix.api_version;
    let mut body = frame.clone();
    RequestHeader::decode(&mut body, ApiKey::Fetch.request_header_version(version)).ok()?;
    let request = FetchRequest::decode(&mut body, version).ok()?;
    let state = &request.replica_state;
    let id = state.replica_id.0;
    (id >= 0 && check_follower(&ctx.cache.image(), id, state.replica_epoch).is_ok()).then_some(id)
}
