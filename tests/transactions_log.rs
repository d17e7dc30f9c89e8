//! The partition leader's side of transactions, end to end: transactional
//! batches written by raw Produce for two producers (each transaction
//! registered with its coordinator first: InitProducerId and
//! AddPartitionsToTxn, which the leader verifies, KIP-890), one
//! transaction committed and the other aborted with WriteTxnMarkers sent
//! by the test (as a transaction coordinator would send them), then what consumers see: the last stable
//! offset and the aborted-transactions list in a raw read_committed Fetch,
//! librdkafka consumers at read_committed (exactly the committed records,
//! held at the LSO while a transaction is open) and read_uncommitted (every
//! data record, no markers), ListOffsets(latest) at read_committed, and the
//! same answers from a new leader after the old one is killed, on RF 3.

mod common;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, TransactionalId,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse,
    InitProducerIdRequest, InitProducerIdResponse, ListOffsetsRequest, ListOffsetsResponse,
    ProducerId, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::StrBytes;
use kraft_broker::replica::PartitionLookup;
use kraft_kafka_client::KafkaClient;
use kraft_log::batch;
use kraft_testkit::{wait_for, TestCluster};

use common::raw::{
    batch as plain_batch, name, produce, produce_in_transaction, transactional_batch,
};
use common::txn::{next, spawn_consumer, strings};
use common::{create_topic, DEADLINE};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
const INVALID_RECORD: i16 = 87;

async fn connect(cluster: &TestCluster, broker: i32) -> KafkaClient {
    KafkaClient::connect(cluster.broker_addr(broker))
        .await
        .expect("connect")
}

/// A transaction of `transactional_id` with `topic`-0 in it, registered
/// with its coordinator (FindCoordinator v4, then InitProducerId v4 and
/// AddPartitionsToTxn v3 there): (producer id, epoch). Retries while
/// `__transaction_state` comes up. `inits` InitProducerId calls: each
/// bumps the epoch.
async fn begin_transaction(
    cluster: &TestCluster,
    transactional_id: &str,
    topic: &str,
    inits: usize,
) -> (i64, i16) {
    let deadline = std::time::Instant::now() + DEADLINE;
    let mut any = connect(cluster, cluster.broker_ids()[0]).await;
    let coordinator = loop {
        let request = FindCoordinatorRequest::default()
            .with_key_type(1)
            .with_coordinator_keys(vec![s(transactional_id)]);
        let response: FindCoordinatorResponse =
            any.send(4, &request).await.expect("FindCoordinator");
        let found = &response.coordinators[0];
        if found.error_code == 0 {
            break found.node_id.0;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no coordinator for {transactional_id}: {}",
            found.error_code
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let client = &mut connect(cluster, coordinator).await;
    let mut done = 0;
    let (pid, epoch) = loop {
        let request = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(s(transactional_id))))
            .with_transaction_timeout_ms(600_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        let response: InitProducerIdResponse =
            client.send(4, &request).await.expect("InitProducerId");
        if response.error_code == 0 {
            done += 1;
            if done == inits {
                break (response.producer_id.0, response.producer_epoch);
            }
            continue;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no producer id for {transactional_id}: {}",
            response.error_code
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(s(transactional_id)))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![0])]);
    let response: AddPartitionsToTxnResponse =
        client.send(3, &request).await.expect("AddPartitionsToTxn");
    let code =
        response.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code;
    assert_eq!(code, 0, "AddPartitionsToTxn");
    (pid, epoch)
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Sends one marker for `topic`-`partition` (WriteTxnMarkers v1): its code.
async fn write_marker(
    client: &mut KafkaClient,
    producer_id: i64,
    epoch: i16,
    commit: bool,
    topic: &str,
    partition: i32,
) -> i16 {
    let request =
        WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch)
            .with_transaction_result(commit)
            .with_coordinator_epoch(0)
            .with_topics(vec![WritableTxnMarkerTopic::default()
                .with_name(name(topic))
                .with_partition_indexes(vec![partition])])]);
    let response: WriteTxnMarkersResponse =
        client.send(1, &request).await.expect("WriteTxnMarkers");
    response.markers[0].topics[0].partitions[0].error_code
}

