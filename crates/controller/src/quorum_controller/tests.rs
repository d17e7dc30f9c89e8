//! The [`QuorumController`] over a real single-voter Raft thread, with the
//! test standing between them: it hands Raft's events to the controller one
//! at a time (`on_raft_event`) and sends commands (`on_command`) exactly
//! when the schedule needs them, so a race between a term change and a
//! proposal is played in a fixed order. Raft's term is moved by stepping
//! messages from a node that is not a voter (a heartbeat of a higher term,
//! then a "timeout now" that makes this node campaign at once).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kraft_metadata::{ConfigResource, MetadataImage};
use kraft_proto::controller::AlterConfigsRequest;
use kraft_proto::metadata::{ConfigRecord, ConfigResourceType};
use kraft_raft::driver::{raft_id, RaftOutputs};
use kraft_raft::storage::RaftStorage;
use kraft_raft::{
    start_raft, Leadership, Message, MessageType, NoFaults, PeerTransport, RaftEvent, RaftHandle,
    RaftRole, RaftTiming,
};
use tempfile::TempDir;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::*;

const NODE: i32 = 1;
/// Not a voter; it only "leads" the term that interrupts this node's.
const OTHER: i32 = 2;
const DEADLINE: Duration = Duration::from_secs(60);

struct Harness {
    _dir: TempDir,
    raft: RaftHandle,
    thread: Option<JoinHandle<()>>,
    events: mpsc::UnboundedReceiver<RaftEvent>,
    controller: QuorumController,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.raft.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn settings(dir: &std::path::Path) -> ControllerSettings {
    ControllerSettings {
        node_id: NODE,
        cluster_id: "c".into(),
        voters: BTreeMap::from([(NODE, "127.0.0.1:0".to_string())]),
        metadata_dir: dir.to_path_buf(),
        max_idle_interval: Duration::ZERO,
        snapshot_max_bytes: u64::MAX,
        snapshot_max_interval: Duration::from_secs(24 * 3600),
        session_timeout: Duration::from_secs(9),
        default_num_partitions: 1,
        default_replication_factor: 1,
        leader_balance: Default::default(),
    }
}

impl Harness {
    fn start() -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage =
            RaftStorage::open(dir.path(), &[raft_id(NODE)], Default::default()).expect("open");
        let (events_tx, events) = mpsc::unbounded_channel();
        let transport = PeerTransport::new(NODE, "c".into(), HashMap::new(), Arc::new(NoFaults));
        let timing = RaftTiming::from_election_timeout(Duration::from_millis(300));
        let outputs = RaftOutputs {
            events: events_tx,
            transport,
        };
        let (raft, thread) = start_raft(NODE, timing, storage, outputs).expect("raft");
        let settings = settings(dir.path());
        let (published, _) = watch::channel(Arc::new(MetadataImage::empty()));
        let controller = QuorumController::new(settings, raft.clone(), published);
        Harness {
            _dir: dir,
            raft,
            thread: Some(thread),
            events,
            controller,
        }
    }

