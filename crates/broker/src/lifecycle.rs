//! BrokerLifecycle: how a broker joins, stays in and leaves the cluster
//! (KIP-631).
//!
//! In: the broker's identity (id, a new incarnation id per process start,
//! listeners, rack), its applied metadata offset (from the MetadataCache),
//! and a request to shut down.
//! Out: `BrokerRegistration` and `BrokerHeartbeat` requests to the active
//! controller, and the broker's [`BrokerState`] on a `watch` channel.
//!
//! A broker registers (the controller writes RegisterBroker; the broker is
//! fenced), waits until its metadata has caught up to that record, then asks
//! to be unfenced in its next heartbeat. It heartbeats every
//! `broker.heartbeat.interval.ms`; if it misses `broker.session.timeout.ms`
//! the controller fences it. On shutdown it asks for controlled shutdown in
//! its heartbeats until the controller says no partition is led by it. A
//! controlled shutdown is bounded: once no controller has answered for a
//! whole `broker.session.timeout.ms`, the controller has fenced this broker
//! (and moved its leaderships) anyway, so the broker stops without waiting
//! for an agreement it cannot get; a broker not registered (yet, or any
//! more) leads nothing and stops at once.
//!
//! Every heartbeat also carries what this broker's storage cannot serve
//! (from the replica manager, [`BrokerLifecycle::report_storage`]): its
//! failed log dirs and the partitions offline here, as Kafka's
//! OfflineLogDirs (KIP-858). The controller moves those partitions'
//! leadership away and takes this broker out of their ISRs; the broker
//! stays registered and unfenced for the rest.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kraft_proto::controller::controller_request::Body;
use kraft_proto::controller::controller_response::Body as Resp;
use kraft_proto::controller::{
    BrokerHeartbeatRequest, BrokerRegistrationRequest, OfflinePartitions,
};
use kraft_proto::metadata::Endpoint;
use kraft_rpc::{ClientError, QuorumClient};
use tokio::sync::watch;

use crate::metadata_cache::MetadataCache;
use crate::replica::{OfflineStorage, ReplicaManager};

/// Where a broker is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerState {
    /// Not registered yet.
    Starting,
    /// Registered, fenced: catching up or told to stay fenced.
    Fenced { epoch: i64 },
    /// Unfenced: may lead partitions and serve clients.
    Running { epoch: i64 },
    /// Controlled shutdown requested; leadership is moving away.
    ShuttingDown { epoch: i64 },
    /// The controlled shutdown is over: the controller agreed the broker
    /// may stop, or none answered for a whole session (it has fenced the
    /// broker by then), or the broker was not registered.
    ShutDown,
    /// The quorum refused this broker for good (e.g. another cluster's id).
    Refused,
}

#[derive(Clone, Debug)]
pub struct LifecycleConfig {
    pub node_id: i32,
    /// `broker.session.timeout.ms`: heartbeats failing this long mean the
    /// controller has fenced this broker.
    pub session_timeout: Duration,
    pub cluster_id: String,
    pub controllers: Vec<String>,
    pub listeners: Vec<Endpoint>,
    pub rack: Option<String>,
    pub heartbeat_interval: Duration,
}

/// How often a broker in controlled shutdown asks whether it may stop.
const SHUTDOWN_POLL: Duration = Duration::from_millis(50);

pub struct BrokerLifecycle {
    config: LifecycleConfig,
    incarnation: uuid::Uuid,
    client: QuorumClient,
    cache: MetadataCache,
    state: watch::Sender<BrokerState>,
    shutdown: watch::Receiver<bool>,
    /// Offset of the registration record: caught up once the cache has it.
    registered_at: u64,
    /// Where the offline log dirs and partitions come from, if anywhere.
    replicas: Option<Arc<ReplicaManager>>,
}

impl BrokerLifecycle {
    /// `shutdown` turning true starts controlled shutdown.
    pub fn new(
        config: LifecycleConfig,
        cache: MetadataCache,
        shutdown: watch::Receiver<bool>,
    ) -> (BrokerLifecycle, watch::Receiver<BrokerState>) {
        let client = QuorumClient::new(config.controllers.clone(), &config.cluster_id);
        let (state, state_rx) = watch::channel(BrokerState::Starting);
        let lifecycle = BrokerLifecycle {
            config,
            incarnation: uuid::Uuid::new_v4(),
            client,
            cache,
            state,
            shutdown,
            registered_at: 0,
            replicas: None,
        };
        (lifecycle, state_rx)
    }

