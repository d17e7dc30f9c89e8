//! A Kraft node: checks its directories, then starts the roles its config
//! names — a controller (the Raft quorum and the CONTROLLER listener), a
//! broker (the Kafka listener, MetadataCache and broker lifecycle), or both.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kraft_broker::BrokerConfig;
use kraft_broker::ReplicaManagerConfig;
use kraft_broker::{BrokerNode, BrokerNodeConfig};
use kraft_controller::controller_node::ControllerSettings;
use kraft_controller::{
    ControllerNode, ControllerNodeConfig, ControllerNodeError, LeaderBalanceSettings,
};
use kraft_proto::metadata::Endpoint;
use kraft_raft::{NetworkFault, NoFaults};
use tokio::net::TcpListener;

use crate::config::{KraftConfig, Listener};
use crate::meta_properties::{self, MetaPropertiesError};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Meta(#[from] MetaPropertiesError),
    #[error(transparent)]
    Controller(#[from] ControllerNodeError),
    #[error("the broker could not start: {0}")]
    Broker(#[from] kraft_broker::metadata_loader::LoaderError),
    #[error("{0}")]
    Listeners(String),
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

/// Listeners bound before the node starts (tests bind port 0 first); a role
/// whose listener is missing binds its configured address.
#[derive(Default)]
pub struct BoundListeners {
    pub controller: Option<TcpListener>,
    pub broker: Option<TcpListener>,
}

pub struct KraftNode {
    pub cluster_id: String,
    controller: Option<ControllerNode>,
    broker: Option<BrokerNode>,
}

impl KraftNode {
    pub async fn start(
        config: &KraftConfig,
        listeners: BoundListeners,
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
            let listener = bind(listeners.controller, config.controller_listener()).await?;
            Some(start_controller(config, &cluster_id, listener, &options).await?)
        } else {
            None
        };
        let broker = if config.roles.broker {
            let listener = bind(listeners.broker, config.broker_listener()).await?;
            Some(start_broker(config, &cluster_id, listener, &options).await?)
        } else {
            None
        };
        Ok(KraftNode {
            cluster_id,
            controller,
            broker,
        })
    }

    pub fn controller(&self) -> Option<&ControllerNode> {
        self.controller.as_ref()
    }

    pub fn broker(&self) -> Option<&BrokerNode> {
        self.broker.as_ref()
    }

    pub fn controller_addr(&self) -> Option<SocketAddr> {
        self.controller.as_ref().map(|c| c.local_addr())
    }

    pub fn broker_addr(&self) -> Option<SocketAddr> {
        self.broker.as_ref().map(|b| b.local_addr())
    }

    /// Resolves if a role stops on its own (a fatal error), with the reason.
    pub async fn wait_fatal(&self) -> String {
        let controller = async {
            match &self.controller {
                Some(c) => c.wait_fatal().await,
                None => std::future::pending().await,
            }
        };
        let broker = async {
            match &self.broker {
                Some(b) => b.wait_fatal().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            reason = controller => reason,
            reason = broker => reason,
        }
    }

    /// Why the controller role stopped on its own, if it has; `None` while
    /// it runs (or on a node without it). Lets in-process tests see what
    /// makes `kraftd` exit.
    pub fn controller_fatal(&self) -> Option<String> {
        self.controller.as_ref()?.fatal()
    }

    /// Graceful stop: the broker does a controlled shutdown first (while its
    /// controller, in combined mode, still serves), then every role stops.
    pub async fn stop(self) {
        if let Some(broker) = self.broker {
            broker.shutdown().await;
        }
        if let Some(controller) = self.controller {
            controller.stop().await;
        }
    }

    /// Abrupt stop, as a crash looks to the rest of the cluster: no
    /// controlled shutdown. On return all files are closed.
    pub async fn kill(self) {
        if let Some(broker) = self.broker {
            broker.kill().await;
        }
        if let Some(controller) = self.controller {
            controller.stop().await;
        }
    }
}

async fn bind(
    bound: Option<TcpListener>,
    configured: Option<&Listener>,
) -> Result<TcpListener, NodeError> {
    if let Some(listener) = bound {
        return Ok(listener);
    }
    let l = configured.ok_or_else(|| {
        NodeError::Listeners("no listener is configured for this role".to_string())
    })?;
    TcpListener::bind(l.address())
        .await
        .map_err(|source| NodeError::Bind {
            name: l.name.clone(),
            addr: l.address(),
            source,
        })
}

async fn start_controller(
    config: &KraftConfig,
    cluster_id: &str,
    listener: TcpListener,
    options: &NodeOptions,
) -> Result<ControllerNode, NodeError> {
    let controller_config = ControllerNodeConfig {
        settings: ControllerSettings {
            node_id: config.node_id,
            cluster_id: cluster_id.to_string(),
            voters: config.voters.clone(),
            metadata_dir: config.cluster_metadata_dir(),
            max_idle_interval: config.max_idle_interval,
            snapshot_max_bytes: config.snapshot_max_bytes,
            snapshot_max_interval: config.snapshot_max_interval,
            session_timeout: config.session_timeout,
            default_num_partitions: config.num_partitions,
            default_replication_factor: config.default_replication_factor,
            leader_balance: LeaderBalanceSettings {
                enabled: config.auto_leader_rebalance_enable,
                check_interval: config.leader_imbalance_check_interval,
                imbalance_percentage: config.leader_imbalance_per_broker_percentage,
            },
        },
        election_timeout: config.election_timeout,
        segment_bytes: config.metadata_segment_bytes,
        fault: options.fault.clone(),
    };
    Ok(ControllerNode::start(controller_config, listener).await?)
}

async fn start_broker(
    config: &KraftConfig,
    cluster_id: &str,
    listener: TcpListener,
    options: &NodeOptions,
) -> Result<BrokerNode, NodeError> {
    let serving = config.broker_listener().ok_or_else(|| {
        NodeError::Listeners("a broker needs a non-controller listener".to_string())
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| NodeError::Listeners(e.to_string()))?;
    // Advertise what clients should connect to: advertised.listeners, with
    // a configured port of 0 replaced by the port actually bound.
    let advertised = config
        .advertised_listeners
        .iter()
        .filter(|l| !config.controller_listener_names.contains(&l.name))
        .map(|l| Endpoint {
            name: l.name.clone(),
            host: l.host.clone(),
            port: if l.port == 0 || l.name == serving.name && serving.port == 0 {
                i32::from(bound.port())
            } else {
                i32::from(l.port)
            },
            security_protocol: "PLAINTEXT".to_string(),
        })
        .collect();
    let broker_config = BrokerNodeConfig {
        node_id: config.node_id,
        cluster_id: cluster_id.to_string(),
        controllers: config.voters.values().cloned().collect(),
        listener_name: serving.name.clone(),
        advertised,
        rack: config.rack.clone(),
        heartbeat_interval: config.heartbeat_interval,
        // A combined node's controller owns __cluster_metadata-0; the broker
        // keeps its own snapshots beside it.
        metadata_dir: if config.roles.controller {
            config.cluster_metadata_dir().join("broker")
        } else {
            config.cluster_metadata_dir()
        },
        snapshot_max_bytes: config.snapshot_max_bytes,
        snapshot_max_interval: config.snapshot_max_interval,
        kafka: BrokerConfig {
            auto_create_topics_enable: config.auto_create_topics_enable,
            num_partitions: config.num_partitions,
            default_replication_factor: config.default_replication_factor,
            write_timeout: Duration::from_secs(30),
            fetch_max_bytes: config.fetch_max_bytes,
            replica_fetch_response_max_bytes: config.replica_fetch_response_max_bytes,
            connections_max_idle: config.connections_max_idle,
            max_connections: config.max_connections,
            max_connections_per_ip: config.max_connections_per_ip,
            queued_max_request_bytes: config.queued_max_request_bytes,
        },
        logs: ReplicaManagerConfig {
            defaults: config.log_defaults.clone(),
            retention_check_interval: config.retention_check_interval,
            producer_id_expiration: config.producer_id_expiration,
            replica_lag_time_max: config.replica_lag_time_max,
            cleaner: config.cleaner.clone(),
            ..ReplicaManagerConfig::new(config.node_id, config.log_dirs.clone())
        },
        groups: config.groups.clone(),
        transactions: config.transactions.clone(),
        session_timeout: config.session_timeout,
        fault: options.fault.clone(),
    };
    Ok(BrokerNode::start(broker_config, listener).await?)
}
