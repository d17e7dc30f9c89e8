//! [`ControllerChannel`]: how the broker's Kafka handlers reach the active
//! controller.
//!
//! In: a controller request body (create topics, alter configs, ...) and a
//! deadline. Out: the controller's response, whose `committed_offset` is the
//! metadata offset the write committed at — the handler then waits for the
//! [`MetadataCache`](crate::metadata_cache::MetadataCache) to reach it.
//!
//! Each call goes through a [`QuorumClient`], which finds the leader among
//! the voters and follows NOT_CONTROLLER hints. A client holds one
//! connection and serves one call at a time, so the channel keeps a small
//! pool of them, each behind a `tokio::sync::Mutex`; a call takes a free one
//! or queues on one, and the time spent queued counts against its deadline.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kafka_protocol::ResponseError;
use kraft_proto::controller::{
    controller_request::Body, controller_response, AlterPartitionRequest, AlterPartitionResponse,
    ControllerResponse,
};
use kraft_rpc::{error_code, ClientError, ControllerError, QuorumClient};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How many controller connections a broker keeps by default.
pub const DEFAULT_POOL_SIZE: usize = 4;

/// How long [`ControllerChannel::alter_partition`] keeps trying to reach
/// the active controller (through elections and redirects).
pub const ALTER_PARTITION_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends requests to the active controller of one cluster.
pub struct ControllerChannel {
    clients: Vec<Mutex<QuorumClient>>,
    next: AtomicUsize,
}

impl ControllerChannel {
    /// A channel to the voters at `voters` (`host:port` of each CONTROLLER
    /// listener), tagging every request with `cluster_id`.
    pub fn new(voters: Vec<String>, cluster_id: &str) -> ControllerChannel {
        ControllerChannel::with_pool_size(voters, cluster_id, DEFAULT_POOL_SIZE)
    }

    /// Like [`new`](Self::new) with `pool_size` connections (at least one).
    pub fn with_pool_size(
        voters: Vec<String>,
        cluster_id: &str,
        pool_size: usize,
    ) -> ControllerChannel {
        let clients = (0..pool_size.max(1))
            .map(|_| Mutex::new(QuorumClient::new(voters.clone(), cluster_id)))
            .collect();
        ControllerChannel {
            clients,
            next: AtomicUsize::new(0),
        }
    }

    /// Sends `body` to the active controller and waits up to `timeout` for
    /// its answer. A response with an error code comes back as
    /// `ClientError::Server`; no answer in time is `ClientError::Timeout`.
    pub async fn call(
        &self,
        body: Body,
        timeout: Duration,
    ) -> Result<ControllerResponse, ClientError> {
        let deadline = Instant::now() + timeout;
        let free = self.clients.iter().find_map(|c| c.try_lock().ok());
        let mut client = match free {
            Some(client) => client,
            None => {
                let index = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
                match tokio::time::timeout_at(deadline, self.clients[index].lock()).await {
                    Ok(client) => client,
                    Err(_) => {
                        return Err(ClientError::Timeout {
                            waited: timeout,
                            last_error: Some("every controller connection stayed busy".to_string()),
                        })
                    }
                }
            }
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        client.call_leader(body, remaining).await
    }

    /// Asks the active controller to change the ISR of partitions this
    /// broker leads (Kafka's AlterPartition), trying for up to
    /// [`ALTER_PARTITION_TIMEOUT`]. Returns the per-partition results and the
    /// metadata offset the change committed at (or, if nothing changed, the
    /// committed offset the answer was computed at): the new ISR is in force
    /// once this broker's metadata reaches it. A stale broker epoch fails the
    /// whole call with `ClientError::Server` (STALE_BROKER_EPOCH).
    pub async fn alter_partition(
        &self,
        request: AlterPartitionRequest,
    ) -> Result<(AlterPartitionResponse, u64), ClientError> {
        let response = self
            .call(Body::AlterPartition(request), ALTER_PARTITION_TIMEOUT)
            .await?;
        match response.body {
            Some(controller_response::Body::AlterPartition(r)) => {
                Ok((r, response.committed_offset))
            }
            other => Err(ClientError::Server(ControllerError::new(
                error_code(ResponseError::UnknownServerError),
                format!("the controller answered AlterPartition with {other:?}"),
            ))),
        }
    }
}

impl std::fmt::Debug for ControllerChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerChannel")
            .field("pool_size", &self.clients.len())
            .finish()
    }
}
