//! Test harness: a single-voter controller in-process, a Kafka listener in
//! front of it whose MetadataCache follows the controller's own published
//! image, and helpers to register a fake broker (with heartbeats so it gets
//! unfenced) and to talk Kafka to the listener.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kraft_broker::context::Memory;
use kraft_broker::replica::ReplicaFetchers;
use kraft_broker::{BrokerConfig, BrokerContext, BrokerState, KafkaServer};
use kraft_broker::{
    CacheQueries, ControllerChannel, GroupCoordinator, GroupCoordinatorConfig, MetadataCache,
    ReplicaManager, ReplicaManagerConfig,
};
use kraft_controller::controller_node::ControllerSettings;
use kraft_controller::{ControllerNode, ControllerNodeConfig, QuorumClient};
use kraft_kafka_client::KafkaClient;
use kraft_proto::controller::{
    controller_request::Body, controller_response, BrokerHeartbeatRequest,
    BrokerRegistrationRequest,
};
use kraft_proto::metadata::Endpoint;
use kraft_raft::{NoFaults, RaftRole};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const BROKER_ID: i32 = 1;
pub const CONTROLLER_ID: i32 = 3000;
pub const CLUSTER_ID: &str = "kraft-broker-tests";
pub const DEADLINE: Duration = Duration::from_secs(30);

pub struct Harness {
    _dir: TempDir,
    pub controller: Option<ControllerNode>,
    pub kafka_addr: SocketAddr,
    pub ctx: Arc<BrokerContext>,
    pub voters: Vec<String>,
    shutdown: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    heartbeats: Option<JoinHandle<()>>,
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with(BrokerConfig {
            auto_create_topics_enable: false,
            write_timeout: Duration::from_secs(10),
            ..BrokerConfig::default()
        })
        .await
    }

    pub async fn start_with(config: BrokerConfig) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let controller_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let controller_addr = controller_listener.local_addr().expect("addr").to_string();
        let node_config = ControllerNodeConfig {
            settings: ControllerSettings {
                node_id: CONTROLLER_ID,
                cluster_id: CLUSTER_ID.to_string(),
                voters: BTreeMap::from([(CONTROLLER_ID, controller_addr.clone())]),
                metadata_dir: dir.path().join("__cluster_metadata-0"),
                max_idle_interval: Duration::from_millis(500),
                snapshot_max_bytes: 1 << 30,
                snapshot_max_interval: Duration::from_secs(3600),
                session_timeout: Duration::from_secs(9),
                default_num_partitions: 1,
                default_replication_factor: 1,
                leader_balance: Default::default(),
            },
            election_timeout: Duration::from_millis(300),
            segment_bytes: 1 << 20,
            fault: Arc::new(NoFaults),
        };
        let controller = ControllerNode::start(node_config, controller_listener)
            .await
            .expect("controller starts");
        wait_until("the controller leads", || async {
            controller
                .raft_status()
                .await
                .is_some_and(|s| s.role == RaftRole::Leader)
        })
        .await;
        let voters = vec![controller_addr];
        let kafka_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let kafka_addr = kafka_listener.local_addr().expect("addr");
        let replicas = Arc::new(ReplicaManager::open(
            ReplicaManagerConfig::new(BROKER_ID, vec![dir.path().join("logs")]),
            ReplicaFetchers::new(
                BROKER_ID,
                "PLAINTEXT".to_string(),
                MetadataCache::new(controller.image()),
                Arc::new(NoFaults),
            ),
        ));
        let memory = Memory::new(&config);
        let groups = GroupCoordinator::new(
            GroupCoordinatorConfig::default(),
            replicas.clone(),
            MetadataCache::new(controller.image()),
        );
        let ctx = Arc::new(BrokerContext {
            node_id: BROKER_ID,
            cluster_id: CLUSTER_ID.to_string(),
            listener_name: "PLAINTEXT".to_string(),
            cache: MetadataCache::new(controller.image()),
            controller: ControllerChannel::new(voters.clone(), CLUSTER_ID),
            config,
            // No metadata publisher feeds it: these tests host no partitions.
            replicas: replicas.clone(),
            groups: groups.clone(),
            transactions: kraft_broker::txn::TransactionCoordinator::new(
                kraft_broker::TransactionCoordinatorConfig::default(),
                replicas.clone(),
                MetadataCache::new(controller.image()),
                "PLAINTEXT".to_string(),
                groups,
            ),
            producer_ids: kraft_broker::producer_ids::ProducerIdManager::new(),
            // No lifecycle runs here: the broker counts itself unfenced.
            state: watch::channel(BrokerState::Running { epoch: 1 }).1,
            memory,
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let server = tokio::spawn(KafkaServer::serve(kafka_listener, ctx.clone(), shutdown_rx));
        Harness {
            _dir: dir,
            controller: Some(controller),
            kafka_addr,
            ctx,
            voters,
            shutdown,
            server: Some(server),
            heartbeats: None,
        }
    }

    pub async fn client(&self) -> KafkaClient {
        KafkaClient::connect(self.kafka_addr)
            .await
            .expect("connect to the Kafka listener")
    }

    /// Registers broker [`BROKER_ID`] with this listener as its PLAINTEXT
    /// endpoint, heartbeats it, and waits until the cache shows it alive.
    /// Needs broker registration in the controller.
    pub async fn register_broker(&mut self) {
        let mut client = QuorumClient::new(self.voters.clone(), CLUSTER_ID);
        let request = BrokerRegistrationRequest {
            broker_id: BROKER_ID,
            incarnation_id: uuid::Uuid::new_v4().as_bytes().to_vec().into(),
            listeners: vec![Endpoint {
                name: "PLAINTEXT".to_string(),
                host: self.kafka_addr.ip().to_string(),
                port: i32::from(self.kafka_addr.port()),
                security_protocol: "PLAINTEXT".to_string(),
            }],
            rack: Some("rack-a".to_string()),
        };
        let response = client
            .call_leader(Body::BrokerRegistration(request), DEADLINE)
            .await
            .expect("broker registration (needs the controller's broker lifecycle)");
        let Some(controller_response::Body::BrokerRegistration(registration)) = response.body
        else {
            panic!("registration answered with {:?}", response.body);
        };
        let epoch = registration.broker_epoch;
        let cache = self.ctx.cache.clone();
        self.heartbeats = Some(tokio::spawn(async move {
            loop {
                let heartbeat = BrokerHeartbeatRequest {
                    broker_id: BROKER_ID,
                    broker_epoch: epoch,
                    current_metadata_offset: cache.offset(),
                    want_fence: false,
                    want_shutdown: false,
                    ..Default::default()
                };
                let _ = client
                    .call_leader(Body::BrokerHeartbeat(heartbeat), Duration::from_secs(2))
                    .await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
        let cache = self.ctx.cache.clone();
        wait_until("the broker is unfenced", || {
            let alive = cache.image().is_broker_alive(BROKER_ID);
            async move { alive }
        })
        .await;
    }

    /// Stops the listener (and checks it returns), then the controller.
    pub async fn stop(mut self) {
        if let Some(h) = self.heartbeats.take() {
            h.abort();
        }
        self.shutdown.send_replace(true);
        if let Some(server) = self.server.take() {
            tokio::time::timeout(DEADLINE, server)
                .await
                .expect("the Kafka listener stops on shutdown")
                .expect("the Kafka listener task does not panic");
        }
        if let Some(controller) = self.controller.take() {
            controller.stop().await;
        }
    }
}

/// Polls `condition` every 20 ms until it holds, failing after [`DEADLINE`].
pub async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