/// What one partition's Fetch answer says.
#[derive(Debug, PartialEq)]
struct Fetched {
    error: i16,
    high_watermark: i64,
    last_stable_offset: i64,
    /// (producer id, first offset); `None` when the answer has no list.
    aborted: Option<Vec<(i64, i64)>>,
    /// The offset after the last batch returned (the fetch offset if none).
    end: i64,
}

/// A consumer's Fetch v12 of `topic`-0 from `offset`, without waiting.
async fn fetch(
    client: &mut KafkaClient,
    topic: &str,
    offset: i64,
    read_committed: bool,
) -> Fetched {
    long_poll(client, topic, offset, read_committed, 0).await
}

/// [`fetch`] waiting up to `max_wait_ms` for at least one byte.
async fn long_poll(
    client: &mut KafkaClient,
    topic: &str,
    offset: i64,
    read_committed: bool,
    max_wait_ms: i32,
) -> Fetched {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(i32::from(max_wait_ms > 0))
        .with_max_bytes(1 << 20)
        .with_isolation_level(i8::from(read_committed))
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_current_leader_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(1 << 20)])]);
    let response: FetchResponse = client.send(12, &request).await.expect("Fetch");
    let p = &response.responses[0].partitions[0];
    let records = p.records.clone().unwrap_or_default();
    let end = batch::batches(&records)
        .filter_map(Result::ok)
        .last()
        .map_or(offset, |(h, _)| h.next_offset());
    Fetched {
        error: p.error_code,
        high_watermark: p.high_watermark,
        last_stable_offset: p.last_stable_offset,
        aborted: p.aborted_transactions.as_ref().map(|list| {
            list.iter()
                .map(|t| (t.producer_id.0, t.first_offset))
                .collect()
        }),
        end,
    }
}

/// ListOffsets v5 latest (-1) of `topic`-0: (error, offset).
async fn latest(client: &mut KafkaClient, topic: &str, read_committed: bool) -> (i16, i64) {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(i8::from(read_committed))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_current_leader_epoch(-1)
                .with_timestamp(-1)])]);
    let response: ListOffsetsResponse = client.send(5, &request).await.expect("ListOffsets");
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.offset)
}

