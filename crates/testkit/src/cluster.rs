//! The in-process cluster: [`TestCluster`] and its [`ClusterBuilder`].
//!
//! [`ClusterBuilder::start`] formats a temp dir per node, binds every
//! listener on 127.0.0.1 port 0, and starts each node as a [`KraftNode`]
//! from the `server.properties` text `kraftd` would read. The cluster keeps
//! the running nodes by id; tests stop, kill and restart them (on their old
//! addresses and directories), cut links through the shared [`LinkCuts`],
//! and read each node's Raft status and committed image, or write through a
//! [`QuorumClient`] to the active controller.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use kraft_controller::QuorumClient;
use kraft_metadata::MetadataImage;
use kraft_proto::controller::{
    controller_request::Body, controller_response, AlterConfigsRequest, DescribeQuorumRequest,
    DescribeQuorumResponse,
};
use kraft_proto::metadata::{ConfigRecord, ConfigResourceType};
use kraft_raft::{RaftRole, RaftStatus};
use kraft_server::config::format_voters;
use kraft_server::config::parse_properties;
use kraft_server::meta_properties::{self, MetaProperties};
use kraft_server::node::BoundListeners;
use kraft_server::{KraftConfig, KraftNode, NodeOptions};
use tempfile::TempDir;
use tokio::net::TcpListener;

use crate::faults::LinkCuts;
use crate::wait::{wait_for, DEADLINE};

/// Builds a [`TestCluster`].
pub struct ClusterBuilder {
    controllers: usize,
    brokers: usize,
    combined: bool,
    props: BTreeMap<String, String>,
}

impl ClusterBuilder {
    /// Sets (or overrides) a `server.properties` key on every node.
    pub fn prop(mut self, key: &str, value: impl ToString) -> Self {
        self.props.insert(key.to_string(), value.to_string());
        self
    }

    /// Adds `n` broker-only nodes (ids after the controllers').
    pub fn brokers(mut self, n: usize) -> Self {
        self.brokers = n;
        self
    }

    /// Makes every controller a broker too (`process.roles=broker,controller`).
    pub fn combined(mut self) -> Self {
        self.combined = true;
        self
    }

    pub async fn start(self) -> Result<TestCluster> {
        init_tracing();
        let dir = tempfile::Builder::new().prefix("kraft-testkit").tempdir()?;
        let cluster_id = meta_properties::random_cluster_id();
        let mut listeners: BTreeMap<i32, BoundListeners> = BTreeMap::new();
        let mut voters = BTreeMap::new();
        let mut brokers = BTreeMap::new();
        let total = (self.controllers + self.brokers) as i32;
        for id in 1..=total {
            let is_controller = id <= self.controllers as i32;
            let is_broker = !is_controller || self.combined;
            let mut bound = BoundListeners::default();
            if is_controller {
                let listener = TcpListener::bind("127.0.0.1:0").await?;
                voters.insert(id, listener.local_addr()?.to_string());
                bound.controller = Some(listener);
            }
            if is_broker {
                let listener = TcpListener::bind("127.0.0.1:0").await?;
                brokers.insert(id, listener.local_addr()?.to_string());
                bound.broker = Some(listener);
            }
            listeners.insert(id, bound);
        }
        let mut cluster = TestCluster {
            dir,
            cluster_id,
            voters,
            brokers,
            props: self.props,
            nodes: BTreeMap::new(),
            faults: Arc::new(LinkCuts::default()),
        };
        for (id, bound) in listeners {
            cluster.format(id)?;
            cluster.start_node(id, bound).await?;
        }
        cluster.wait_for_brokers().await?;
        Ok(cluster)
    }
}

/// A running in-process cluster of controllers and brokers.
pub struct TestCluster {
    dir: TempDir,
    cluster_id: String,
    /// Controllers' CONTROLLER addresses.
    voters: BTreeMap<i32, String>,
    /// Brokers' Kafka (PLAINTEXT) addresses.
    brokers: BTreeMap<i32, String>,
    props: BTreeMap<String, String>,
    nodes: BTreeMap<i32, KraftNode>,
    faults: Arc<LinkCuts>,
}

impl TestCluster {
    /// A cluster of `controllers` voters (ids 1..=n).
    pub fn builder(controllers: usize) -> ClusterBuilder {
        ClusterBuilder {
            controllers,
            brokers: 0,
            combined: false,
            props: BTreeMap::from([
                (
                    "broker.heartbeat.interval.ms".to_string(),
                    "100".to_string(),
                ),
                ("broker.session.timeout.ms".to_string(), "1500".to_string()),
                (
                    "controller.quorum.election.timeout.ms".to_string(),
                    "300".to_string(),
                ),
                (
                    "metadata.max.idle.interval.ms".to_string(),
                    "100".to_string(),
                ),
            ]),
        }
    }

