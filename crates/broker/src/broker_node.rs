//! A running broker: the metadata loader, the MetadataCache, the replica
//! manager, the Kafka listener and the broker lifecycle, started together
//! and stopped together.
//!
//! In: a [`BrokerNodeConfig`] and a bound Kafka listener (tests bind port 0
//! first); the listener serves clients once the broker is unfenced. Out: the broker's [`BrokerState`] and [`MetadataLag`] on `watch`
//! channels, its MetadataCache, and `wait_fatal` for a broker the quorum
//! refused. `shutdown` does a controlled shutdown first and closes the
//! partition logs cleanly; `kill` does neither (a crash, as far as the
//! cluster and the logs can tell).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kraft_metadata::MetadataImage;
use kraft_proto::metadata::Endpoint;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::context::{BrokerConfig, BrokerContext, Memory};
use crate::controller_channel::ControllerChannel;
use crate::group::{GroupCoordinator, GroupCoordinatorConfig};
use crate::kafka::KafkaServer;
use crate::lifecycle::{BrokerLifecycle, BrokerState, LifecycleConfig};
use crate::metadata_cache::MetadataCache;
use crate::metadata_loader::{
    LoaderConfig, LoaderError, MetadataLag, MetadataLoader, WatchPublisher,
};
use crate::producer_ids::ProducerIdManager;
use crate::replica::{
    isr_manager, ReplicaFetchers, ReplicaManager, ReplicaManagerConfig, ReplicaPublisher,
};
use crate::txn::{TransactionCoordinator, TransactionCoordinatorConfig};
use kraft_rpc::NetworkFault;

#[derive(Clone)]
pub struct BrokerNodeConfig {
    pub node_id: i32,
    pub cluster_id: String,
    /// CONTROLLER addresses of the voters (`controller.quorum.voters`).
    pub controllers: Vec<String>,
    /// The name of the listener this broker serves clients on (PLAINTEXT).
    pub listener_name: String,
    /// What the broker registers: its advertised listeners.
    pub advertised: Vec<Endpoint>,
    pub rack: Option<String>,
    pub heartbeat_interval: Duration,
    /// `<metadata.log.dir>/__cluster_metadata-0`: local metadata snapshots.
    pub metadata_dir: PathBuf,
    pub snapshot_max_bytes: u64,
    pub snapshot_max_interval: Duration,
    pub kafka: BrokerConfig,
    /// Partition logs: `log.dirs` and the `log.*` defaults.
    pub logs: ReplicaManagerConfig,
    /// The group coordinator: `offsets.topic.*` and `group.*`.
    pub groups: GroupCoordinatorConfig,
    /// The transaction coordinator: `transaction.*`.
    pub transactions: TransactionCoordinatorConfig,
    /// `broker.session.timeout.ms`: after this long without a heartbeat
    /// answered, the broker counts itself fenced and stops acknowledging
    /// writes as leader.
    pub session_timeout: Duration,
    /// Which links work (tests cut some): replica fetches consult it.
    pub fault: Arc<dyn NetworkFault>,
}

/// How long the listener waits, once the controller has unfenced this
/// broker, for its own cache to show it; it serves anyway after that.
const UNFENCE_VISIBLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a controlled shutdown may take before the broker stops anyway.
const CONTROLLED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

pub struct BrokerNode {
    node_id: i32,
    /// What the Kafka listener serves requests with (also for in-process
    /// callers: the request-frame fuzz target).
    context: Arc<BrokerContext>,
    local_addr: SocketAddr,
    cache: MetadataCache,
    state: watch::Receiver<BrokerState>,
    lag: watch::Receiver<MetadataLag>,
    shutdown: watch::Sender<bool>,
    /// Tells the Kafka listener to stop serving (after controlled shutdown).
    stop_serving: watch::Sender<bool>,
    loader_task: JoinHandle<()>,
    lifecycle_task: JoinHandle<()>,
    server_task: JoinHandle<()>,
    replicas: Arc<ReplicaManager>,
    groups: Arc<GroupCoordinator>,
    groups_task: JoinHandle<()>,
    transactions: Arc<TransactionCoordinator>,
    transactions_task: JoinHandle<()>,
    maintenance_task: JoinHandle<()>,
    cleaner_task: JoinHandle<()>,
    isr_task: JoinHandle<()>,
    fencing_task: JoinHandle<()>,
}

/// A fenced broker must not acknowledge writes as leader: partitions may
/// lead only while the lifecycle says the broker is unfenced.
async fn follow_fencing(replicas: Arc<ReplicaManager>, mut state: watch::Receiver<BrokerState>) {
    loop {
        let fenced = matches!(*state.borrow_and_update(), BrokerState::Fenced { .. });
        replicas.set_may_lead(!fenced);
        if state.changed().await.is_err() {
            return;
        }
    }
}