/// The leader of `topic`-0 and its ISR size, as controller 1 has them.
fn leader_of(cluster: &TestCluster, topic: &str) -> Option<(i32, usize)> {
    let image = cluster.image(1)?;
    let p = image.topics().topic_by_name(topic)?.partition(0)?.clone();
    (p.leader >= 0).then_some((p.leader, p.isr.len()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_and_abort_reach_read_committed_consumers_and_survive_a_leader_kill() {
    let mut cluster = TestCluster::builder(1)
        .brokers(3)
        .prop("replica.lag.time.max.ms", 2000)
        .prop("broker.session.timeout.ms", 3000)
        .prop("broker.heartbeat.interval.ms", 300)
        .start()
        .await
        .expect("cluster");
    let bootstrap = cluster.bootstrap_servers();
    create_topic(&bootstrap, "txn", 1, 3, &[("min.insync.replicas", "2")]).await;
    let (leader, _) = wait_for("a full ISR", || async {
        leader_of(&cluster, "txn").filter(|(_, isr)| *isr == 3)
    })
    .await
    .expect("full ISR");
    let mut c = connect(&cluster, leader).await;
    let (a, _) = begin_transaction(&cluster, "ta", "txn", 1).await;
    let (b, _) = begin_transaction(&cluster, "tb", "txn", 1).await;

    assert_eq!(
        produce(&mut c, "txn", 0, plain_batch(&["plain-0"])).await,
        (0, 0)
    );
    let a_first = transactional_batch(&["a0", "a1"], a, 0, 0);
    assert_eq!(
        produce_in_transaction(&mut c, "ta", "txn", 0, a_first).await,
        (0, 1)
    );
    let b_only = transactional_batch(&["b0", "b1"], b, 0, 0);
    assert_eq!(
        produce_in_transaction(&mut c, "tb", "txn", 0, b_only).await,
        (0, 3)
    );
    let a_second = transactional_batch(&["a2"], a, 0, 2);
    assert_eq!(
        produce_in_transaction(&mut c, "ta", "txn", 0, a_second).await,
        (0, 5)
    );

    // Two open transactions: read_committed stops at the first one's start.
    let committed = fetch(&mut c, "txn", 0, true).await;
    assert_eq!(
        committed,
        Fetched {
            error: 0,
            high_watermark: 6,
            last_stable_offset: 1,
            aborted: Some(vec![]),
            end: 1,
        }
    );
    let uncommitted = fetch(&mut c, "txn", 0, false).await;
    assert_eq!((uncommitted.last_stable_offset, uncommitted.end), (1, 6));
    assert_eq!(uncommitted.aborted, None);
    assert_eq!(latest(&mut c, "txn", true).await, (0, 1));
    assert_eq!(latest(&mut c, "txn", false).await, (0, 6));

    let mut read_committed = spawn_consumer(&bootstrap, "txn", "read_committed");
    let mut read_uncommitted = spawn_consumer(&bootstrap, "txn", "read_uncommitted");
    assert_eq!(next(&mut read_committed, 1).await, strings(&["plain-0"]));
    assert_eq!(
        next(&mut read_uncommitted, 6).await,
        strings(&["plain-0", "a0", "a1", "b0", "b1", "a2"])
    );
    // Held at the LSO: nothing past it has reached the consumer.
    assert!(read_committed.try_recv().is_err());

    // Only the leader writes markers.
    let follower = cluster
        .broker_ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    let mut f = connect(&cluster, follower).await;
    assert_eq!(
        write_marker(&mut f, a, 0, true, "txn", 0).await,
        NOT_LEADER_OR_FOLLOWER
    );

    // A commits; B, which began before A's second batch, still holds the LSO.
    assert_eq!(write_marker(&mut c, a, 0, true, "txn", 0).await, 0);
    assert_eq!(fetch(&mut c, "txn", 0, true).await.last_stable_offset, 3);
    assert_eq!(next(&mut read_committed, 2).await, strings(&["a0", "a1"]));
    // B aborts: everything is stable, and B's records are listed as aborted.
    assert_eq!(write_marker(&mut c, b, 0, false, "txn", 0).await, 0);
    let committed = fetch(&mut c, "txn", 0, true).await;
    assert_eq!(
        committed,
        Fetched {
            error: 0,
            high_watermark: 8,
            last_stable_offset: 8,
            aborted: Some(vec![(b, 3)]),
            end: 8,
        }
    );
    assert_eq!(
        fetch(&mut c, "txn", 6, true).await.aborted,
        Some(vec![(b, 3)])
    );
    assert_eq!(next(&mut read_committed, 1).await, strings(&["a2"]));
    assert_eq!(
        produce(&mut c, "txn", 0, plain_batch(&["plain-1"])).await,
        (0, 8)
    );
    assert_eq!(next(&mut read_committed, 1).await, strings(&["plain-1"]));
    // Every data record, and no marker, at read_uncommitted.
    assert_eq!(next(&mut read_uncommitted, 1).await, strings(&["plain-1"]));
    assert_eq!(latest(&mut c, "txn", true).await, (0, 9));
    drop((read_committed, read_uncommitted));

    // The leader dies: the new one rebuilt the same state from what it fetched.
    cluster.kill(leader).await;
    let new_leader = wait_for("a new leader", || async {
        leader_of(&cluster, "txn").filter(|(l, _)| *l != leader)
    })
    .await
    .expect("new leader")
    .0;
    let answer = wait_for("the new leader's read_committed answer", || async {
        let mut c = KafkaClient::connect(cluster.broker_addr(new_leader))
            .await
            .ok()?;
        let fetched = fetch(&mut c, "txn", 0, true).await;
        (fetched.error == 0 && fetched.high_watermark == 9).then_some(fetched)
    })
    .await
    .expect("new leader answers");
    assert_eq!(
        answer,
        Fetched {
            error: 0,
            high_watermark: 9,
            last_stable_offset: 9,
            aborted: Some(vec![(b, 3)]),
            end: 9,
        }
    );
    let mut c = connect(&cluster, new_leader).await;
    assert_eq!(latest(&mut c, "txn", true).await, (0, 9));
    let mut after = spawn_consumer(&bootstrap, "txn", "read_committed");
    assert_eq!(
        next(&mut after, 5).await,
        strings(&["plain-0", "a0", "a1", "a2", "plain-1"])
    );
    drop(after);

    // The killed broker recovers its log (not shut down cleanly) to the same state.
    cluster.restart(leader).await.expect("restart");
    let topic_id = cluster
        .image(1)
        .and_then(|i| i.topics().topic_id("txn"))
        .expect("topic id");
    let state = wait_for("the restarted broker's log", || async {
        match cluster.broker(leader)?.replicas().lookup(topic_id, 0) {
            PartitionLookup::Hosted(p) => {
                let log = p.log();
                (log.log_end_offset() == 9).then(|| {
                    (
                        log.ongoing_transactions(),
                        log.aborted_transactions(0, 9)
                            .into_iter()
                            .map(|t| (t.producer_id, t.first_offset, t.last_offset))
                            .collect::<Vec<_>>(),
                    )
                })
            }
            _ => None,
        }
    })
    .await
    .expect("restarted log");
    assert_eq!(state, (vec![], vec![(b, 3, 7)]));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_markers_and_client_control_batches_get_kafkas_codes() {
    let cluster = TestCluster::builder(1)
        .combined()
        .prop("transaction.state.log.replication.factor", 1)
        .prop("transaction.state.log.min.isr", 1)
        .prop("transaction.state.log.num.partitions", 2)
        .start()
        .await
        .expect("cluster");
    create_topic(&cluster.bootstrap_servers(), "bad", 1, 1, &[]).await;
    let mut c = connect(&cluster, 1).await;
    let versions: ApiVersionsResponse = c
        .send(3, &ApiVersionsRequest::default())
        .await
        .expect("ApiVersions");
    let listed = versions
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::WriteTxnMarkers as i16)
        .map(|k| (k.min_version, k.max_version));
    assert_eq!(listed, Some((1, 1)));

    // Two inits: the transaction runs at epoch 1, so a marker at epoch 0
    // is from the past.
    let (pid, epoch) = begin_transaction(&cluster, "tx", "bad", 2).await;
    assert_eq!(epoch, 1);
    // A client may not write a marker through Produce.
    let control = batch::control_batch(pid, 0, 0, kraft_log::TxnMarker::Commit, 1_000);
    assert_eq!(
        produce_in_transaction(&mut c, "tx", "bad", 0, control.clone())
            .await
            .0,
        INVALID_RECORD
    );
    // (It is transactional too: without a transactional id, refused before that.)
    assert_eq!(
        produce(&mut c, "bad", 0, control).await.0,
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    );
    // Nor a transactional batch without naming its transactional id.
    let batch = transactional_batch(&["x"], pid, 1, 0);
    assert_eq!(
        produce(&mut c, "bad", 0, batch.clone()).await.0,
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    );
    assert_eq!(fetch(&mut c, "bad", 0, false).await.high_watermark, 0);
    assert_eq!(
        produce_in_transaction(&mut c, "tx", "bad", 0, batch).await,
        (0, 0)
    );
    // Markers for what does not exist, or from an older producer epoch.
    assert_eq!(
        write_marker(&mut c, pid, 1, true, "nope", 0).await,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        write_marker(&mut c, pid, 1, true, "bad", 7).await,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        write_marker(&mut c, pid, 0, true, "bad", 0).await,
        INVALID_PRODUCER_EPOCH
    );
    let open = fetch(&mut c, "bad", 0, true).await;
    assert_eq!((open.high_watermark, open.last_stable_offset), (1, 0));
    // A read_committed long poll parked at the LSO is woken by the marker
    // (its wait is far longer than any test would run).
    let mut waiting = connect(&cluster, 1).await;
    let parked =
        tokio::spawn(async move { long_poll(&mut waiting, "bad", 0, true, 600_000).await });
    assert_eq!(write_marker(&mut c, pid, 1, false, "bad", 0).await, 0);
    let woken = tokio::time::timeout(DEADLINE, parked)
        .await
        .expect("the long poll answers once the marker is written")
        .expect("fetch task");
    assert_eq!((woken.last_stable_offset, woken.end), (2, 2));
    assert_eq!(woken.aborted, Some(vec![(pid, 0)]));
    let done = fetch(&mut c, "bad", 0, true).await;
    assert_eq!((done.high_watermark, done.last_stable_offset), (2, 2));
    assert_eq!(done.aborted, Some(vec![(pid, 0)]));
    cluster.shutdown().await;
}