    /// Hands Raft's events to the controller until `done` holds.
    async fn pump_until(&mut self, what: &str, mut done: impl FnMut(&QuorumController) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while !done(&self.controller) {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => self.controller.on_raft_event(event).expect("raft event"),
                Ok(None) => panic!("the raft thread stopped while waiting for {what}"),
                Err(_) => panic!("timed out waiting for {what}"),
            }
        }
    }

    /// Hands over every event Raft has sent so far.
    fn drain(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            self.controller.on_raft_event(event).expect("raft event");
        }
    }

    /// Waits until the Raft thread (not the controller) sees `want`.
    async fn wait_raft(&self, what: &str, want: impl Fn(Leadership) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while !want(self.raft.leadership()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn step(&self, msg_type: MessageType, term: u64) {
        let mut msg = Message::default();
        msg.set_msg_type(msg_type);
        msg.from = raft_id(OTHER);
        msg.to = raft_id(NODE);
        msg.term = term;
        self.raft.step(msg);
    }

    /// Sends an AlterConfigs setting `key` on the cluster-wide broker
    /// resource; the controller computes and proposes it at once.
    fn alter_config(&mut self, key: &str, value: &str) -> oneshot::Receiver<WriteOutcome> {
        let (reply, rx) = oneshot::channel();
        let op = WriteOp::AlterConfigs(AlterConfigsRequest {
            changes: vec![ConfigRecord {
                resource_type: ConfigResourceType::ConfigResourceBroker as i32,
                resource_name: String::new(),
                name: key.to_string(),
                value: Some(value.to_string()),
            }],
            validate_only: false,
        });
        self.controller.on_command(ControllerCommand { op, reply });
        rx
    }
}

fn cluster_config(image: &MetadataImage, key: &str) -> Option<String> {
    let resource = ConfigResource {
        resource_type: ConfigResourceType::ConfigResourceBroker,
        name: String::new(),
    };
    image.configs().get(&resource, key).map(str::to_string)
}

fn is_active(c: &QuorumController) -> bool {
    c.active && c.committed.features().level("metadata.version").is_some()
}

/// Issue 11, defect 4. The controller is active in term T; before it hears
/// of it, Raft loses term T+1 to another node and wins T+2. A write the
/// controller computes from its term-T image now reaches Raft, which leads
/// again: it must be refused (the client gets NOT_CONTROLLER and retries),
/// never appended after the other leader's changes.
#[tokio::test]
async fn a_write_computed_in_an_earlier_term_is_never_applied() {
    let mut h = Harness::start();
    h.pump_until("the first term's controller to be active", is_active)
        .await;
    h.pump_until("the bootstrap to commit", |c| {
        c.proposing.is_empty() && c.in_flight.is_empty()
    })
    .await;
    let t = h.controller.term;

    // Raft moves on; the controller's events stay queued. (If this thread
    // is slow, Raft may campaign on its own before the "timeout now"
    // arrives; that message is then stale and ignored, same outcome.)
    h.step(MessageType::MsgHeartbeat, t + 1);
    h.wait_raft("raft to leave term T", |l| l.term > t).await;
    h.step(MessageType::MsgTimeoutNow, t + 1);
    h.wait_raft("raft to lead a later term", |l| {
        l.role == RaftRole::Leader && l.term > t + 1
    })
    .await;
    let now = h.raft.leadership().term;

    // The controller still believes it is active in T: it proposes.
    assert!(h.controller.active && h.controller.term == t);
    let mut stale = h.alter_config("stale.key", "computed-in-term-T");
    // Status queries queue behind the proposal: Raft has handled it.
    let last = h.raft.status().await.expect("raft status").last_index;
    h.pump_until("the controller to catch up in the new term", |c| {
        c.term == now && c.active && c.committed.offset() >= last
    })
    .await;
    h.drain();

    assert_eq!(
        cluster_config(&h.controller.committed, "stale.key"),
        None,
        "a write computed from the term-{t} image was committed in term {now}"
    );
    assert_eq!(cluster_config(&h.controller.latest, "stale.key"), None);
    match stale.try_recv() {
        Ok(Err(e)) => assert!(e.is(ResponseError::NotController), "{e:?}"),
        other => panic!("the stale write must be answered NOT_CONTROLLER, got {other:?}"),
    }
    assert!(
        h.controller.active,
        "the refusal of a term-{t} proposal must not unseat the term-{now} controller"
    );

    // The controller of the new term writes normally.
    let mut fresh = h.alter_config("fresh.key", "new-term");
    let mut outcome = None;
    h.pump_until("the new term's write to be answered", |_| {
        outcome = fresh.try_recv().ok();
        outcome.is_some()
    })
    .await;
    match outcome {
        Some(Ok((_, offset))) => assert!(offset > last),
        other => panic!("the new term's write failed: {other:?}"),
    }
    assert_eq!(
        cluster_config(&h.controller.committed, "fresh.key").as_deref(),
        Some("new-term")
    );
}

/// A user's operation is atomic: however many records it writes (Kafka's
/// bound is 10,000 partitions, plus the topic and config records), they go
/// in one Raft entry, so a controller that dies mid-way leaves all or none.
#[tokio::test]
async fn a_large_user_operation_is_one_raft_entry() {
    let mut h = Harness::start();
    h.pump_until("the controller to be active", is_active).await;
    h.pump_until("the bootstrap to commit", |c| {
        c.proposing.is_empty() && c.in_flight.is_empty()
    })
    .await;
    let (reply, mut rx) = oneshot::channel();
    let changes = (0..10_050)
        .map(|i| ConfigRecord {
            resource_type: ConfigResourceType::ConfigResourceBroker as i32,
            resource_name: String::new(),
            name: format!("bulk.key.{i}"),
            value: Some("v".to_string()),
        })
        .collect();
    let op = WriteOp::AlterConfigs(AlterConfigsRequest {
        changes,
        validate_only: false,
    });
    h.controller.on_command(ControllerCommand { op, reply });
    assert_eq!(
        h.controller.proposing.len(),
        1,
        "one operation of 10,050 records was proposed as several Raft entries"
    );
    let mut outcome = None;
    h.pump_until("the write to be answered", |_| {
        outcome = rx.try_recv().ok();
        outcome.is_some()
    })
    .await;
    assert!(matches!(outcome, Some(Ok(_))), "{outcome:?}");
    assert_eq!(
        cluster_config(&h.controller.committed, "bulk.key.10049").as_deref(),
        Some("v")
    );
}

/// A controller whose Raft thread is gone (its event stream closed, as
/// when the thread panics) must fail, not return as if asked to stop: the
/// node then stops with that reason instead of running without Raft.
#[tokio::test]
async fn the_controller_fails_when_the_raft_thread_is_gone() {
    let h = Harness::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (published, _) = watch::channel(Arc::new(MetadataImage::empty()));
    let controller = QuorumController::new(settings(dir.path()), h.raft.clone(), published);
    let (_commands, commands_rx) = mpsc::channel(1);
    let (events, events_rx) = mpsc::unbounded_channel();
    drop(events);
    let ended = tokio::time::timeout(DEADLINE, controller.run(commands_rx, events_rx)).await;
    assert_eq!(ended, Ok(Err("the raft thread stopped".to_string())));
}