    /// Reports `replicas`' failed log dirs and offline partitions in every
    /// heartbeat.
    pub fn report_storage(&mut self, replicas: Arc<ReplicaManager>) {
        self.replicas = Some(replicas);
    }

    /// Registers, then heartbeats until controlled shutdown completes or the
    /// quorum refuses the broker.
    pub async fn run(mut self) {
        let mut epoch = match self.register().await {
            Some(epoch) => epoch,
            None => return,
        };
        // Ask to be unfenced at once the first time the cache is caught up,
        // not an interval later.
        let mut unfence_asked = false;
        let mut last_answered = tokio::time::Instant::now();
        loop {
            let fenced = matches!(*self.state.borrow(), BrokerState::Fenced { .. });
            let behind = fenced && !self.caught_up();
            let ready_to_unfence = fenced && !behind && !unfence_asked;
            // Heartbeat every interval; at once when the cache catches up
            // (to be unfenced sooner) or shutdown is asked for; and often
            // while shutting down, to learn when leadership has moved.
            let wait = if *self.shutdown.borrow() {
                SHUTDOWN_POLL
            } else {
                self.config.heartbeat_interval
            };
            if ready_to_unfence {
                unfence_asked = true;
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    true = self.cache.wait_for_offset(self.registered_at, wait), if behind => {}
                    Ok(()) = self.shutdown.changed() => {}
                }
            }
            let want_shutdown = *self.shutdown.borrow();
            match self.heartbeat(epoch, want_shutdown).await {
                Ok(state) => {
                    last_answered = tokio::time::Instant::now();
                    self.state.send_replace(state);
                    if state == BrokerState::ShutDown {
                        return;
                    }
                }
                Err(ClientError::Server(e))
                    if e.is(ResponseError::StaleBrokerEpoch)
                        || e.is(ResponseError::BrokerIdNotRegistered) =>
                {
                    tracing::warn!(node = self.config.node_id, error = %e, "registration lost; registering again");
                    epoch = match self.register().await {
                        Some(epoch) => epoch,
                        None => return,
                    };
                    unfence_asked = false;
                }
                Err(e) => {
                    tracing::debug!(node = self.config.node_id, error = %e, "heartbeat failed");
                    if want_shutdown && last_answered.elapsed() >= self.config.session_timeout {
                        tracing::warn!(
                            node = self.config.node_id,
                            session_timeout_ms = self.config.session_timeout.as_millis() as u64,
                            error = %e,
                            "controlled shutdown: could not reach a controller for a whole \
                             broker.session.timeout.ms; the controller has fenced this broker \
                             by now, stopping without its agreement"
                        );
                        self.state.send_replace(BrokerState::ShutDown);
                        return;
                    }
                    // Unheard for a whole session, the controller has fenced
                    // this broker and moved its leaderships: stop leading.
                    let running = matches!(*self.state.borrow(), BrokerState::Running { .. });
                    if running && last_answered.elapsed() >= self.config.session_timeout {
                        tracing::warn!(node = self.config.node_id, "no heartbeat answered for a whole session; counting this broker fenced");
                        self.state.send_replace(BrokerState::Fenced { epoch });
                    }
                }
            }
        }
    }

    fn caught_up(&self) -> bool {
        self.registered_at > 0 && self.cache.offset() >= self.registered_at
    }

    /// Registers until it succeeds; None if the quorum refuses this broker
    /// or shutdown is asked for first (an unregistered broker leads
    /// nothing, so there is nothing to move).
    async fn register(&mut self) -> Option<i64> {
        let request = BrokerRegistrationRequest {
            broker_id: self.config.node_id,
            incarnation_id: self.incarnation.as_bytes().to_vec().into(),
            listeners: self.config.listeners.clone(),
            rack: self.config.rack.clone(),
        };
        loop {
            if *self.shutdown.borrow() {
                tracing::info!(
                    node = self.config.node_id,
                    "shutdown asked for while not registered; nothing to move"
                );
                self.state.send_replace(BrokerState::ShutDown);
                return None;
            }
            let timeout = self.config.heartbeat_interval.max(Duration::from_secs(1));
            match self
                .client
                .call_leader(Body::BrokerRegistration(request.clone()), timeout)
                .await
            {
                Ok(response) => {
                    if let Some(Resp::BrokerRegistration(r)) = response.body {
                        self.registered_at = response.committed_offset;
                        tracing::info!(
                            node = self.config.node_id,
                            epoch = r.broker_epoch,
                            "registered with the controller"
                        );
                        self.state.send_replace(BrokerState::Fenced {
                            epoch: r.broker_epoch,
                        });
                        return Some(r.broker_epoch);
                    }
                }
                Err(ClientError::Server(e)) if e.is(ResponseError::InconsistentClusterId) => {
                    tracing::error!(node = self.config.node_id, error = %e, "the controller quorum refused this broker");
                    self.state.send_replace(BrokerState::Refused);
                    return None;
                }
                Err(e) => {
                    tracing::debug!(node = self.config.node_id, error = %e, "registration failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                        Ok(()) = self.shutdown.changed() => {}
                    }
                }
            }
        }
    }

    async fn heartbeat(
        &mut self,
        epoch: i64,
        want_shutdown: bool,
    ) -> Result<BrokerState, ClientError> {
        let offline = self
            .replicas
            .as_ref()
            .map(|r| r.offline_storage())
            .unwrap_or_default();
        let request = BrokerHeartbeatRequest {
            broker_id: self.config.node_id,
            broker_epoch: epoch,
            current_metadata_offset: self.cache.offset(),
            // Kafka halts a broker whose every log dir failed; Kraft's asks
            // to be fenced instead, so it keeps answering (metadata, the
            // reason in its log) while no replica or leadership lands on it.
            want_fence: !self.caught_up() || offline.all_log_dirs_offline,
            want_shutdown,
            offline_log_dirs: offline
                .log_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect(),
            offline_partitions: offline_partitions(&offline),
        };
        let response = self
            .client
            .call_leader(
                Body::BrokerHeartbeat(request),
                self.config.heartbeat_interval,
            )
            .await?;
        let Some(Resp::BrokerHeartbeat(r)) = response.body else {
            return Ok(*self.state.borrow());
        };
        Ok(if want_shutdown && r.should_shutdown {
            BrokerState::ShutDown
        } else if want_shutdown {
            BrokerState::ShuttingDown { epoch }
        } else if r.is_fenced {
            BrokerState::Fenced { epoch }
        } else {
            BrokerState::Running { epoch }
        })
    }
}