    pub async fn start(controllers: usize) -> Result<TestCluster> {
        Self::builder(controllers).start().await
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    pub fn voter_ids(&self) -> Vec<i32> {
        self.voters.keys().copied().collect()
    }

    pub fn running(&self) -> Vec<i32> {
        self.nodes.keys().copied().collect()
    }

    pub fn controller_addr(&self, id: i32) -> &str {
        &self.voters[&id]
    }

    /// Ids of the nodes with the broker role.
    pub fn broker_ids(&self) -> Vec<i32> {
        self.brokers.keys().copied().collect()
    }

    pub fn broker_addr(&self, id: i32) -> &str {
        &self.brokers[&id]
    }

    /// `bootstrap.servers` for a Kafka client: every broker's address.
    pub fn bootstrap_servers(&self) -> String {
        self.brokers.values().cloned().collect::<Vec<_>>().join(",")
    }

    /// The broker role of node `id`, if it runs.
    pub fn broker(&self, id: i32) -> Option<&kraft_broker::BrokerNode> {
        self.nodes.get(&id)?.broker()
    }

    pub fn node_dir(&self, id: i32) -> PathBuf {
        self.dir.path().join(format!("node-{id}"))
    }

    /// The `server.properties` of node `id`, as text.
    pub fn properties(&self, id: i32) -> String {
        let mut props = self.props.clone();
        let voters = format_voters(&self.voters);
        let roles = match (
            self.voters.contains_key(&id),
            self.brokers.contains_key(&id),
        ) {
            (true, true) => "broker,controller",
            (true, false) => "controller",
            _ => "broker",
        };
        let mut listeners = Vec::new();
        if let Some(addr) = self.brokers.get(&id) {
            listeners.push(format!("PLAINTEXT://{addr}"));
        }
        if let Some(addr) = self.voters.get(&id) {
            listeners.push(format!("CONTROLLER://{addr}"));
        }
        props.insert("process.roles".into(), roles.into());
        props.insert("node.id".into(), id.to_string());
        props.insert("controller.quorum.voters".into(), voters);
        props.insert("listeners".into(), listeners.join(","));
        props.insert("controller.listener.names".into(), "CONTROLLER".into());
        props.insert("log.dirs".into(), self.node_dir(id).display().to_string());
        props.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
    }

    fn config(&self, id: i32) -> Result<KraftConfig> {
        Ok(KraftConfig::from_properties(&parse_properties(
            &self.properties(id),
        )?)?)
    }

    fn format(&self, id: i32) -> Result<()> {
        let config = self.config(id)?;
        let meta = MetaProperties {
            cluster_id: self.cluster_id.clone(),
            node_id: id,
        };
        meta_properties::format(&config.all_dirs(), &meta, false)?;
        Ok(())
    }

    async fn start_node(&mut self, id: i32, listeners: BoundListeners) -> Result<()> {
        let options = NodeOptions {
            fault: self.faults.clone(),
        };
        let node = KraftNode::start(&self.config(id)?, listeners, options)
            .await
            .with_context(|| format!("starting node {id}"))?;
        self.nodes.insert(id, node);
        Ok(())
    }

    /// Starts a broker `id` whose directory was formatted for another
    /// cluster, pointed at this cluster's controllers. It is not part of
    /// the cluster; the caller owns (and stops) it.
    pub async fn start_foreign_broker(&self, id: i32) -> Result<KraftNode> {
        let voters = format_voters(&self.voters);
        let dir = self.dir.path().join(format!("foreign-{id}"));
        let text = format!(
            "process.roles=broker\nnode.id={id}\ncontroller.quorum.voters={voters}\n\
             listeners=PLAINTEXT://127.0.0.1:0\ncontroller.listener.names=CONTROLLER\nlog.dirs={}\n",
            dir.display()
        );
        let mut props = parse_properties(&text)?;
        props.extend(self.props.clone());
        let config = KraftConfig::from_properties(&props)?;
        let meta = MetaProperties {
            cluster_id: meta_properties::random_cluster_id(),
            node_id: id,
        };
        meta_properties::format(&config.all_dirs(), &meta, false)?;
        let options = NodeOptions {
            fault: self.faults.clone(),
        };
        Ok(KraftNode::start(&config, BoundListeners::default(), options).await?)
    }

    /// Waits until every running broker is unfenced and serving clients.
    pub async fn wait_for_brokers(&self) -> Result<()> {
        for id in self.running() {
            let Some(broker) = self.broker(id) else {
                continue;
            };
            let mut state = broker.state();
            let desc = format!("broker {id} to be unfenced");
            wait_for(&desc, || {
                let running = matches!(
                    *state.borrow_and_update(),
                    kraft_broker::BrokerState::Running { .. }
                );
                async move { running.then_some(()) }
            })
            .await?;
        }
        Ok(())
    }

    /// Stops node `id` abruptly, as a crash would: no controlled shutdown;
    /// its listeners, connections, tasks and Raft thread go away at once
    /// (what it acknowledged was already fsynced).
    pub async fn kill(&mut self, id: i32) {
        if let Some(node) = self.nodes.remove(&id) {
            node.kill().await;
        }
    }

    /// Stops node `id` gracefully, as SIGTERM does: a broker does a
    /// controlled shutdown first.
    pub async fn stop(&mut self, id: i32) {
        if let Some(node) = self.nodes.remove(&id) {
            node.stop().await;
        }
    }

    /// Starts node `id` again on its old addresses and data directory.
    pub async fn restart(&mut self, id: i32) -> Result<()> {
        self.kill(id).await;
        let mut listeners = BoundListeners::default();
        if let Some(addr) = self.voters.get(&id) {
            listeners.controller = Some(rebind(addr).await?);
        }
        if let Some(addr) = self.brokers.get(&id) {
            listeners.broker = Some(rebind(addr).await?);
        }
        self.start_node(id, listeners).await
    }

    pub fn faults(&self) -> &LinkCuts {
        &self.faults
    }

    /// Cuts every link between the two groups, both ways.
    pub fn partition(&self, side_a: &[i32], side_b: &[i32]) {
        for a in side_a {
            for b in side_b {
                self.faults.cut(*a, *b);
            }
        }
    }

    pub fn heal(&self) {
        self.faults.heal_all();
    }

    pub async fn status(&self, id: i32) -> Option<RaftStatus> {
        self.nodes.get(&id)?.controller()?.raft_status().await
    }

    /// Why node `id`'s controller stopped on its own, if it has (`kraftd`
    /// exits non-zero with that reason); `None` while it runs.
    pub fn fatal(&self, id: i32) -> Option<String> {
        self.nodes.get(&id)?.controller_fatal()
    }

    /// The committed image of node `id`.
    pub fn image(&self, id: i32) -> Option<Arc<MetadataImage>> {
        Some(self.nodes.get(&id)?.controller()?.image().borrow().clone())
    }

    /// The leader that every node in `among` agrees on, with its term, if
    /// exactly one of them is leader in that term.
    pub async fn agreed_leader(&self, among: &[i32]) -> Option<(i32, u64)> {
        let mut agreed: Option<(i32, u64)> = None;
        let mut leaders = 0;
        for id in among {
            let status = self.status(*id).await?;
            let view = (status.leader_id?, status.term);
            if agreed.is_some_and(|a| a != view) {
                return None;
            }
            agreed = Some(view);
            if status.role == RaftRole::Leader {
                leaders += 1;
            }
        }
        (leaders == 1).then_some(agreed).flatten()
    }

    /// Waits until the running controllers agree on one leader.
    pub async fn wait_for_leader(&self) -> Result<(i32, u64)> {
        let running: Vec<i32> = self
            .running()
            .into_iter()
            .filter(|id| self.voters.contains_key(id))
            .collect();
        wait_for("a leader all running nodes agree on", || {
            self.agreed_leader(&running)
        })
        .await
    }

    /// A client that finds the active controller among all voters.
    pub fn client(&self) -> QuorumClient {
        QuorumClient::new(self.voters.values().cloned().collect(), &self.cluster_id)
    }

    /// A write that drives the log: sets a cluster-wide broker config.
    /// Returns the committed offset.
    pub async fn set_config(&self, key: &str, value: &str) -> Result<u64> {
        let request = set_broker_config(key, value);
        let response = self.client().call_leader(request, DEADLINE).await?;
        match response.body {
            Some(controller_response::Body::Write(_)) => Ok(response.committed_offset),
            other => bail!("unexpected response to AlterConfigs: {other:?}"),
        }
    }

    /// DescribeQuorum, answered by the leader.
    pub async fn describe_quorum(&self) -> Result<DescribeQuorumResponse> {
        let response = self
            .client()
            .call_leader(Body::DescribeQuorum(DescribeQuorumRequest {}), DEADLINE)
            .await?;
        match response.body {
            Some(controller_response::Body::DescribeQuorum(q)) => Ok(q),
            other => bail!("unexpected response to DescribeQuorum: {other:?}"),
        }
    }

    /// Waits until node `id` has applied `offset`, and returns its image.
    pub async fn wait_applied(&self, id: i32, offset: u64) -> Result<Arc<MetadataImage>> {
        let desc = format!("node {id} to apply offset {offset}");
        wait_for(&desc, || async {
            self.image(id).filter(|image| image.offset() >= offset)
        })
        .await
    }

    /// Stops every node.
    pub async fn shutdown(mut self) {
        let ids = self.running();
        for id in ids {
            self.kill(id).await;
        }
    }
}

/// An AlterConfigs request that sets one cluster-wide broker config: the
/// simplest write there is, used by tests to drive the metadata log.
pub fn set_broker_config(key: &str, value: &str) -> Body {
    Body::AlterConfigs(AlterConfigsRequest {
        changes: vec![ConfigRecord {
            resource_type: ConfigResourceType::ConfigResourceBroker as i32,
            resource_name: String::new(),
            name: key.to_string(),
            value: Some(value.to_string()),
        }],
        validate_only: false,
    })
}

/// Binds a restarted node's old address; the old socket may take a moment
/// to be released.
async fn rebind(addr: &str) -> Result<TcpListener> {
    let desc = format!("{addr} to be free again");
    wait_for(&desc, || async { TcpListener::bind(addr).await.ok() }).await
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}
