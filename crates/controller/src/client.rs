//! Clients of the CONTROLLER listener.
//!
//! [`ControllerConnection`] is one connection: send a request body, get its
//! response. [`QuorumClient`] knows every voter's address and sends requests
//! to the active controller, following NOT_CONTROLLER hints and retrying on
//! other voters until a deadline. Used by `kraftctl`, the testkit and (later)
//! brokers.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use kraft_proto::controller::{controller_request::Body, ControllerRequest, ControllerResponse};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::codec::Framed;

use crate::error::ControllerError;
use crate::error_codes::{NONE, NOT_CONTROLLER};
use kraft_raft::transport::frame_codec;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{addr} closed the connection")]
    Closed { addr: String },
    #[error("{addr} sent an undecodable response: {source}")]
    Decode {
        addr: String,
        #[source]
        source: prost::DecodeError,
    },
    #[error(transparent)]
    Server(#[from] ControllerError),
    #[error("no active controller answered within {waited:?} (last error: {})", last_error.as_deref().unwrap_or("none"))]
    Timeout {
        waited: Duration,
        last_error: Option<String>,
    },
}

/// One connection to a CONTROLLER listener.
pub struct ControllerConnection {
    addr: String,
    cluster_id: String,
    framed: Framed<TcpStream, tokio_util::codec::LengthDelimitedCodec>,
    next_id: u64,
}

impl ControllerConnection {
    pub async fn connect(
        addr: &str,
        cluster_id: &str,
    ) -> Result<ControllerConnection, ClientError> {
        let io = |source| ClientError::Io {
            addr: addr.to_string(),
            source,
        };
        let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .map_err(|_| io(std::io::ErrorKind::TimedOut.into()))?
            .map_err(io)?;
        let _ = stream.set_nodelay(true);
        Ok(ControllerConnection {
            addr: addr.to_string(),
            cluster_id: cluster_id.to_string(),
            framed: Framed::new(stream, frame_codec()),
            next_id: 1,
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends one request and waits for its response. A response carrying an
    /// error code is returned as `ClientError::Server`.
    pub async fn call(&mut self, body: Body) -> Result<ControllerResponse, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let request = ControllerRequest {
            correlation_id: id,
            cluster_id: self.cluster_id.clone(),
            body: Some(body),
        };
        let addr = self.addr.clone();
        self.framed
            .send(bytes::Bytes::from(request.encode_to_vec()))
            .await
            .map_err(|source| ClientError::Io {
                addr: addr.clone(),
                source,
            })?;
        let frame = match self.framed.next().await {
            Some(Ok(frame)) => frame,
            Some(Err(source)) => return Err(ClientError::Io { addr, source }),
            None => return Err(ClientError::Closed { addr }),
        };
        let response = ControllerResponse::decode(frame.freeze())
            .map_err(|source| ClientError::Decode { addr, source })?;
        if response.error_code != NONE {
            return Err(ControllerError::from(&response).into());
        }
        Ok(response)
    }
}

/// Sends requests to whichever voter is the active controller.
pub struct QuorumClient {
    addrs: Vec<String>,
    cluster_id: String,
    conn: Option<ControllerConnection>,
    next: usize,
}

impl QuorumClient {
    pub fn new(addrs: Vec<String>, cluster_id: &str) -> QuorumClient {
        QuorumClient {
            addrs,
            cluster_id: cluster_id.to_string(),
            conn: None,
            next: 0,
        }
    }

    /// Sends `body` to the leader, retrying until `timeout`: on connection
    /// errors it tries the next voter; on NOT_CONTROLLER it follows the
    /// hint, or waits briefly while an election runs. Other errors return.
    pub async fn call_leader(
        &mut self,
        body: Body,
        timeout: Duration,
    ) -> Result<ControllerResponse, ClientError> {
        let deadline = Instant::now() + timeout;
        let mut last_error: Option<String> = None;
        let mut hinted: Option<String> = None;
        while Instant::now() < deadline {
            if self.conn.is_none() {
                let addr = hinted.take().unwrap_or_else(|| {
                    let addr = self.addrs[self.next % self.addrs.len()].clone();
                    self.next += 1;
                    addr
                });
                match ControllerConnection::connect(&addr, &self.cluster_id).await {
                    Ok(conn) => self.conn = Some(conn),
                    Err(e) => {
                        last_error = Some(e.to_string());
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                }
            }
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, conn.call(body.clone())).await {
                Err(_) => break,
                Ok(Ok(response)) => return Ok(response),
                Ok(Err(ClientError::Server(e))) if e.code == NOT_CONTROLLER => {
                    last_error = Some(e.to_string());
                    let here = conn.addr().to_string();
                    self.conn = None;
                    match e
                        .leader
                        .filter(|l| l.leader_id >= 0 && !l.address.is_empty())
                    {
                        Some(leader) if leader.address != here => hinted = Some(leader.address),
                        _ => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
                Ok(Err(ClientError::Server(e))) => return Err(ClientError::Server(e)),
                Ok(Err(e)) => {
                    last_error = Some(e.to_string());
                    self.conn = None;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        Err(ClientError::Timeout {
            waited: timeout,
            last_error,
        })
    }
}