/// The offline partitions grouped by topic, as the heartbeat carries them.
fn offline_partitions(offline: &OfflineStorage) -> Vec<OfflinePartitions> {
    let mut by_topic: BTreeMap<uuid::Uuid, Vec<i32>> = BTreeMap::new();
    for (topic_id, index) in &offline.partitions {
        by_topic.entry(*topic_id).or_default().push(*index);
    }
    by_topic
        .into_iter()
        .map(|(topic_id, partitions)| OfflinePartitions {
            topic_id: bytes::Bytes::copy_from_slice(topic_id.as_bytes()),
            partitions,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kraft_metadata::MetadataImage;

    use super::*;

    /// A broker that never reached a controller has nothing to move: asked
    /// to shut down while registering, it stops at once instead of
    /// retrying the registration forever.
    #[tokio::test]
    async fn shutdown_while_registering_stops_the_lifecycle() {
        // A port that was free a moment ago: nothing answers there.
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let config = LifecycleConfig {
            node_id: 1,
            session_timeout: Duration::from_secs(3600),
            cluster_id: "MkU3OEVBNTcwNTJENDM2Qg".to_string(),
            controllers: vec![dead.to_string()],
            listeners: Vec::new(),
            rack: None,
            heartbeat_interval: Duration::from_millis(100),
        };
        let (_images_tx, images) = watch::channel(Arc::new(MetadataImage::empty()));
        let (shutdown_tx, shutdown) = watch::channel(false);
        let (lifecycle, mut state) =
            BrokerLifecycle::new(config, MetadataCache::new(images), shutdown);
        let task = tokio::spawn(lifecycle.run());
        shutdown_tx.send_replace(true);
        // Generous: asserts that it ends, not how fast.
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("the lifecycle ends")
            .expect("the lifecycle task");
        assert_eq!(*state.borrow_and_update(), BrokerState::ShutDown);
    }
}
