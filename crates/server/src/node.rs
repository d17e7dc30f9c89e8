//! A Kraft node: checks its directories, then starts the roles its config
//! names. In this build only the controller role serves; the broker role's
//! Kafka listener is added with the brokers milestone.

use std::net::SocketAddr;
use std::sync::Arc;

use kraft_controller::{ControllerNode, ControllerNodeConfig, ControllerNodeError};
use kraft_raft::{NetworkFault, NoFaults};
use tokio::net::TcpListener;

use crate::config::KraftConfig;
use crate::meta_properties::{self, MetaPropertiesError};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Meta(#[from] MetaPropertiesError),
    #[error(transparent)]
    Controller(#[from] ControllerNodeError),
    #[error("a controller needs a listener named in controller.listener.names")]
    NoControllerListener,
    #[error("cannot listen on {addr} ({name}): {source}")]
    Bind {
        name: String,
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// Options that tests change and production leaves alone.
#[derive(Clone)]
pub struct NodeOptions {
    /// Which links work; tests cut some.
    pub fault: Arc<dyn NetworkFault>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            fault: Arc::new(NoFaults),
        }
    }
}

pub struct KraftNode {
    pub cluster_id: String,
    controller: Option<ControllerNode>,
}

impl KraftNode {
    /// Starts a node. `controller_listener` may be pre-bound (tests);
    /// otherwise the configured CONTROLLER address is bound.
    pub async fn start(
        config: &KraftConfig,
        controller_listener: Option<TcpListener>,
        options: NodeOptions,
    ) -> Result<KraftNode, NodeError> {
        let dirs = config.all_dirs();
        let check_dirs = dirs.clone();
        let node_id = config.node_id;
        let cluster_id =
            tokio::task::spawn_blocking(move || meta_properties::check(&check_dirs, node_id))
                .await
                .unwrap_or_else(|e| {
                    Err(MetaPropertiesError::Damaged {
                        path: dirs[0].clone(),
                        reason: e.to_string(),
                    })
                })?;
        let controller = if config.roles.controller {
            let listener = match controller_listener {
                Some(listener) => listener,
                None => {
                    let l = config
                        .controller_listener()
                        .ok_or(NodeError::NoControllerListener)?;
                    TcpListener::bind(l.address())
                        .await
                        .map_err(|source| NodeError::Bind {
                            name: l.name.clone(),
                            addr: l.address(),
                            source,
                        })?
                }
            };
            let controller_config = ControllerNodeConfig {
                node_id: config.node_id,
                cluster_id: cluster_id.clone(),
                voters: config.voters.clone(),
                metadata_dir: config.cluster_metadata_dir(),
                election_timeout: config.election_timeout,
                max_idle_interval: config.max_idle_interval,
                snapshot_max_bytes: config.snapshot_max_bytes,
                snapshot_max_interval: config.snapshot_max_interval,
                segment_bytes: config.metadata_segment_bytes,
                fault: options.fault.clone(),
            };
            Some(ControllerNode::start(controller_config, listener).await?)
        } else {
            None
        };
        Ok(KraftNode {
            cluster_id,
            controller,
        })
    }

    pub fn controller(&self) -> Option<&ControllerNode> {
        self.controller.as_ref()
    }

    pub fn controller_addr(&self) -> Option<SocketAddr> {
        self.controller.as_ref().map(|c| c.local_addr())
    }

    /// Resolves if a role stops on its own (a fatal error), with the reason.
    pub async fn wait_fatal(&self) -> String {
        match &self.controller {
            Some(c) => c.wait_fatal().await,
            None => std::future::pending().await,
        }
    }

    /// Stops every role; on return all files are closed.
    pub async fn stop(self) {
        if let Some(controller) = self.controller {
            controller.stop().await;
        }
    }
}
