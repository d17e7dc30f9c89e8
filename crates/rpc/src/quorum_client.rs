//! [`QuorumClient`]: sends requests to the active controller, whichever
//! voter that is. Used by brokers, `kraftctl` and the tests.
//!
//! It knows every voter's CONTROLLER address and keeps one
//! [`ControllerConnection`]. In: a request body and a timeout. Out: the
//! leader's response, or the first error that is not about finding the
//! leader. On connection errors it tries the next voter; on NOT_CONTROLLER
//! it follows the leader hint, or waits briefly while an election runs;
//! when the deadline passes it gives up with `ClientError::Timeout`.

use std::time::Duration;

use kafka_protocol::ResponseError;
use kraft_proto::controller::{controller_request::Body, ControllerResponse};
use tokio::time::Instant;

use crate::connection::ControllerConnection;
use crate::error::ClientError;

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
                Err(_) => {
                    // The answer may still come: this connection is not
                    // clean for the next call.
                    self.conn = None;
                    break;
                }
                Ok(Ok(response)) => return Ok(response),
                Ok(Err(ClientError::Server(e))) if e.is(ResponseError::NotController) => {
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
