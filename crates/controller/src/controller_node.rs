//! A running controller: durable storage, the Raft thread, the peer
//! transport, the [`QuorumController`] task and the CONTROLLER listener,
//! started together and stopped together.
//!
//! In: a [`ControllerNodeConfig`] and a bound listener (tests bind port 0
//! first so every voter's address is known before any node starts).
//! Out: the committed [`MetadataImage`] on a `watch` channel, Raft status,
//! and `wait_fatal` for a node that stopped on its own (disk failure, corrupt
//! snapshot).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use futures::FutureExt as _;
use kraft_metadata::MetadataImage;
use kraft_raft::driver::{raft_id, RaftOutputs};
use kraft_raft::storage::{RaftStorage, StorageError, StorageOptions};
use kraft_raft::{start_raft, NetworkFault, PeerTransport, RaftHandle, RaftStatus, RaftTiming};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle as TaskHandle;

pub use crate::quorum_controller::ControllerSettings;
use crate::quorum_controller::QuorumController;
use crate::rpc_server::{serve, RpcContext};

#[derive(Clone)]
pub struct ControllerNodeConfig {
    /// What the controller task needs (ids, voters, directories, policies).
    pub settings: ControllerSettings,
    /// `controller.quorum.election.timeout.ms`.
    pub election_timeout: Duration,
    /// `metadata.log.segment.bytes`.
    pub segment_bytes: u64,
    pub fault: Arc<dyn NetworkFault>,
}

#[derive(Debug, thiserror::Error)]
pub enum ControllerNodeError {
    #[error("node {0} is not in controller.quorum.voters")]
    NotAVoter(i32),
    #[error("the metadata log in {dir} cannot be opened: {source}")]
    Storage {
        dir: PathBuf,
        #[source]
        source: StorageError,
    },
    #[error("raft could not start: {0}")]
    Raft(#[from] raft_error::RaftError),
    #[error("the CONTROLLER listener failed: {0}")]
    Listener(#[from] std::io::Error),
}

/// The text of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".to_string())
}

mod raft_error {
    /// raft-rs's error, wrapped so this crate's API does not name its type.
    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    pub struct RaftError(pub String);
}

pub struct ControllerNode {
    node_id: i32,
    local_addr: SocketAddr,
    raft: RaftHandle,
    raft_thread: Option<JoinHandle<()>>,
    controller_task: TaskHandle<()>,
    server_task: TaskHandle<()>,
    image: watch::Receiver<Arc<MetadataImage>>,
    fatal: watch::Receiver<Option<String>>,
}

impl ControllerNode {
    pub async fn start(
        config: ControllerNodeConfig,
        listener: TcpListener,
    ) -> Result<ControllerNode, ControllerNodeError> {
        let settings = config.settings;
        let node_id = settings.node_id;
        if !settings.voters.contains_key(&node_id) {
            return Err(ControllerNodeError::NotAVoter(node_id));
        }
        let local_addr = listener.local_addr()?;
        let raft_voters: Vec<u64> = settings.voters.keys().map(|id| raft_id(*id)).collect();
        let options = StorageOptions {
            segment_bytes: config.segment_bytes,
        };
        let dir = settings.metadata_dir.clone();
        let storage =
            tokio::task::spawn_blocking(move || RaftStorage::open(&dir, &raft_voters, options))
                .await
                .map_err(|e| ControllerNodeError::Raft(raft_error::RaftError(e.to_string())))?
                .map_err(|source| ControllerNodeError::Storage {
                    dir: settings.metadata_dir.clone(),
                    source,
                })?;

        let peers: HashMap<i32, String> = settings
            .voters
            .iter()
            .filter(|(id, _)| **id != node_id)
            .map(|(id, addr)| (*id, addr.clone()))
            .collect();
        let transport = PeerTransport::new(
            node_id,
            settings.cluster_id.clone(),
            peers,
            config.fault.clone(),
        );
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let timing = RaftTiming::from_election_timeout(config.election_timeout);
        let outputs = RaftOutputs {
            events: events_tx,
            transport,
        };
        let (raft, raft_thread) = start_raft(node_id, timing, storage, outputs)
            .map_err(|e| ControllerNodeError::Raft(raft_error::RaftError(e.to_string())))?;

        let (image_tx, image_rx) = watch::channel(Arc::new(MetadataImage::empty()));
        let (fatal_tx, fatal_rx) = watch::channel(None);
        let (commands_tx, commands_rx) = mpsc::channel(1024);
        let ctx = Arc::new(RpcContext::new(
            node_id,
            settings.cluster_id.clone(),
            settings.voters.clone(),
            raft.clone(),
            commands_tx,
            config.fault.clone(),
        ));
        let controller = QuorumController::new(settings, raft.clone(), image_tx);
        let controller_task = tokio::spawn(async move {
            // Any end is fatal, a panic included: `wait_fatal` must resolve
            // with the reason so the process exits instead of running on
            // without a controller.
            let run = std::panic::AssertUnwindSafe(controller.run(commands_rx, events_rx));
            let reason = match run.catch_unwind().await {
                Ok(Ok(())) => "the controller task ended".to_string(),
                Ok(Err(e)) => e,
                Err(panic) => format!("the controller task panicked: {}", panic_message(&*panic)),
            };
            tracing::error!(node = node_id, reason = %reason, "controller stopped");
            fatal_tx.send_replace(Some(reason));
        });
        let server_task = tokio::spawn(serve(listener, ctx));
        tracing::info!(node = node_id, addr = %local_addr, "controller started");
        Ok(ControllerNode {
            node_id,
            local_addr,
            raft,
            raft_thread: Some(raft_thread),
            controller_task,
            server_task,
            image: image_rx,
            fatal: fatal_rx,
        })
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub async fn raft_status(&self) -> Option<RaftStatus> {
        self.raft.status().await
    }

    /// The committed metadata image, republished after every batch.
    pub fn image(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image.clone()
    }

    /// Resolves when the node stops on its own, with the reason.
    pub async fn wait_fatal(&self) -> String {
        let mut fatal = self.fatal.clone();
        loop {
            if let Some(reason) = fatal.borrow_and_update().clone() {
                return reason;
            }
            if fatal.changed().await.is_err() {
                return "the controller task ended".to_string();
            }
        }
    }

    /// Why the node stopped on its own, if it has (see [`wait_fatal`]);
    /// `None` while it runs.
    ///
    /// [`wait_fatal`]: ControllerNode::wait_fatal
    pub fn fatal(&self) -> Option<String> {
        if let Some(reason) = self.fatal.borrow().clone() {
            return Some(reason);
        }
        self.fatal
            .has_changed()
            .is_err()
            .then(|| "the controller task ended".to_string())
    }

    /// Stops everything: the listener and its connections, the controller
    /// task, and the Raft thread (joined, so the log files are closed when
    /// this returns). Everything acknowledged was already fsynced, so this
    /// is also how tests "kill" a node in-process.
    pub async fn stop(mut self) {
        // The controller first: it counts a listener that went away as
        // fatal, and this stop is not.
        self.controller_task.abort();
        let _ = (&mut self.controller_task).await;
        self.server_task.abort();
        let _ = (&mut self.server_task).await;
        self.raft.stop();
        if let Some(thread) = self.raft_thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        tracing::info!(node = self.node_id, "controller stopped");
    }
}