impl BrokerNode {
    pub async fn start(
        config: BrokerNodeConfig,
        listener: TcpListener,
    ) -> Result<BrokerNode, LoaderError> {
        let local_addr = listener
            .local_addr()
            .map_err(|e| LoaderError::LocalSnapshot {
                dir: config.metadata_dir.clone(),
                reason: format!("listener: {e}"),
            })?;
        let (image_tx, image_rx) = watch::channel(Arc::new(MetadataImage::empty()));
        let cache = MetadataCache::new(image_rx);
        // Partition logs are opened (and recovered) before any metadata is
        // applied, so the first image finds them.
        let logs = config.logs.clone();
        let fetchers = ReplicaFetchers::new(
            config.node_id,
            config.listener_name.clone(),
            cache.clone(),
            config.fault.clone(),
        );
        let replicas = Arc::new(
            tokio::task::spawn_blocking(move || ReplicaManager::open(logs, fetchers))
                .await
                .map_err(|e| LoaderError::LocalSnapshot {
                    dir: config.metadata_dir.clone(),
                    reason: format!("opening partition logs: {e}"),
                })?,
        );
        let loader_config = LoaderConfig {
            node_id: config.node_id,
            cluster_id: config.cluster_id.clone(),
            controllers: config.controllers.clone(),
            snapshot_dir: config.metadata_dir.clone(),
            snapshot_max_bytes: config.snapshot_max_bytes,
            snapshot_max_interval: config.snapshot_max_interval,
        };
        let replica_publisher = replicas.clone();
        let groups = GroupCoordinator::new(config.groups.clone(), replicas.clone(), cache.clone());
        let group_publisher = groups.publisher();
        let transactions = TransactionCoordinator::new(
            config.transactions.clone(),
            replicas.clone(),
            cache.clone(),
            config.listener_name.clone(),
            groups.clone(),
        );
        let txn_publisher = transactions.publisher();
        let (loader, lag) = tokio::task::spawn_blocking(move || {
            // The replica manager goes first: by the time the cache (and so
            // a Metadata response) names this broker leader, the partition
            // is ready to take writes. The group coordinator follows it, so
            // the __consumer_offsets partitions it loads exist locally; so
            // does the transaction coordinator, for __transaction_state.
            MetadataLoader::new(
                loader_config,
                vec![
                    Box::new(ReplicaPublisher(replica_publisher)),
                    Box::new(group_publisher),
                    Box::new(txn_publisher),
                    Box::new(WatchPublisher(image_tx)),
                ],
            )
        })
        .await
        .map_err(|e| LoaderError::LocalSnapshot {
            dir: config.metadata_dir.clone(),
            reason: e.to_string(),
        })??;
        let loader_task = tokio::spawn(loader.run());
        let groups_task = tokio::spawn(groups.clone().run());
        let transactions_task = tokio::spawn(transactions.clone().run());

        let (shutdown, shutdown_rx) = watch::channel(false);
        let (stop_serving, stop_serving_rx) = watch::channel(false);
        let maintenance_task = tokio::spawn(replicas.clone().run_maintenance(shutdown_rx.clone()));
        let cleaner_task = tokio::spawn(replicas.clone().run_cleaner(shutdown_rx.clone()));

        let lifecycle_config = LifecycleConfig {
            node_id: config.node_id,
            cluster_id: config.cluster_id.clone(),
            controllers: config.controllers.clone(),
            listeners: config.advertised.clone(),
            rack: config.rack.clone(),
            heartbeat_interval: config.heartbeat_interval,
            session_timeout: config.session_timeout,
        };
        let (mut lifecycle, state) =
            BrokerLifecycle::new(lifecycle_config, cache.clone(), shutdown_rx.clone());
        lifecycle.report_storage(replicas.clone());
        let lifecycle_task = tokio::spawn(lifecycle.run());
        let ctx = Arc::new(BrokerContext {
            node_id: config.node_id,
            cluster_id: config.cluster_id.clone(),
            listener_name: config.listener_name.clone(),
            cache: cache.clone(),
            controller: ControllerChannel::new(config.controllers.clone(), &config.cluster_id),
            config: config.kafka.clone(),
            replicas: replicas.clone(),
            groups: groups.clone(),
            transactions: transactions.clone(),
            producer_ids: ProducerIdManager::new(),
            state: state.clone(),
            memory: Memory::new(&config.kafka),
        });
        let isr_task = tokio::spawn(isr_manager::run(
            replicas.clone(),
            Arc::new(ControllerChannel::with_pool_size(
                config.controllers.clone(),
                &config.cluster_id,
                1,
            )),
            state.clone(),
            shutdown_rx.clone(),
        ));
        let fencing_task = tokio::spawn(follow_fencing(replicas.clone(), state.clone()));
        // As Kafka does, serve clients only once the broker is unfenced: its
        // cache is caught up and the controller counts it alive. Until then
        // connections wait in the listener's backlog.
        let mut ready = state.clone();
        let mut stop = stop_serving_rx.clone();
        let strays = (replicas.clone(), cache.clone());
        let context = ctx.clone();
        let node_id = config.node_id;
        let server_task = tokio::spawn(async move {
            loop {
                match *ready.borrow_and_update() {
                    BrokerState::Running { .. } => break,
                    BrokerState::ShutDown | BrokerState::Refused => return,
                    _ => {}
                }
                tokio::select! {
                    changed = ready.changed() => if changed.is_err() { return },
                    _ = stop.changed() => return,
                }
            }
            // The controller unfenced this broker; its own cache follows
            // within a heartbeat or so. Serving only then keeps a client from
            // seeing this broker fenced in the answers of this broker.
            let (replicas, cache) = strays;
            let unfenced = cache
                .wait_until(UNFENCE_VISIBLE_TIMEOUT, |image| {
                    image.cluster().broker(node_id).is_some_and(|b| !b.fenced)
                })
                .await;
            if !unfenced {
                tracing::warn!(
                    node = node_id,
                    "serving before this broker's cache shows it unfenced"
                );
            }
            // Caught up: any log the metadata does not give this broker is a
            // leftover of a topic deleted or moved while it was down.
            replicas.remove_strays(&cache.image());
            KafkaServer::serve(listener, ctx, stop_serving_rx).await;
        });
        tracing::info!(node = config.node_id, addr = %local_addr, "broker started");
        Ok(BrokerNode {
            node_id: config.node_id,
            context,
            local_addr,
            cache,
            state,
            lag,
            shutdown,
            stop_serving,
            loader_task,
            lifecycle_task,
            server_task,
            replicas,
            groups,
            groups_task,
            transactions,
            transactions_task,
            maintenance_task,
            cleaner_task,
            isr_task,
            fencing_task,
        })
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The request context the Kafka listener serves with.
    pub fn context(&self) -> &Arc<BrokerContext> {
        &self.context
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn cache(&self) -> &MetadataCache {
        &self.cache
    }

    /// The partitions this broker hosts.
    pub fn replicas(&self) -> &Arc<ReplicaManager> {
        &self.replicas
    }

    pub fn state(&self) -> watch::Receiver<BrokerState> {
        self.state.clone()
    }

    /// How far behind the quorum this broker's metadata is.
    pub fn lag(&self) -> MetadataLag {
        *self.lag.borrow()
    }

    /// Resolves if the quorum refuses this broker for good.
    pub async fn wait_fatal(&self) -> String {
        let mut state = self.state.clone();
        loop {
            if *state.borrow_and_update() == BrokerState::Refused {
                return "the controller quorum refused this broker (INCONSISTENT_CLUSTER_ID): \
                        its meta.properties names another cluster"
                    .to_string();
            }
            if state.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Controlled shutdown: asks the controller to move this broker's
    /// leaderships away, waits until it agrees (or a timeout), then stops.
    pub async fn shutdown(self) {
        self.shutdown.send_replace(true);
        let mut state = self.state.clone();
        let done = tokio::time::timeout(CONTROLLED_SHUTDOWN_TIMEOUT, async {
            while !matches!(
                *state.borrow_and_update(),
                BrokerState::ShutDown | BrokerState::Refused
            ) {
                if state.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
        if done.is_err() {
            tracing::warn!(
                node = self.node_id,
                "controlled shutdown timed out; stopping anyway"
            );
        }
        // Clients were served throughout; now let in-flight requests finish.
        self.stop_serving.send_replace(true);
        let mut server = self.server_task;
        if tokio::time::timeout(Duration::from_secs(5), &mut server)
            .await
            .is_err()
        {
            server.abort();
        }
        self.lifecycle_task.abort();
        self.loader_task.abort();
        self.groups_task.abort();
        self.groups.close();
        self.transactions_task.abort();
        self.transactions.close();
        self.maintenance_task.abort();
        self.cleaner_task.abort();
        self.isr_task.abort();
        self.fencing_task.abort();
        let _ = self.lifecycle_task.await;
        let _ = self.loader_task.await;
        let _ = self.groups_task.await;
        let _ = self.transactions_task.await;
        let _ = self.maintenance_task.await;
        let _ = self.cleaner_task.await;
        let _ = self.isr_task.await;
        let _ = self.fencing_task.await;
        let replicas = self.replicas.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || replicas.close()).await {
            tracing::error!(node = self.node_id, error = %e, "closing partition logs failed");
        }
        tracing::info!(node = self.node_id, "broker stopped");
    }

    /// Stops at once: no controlled shutdown (what a crash looks like to the
    /// cluster; the controller fences the broker after its session times out).
    pub async fn kill(self) {
        for task in [
            &self.lifecycle_task,
            &self.server_task,
            &self.loader_task,
            &self.groups_task,
            &self.transactions_task,
            &self.maintenance_task,
            &self.cleaner_task,
            &self.isr_task,
            &self.fencing_task,
        ] {
            task.abort();
        }
        self.replicas.stop_fetching();
        self.groups.close();
        self.transactions.close();
        let _ = self.lifecycle_task.await;
        let _ = self.server_task.await;
        let _ = self.loader_task.await;
        let _ = self.groups_task.await;
        let _ = self.transactions_task.await;
        let _ = self.maintenance_task.await;
        let _ = self.cleaner_task.await;
        let _ = self.isr_task.await;
        let _ = self.fencing_task.await;
        tracing::info!(node = self.node_id, "broker stopped");
    }
}
