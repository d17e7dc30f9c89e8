//! Benchmark of consumer groups against one combined `kraftd` process
//! (release build; `offsets.topic.replication.factor=1`). Prints figures;
//! asserts nothing.
//!
//! - group join time: N members (1, 10, 50) start at once, each on its own
//!   connection speaking the raw group protocol (JoinGroup with the
//!   member-id round trip, SyncGroup, Heartbeat until told to rejoin); the
//!   time until every member holds an assignment of a generation with all
//!   N members, and how many generations that took (median over rounds);
//! - OffsetCommit throughput: committers, each with its own offsets-only
//!   group (generation -1), commit 10 partitions per request for a fixed
//!   time: commits/s, offsets/s and latency p50/p99, with 1 committer and
//!   with `--committers`;
//! - consume throughput through librdkafka (`rdkafka`): the same messages
//!   read by a consumer subscribed with a `group.id` (join included) and by
//!   one with assigned partitions, overall and from the first message on;
//!   after a warm-up read the two alternate, medians of the rounds.
//!
//! Run with `scripts/bench-groups [--rounds R] [--commit-seconds S]
//! [--committers C] [--messages N] [--consume-rounds K]
//! [--initial-delay-ms D]`: R rounds per group size (5), S seconds per
//! commit run (5), C concurrent committers (8), N messages of 100 B for the
//! consume runs (500000), K rounds of each consume way (3), and the broker's
//! `group.initial.rebalance.delay.ms` (0, as Kafka's sample config; the
//! default of 3000 would dominate every join time).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest, OffsetCommitRequest,
    SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kraft_kafka_client::KafkaClient;
use kraft_testkit::bench_support::{arg, ms, percentile};
use kraft_testkit::process::ProcessCluster;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const KRAFTD: &str = env!("CARGO_BIN_EXE_kraftd");
const SIZES: [usize; 3] = [1, 10, 50];
const COMMIT_PARTITIONS: i32 = 10;
const CONSUME_PARTITIONS: i32 = 3;
const PAYLOAD: usize = 100;
const MEMBER_ID_REQUIRED: i16 = 79;
const REBALANCE_IN_PROGRESS: i16 = 27;
const STALL: Duration = Duration::from_secs(120);

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn main() -> Result<()> {
    let rounds = arg("--rounds", 5) as usize;
    let commit_seconds = arg("--commit-seconds", 5);
    let committers = arg("--committers", 8) as usize;
    let messages = arg("--messages", 500_000) as usize;
    let delay = arg("--initial-delay-ms", 0).to_string();
    let consume_rounds = arg("--consume-rounds", 3) as usize;
    let cluster = ProcessCluster::start_combined(
        KRAFTD.as_ref(),
        &[
            ("offsets.topic.replication.factor", "1"),
            ("group.initial.rebalance.delay.ms", &delay),
        ],
    )?;
    let bootstrap = cluster.bootstrap_servers();
    println!("one combined kraftd (release), group.initial.rebalance.delay.ms={delay}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let coordinator = coordinator_of(&bootstrap, "warm-up").await?;
        create_topic(&bootstrap, "bench-commits", COMMIT_PARTITIONS).await?;
        println!("\ngroup join time (all members start at once; median of {rounds} rounds)");
        for size in SIZES {
            join_times(&coordinator, size, rounds).await?;
        }
        println!("\nOffsetCommit, {COMMIT_PARTITIONS} partitions per commit, {commit_seconds} s");
        for n in [1, committers] {
            commit_throughput(&bootstrap, n, Duration::from_secs(commit_seconds)).await?;
        }
        create_topic(&bootstrap, "bench-consume", CONSUME_PARTITIONS).await
    })?;
    println!("\nconsume {messages} messages of {PAYLOAD} B from {CONSUME_PARTITIONS} partitions");
    produce(&bootstrap, messages)?;
    // A first read warms the page cache and the broker's connections; then
    // the two ways alternate, so both see the same machine.
    consume(&bootstrap, messages, Mode::Assigned, "bench-warm-up")?;
    let mut runs: Vec<(Mode, Run)> = Vec::new();
    for round in 0..consume_rounds {
        for mode in [Mode::Assigned, Mode::Subscribed] {
            let group = format!("bench-{mode:?}-{round}");
            runs.push((mode, consume(&bootstrap, messages, mode, &group)?));
        }
    }
    for mode in [Mode::Assigned, Mode::Subscribed] {
        report(
            mode,
            runs.iter().filter(|(m, _)| *m == mode).map(|(_, r)| *r),
        );
    }
    Ok(())
}

/// The coordinator's address for `group`, once the broker names one (this
/// also creates `__consumer_offsets`).
async fn coordinator_of(bootstrap: &str, group: &str) -> Result<String> {
    let deadline = Instant::now() + STALL;
    loop {
        if let Ok(mut client) = KafkaClient::connect(bootstrap).await {
            let request = FindCoordinatorRequest::default().with_key(s(group));
            if let Ok(r) = client.send(3, &request).await {
                if r.error_code == 0 {
                    return Ok(format!("{}:{}", r.host.as_str(), r.port));
                }
            }
        }
        if Instant::now() > deadline {
            bail!("no coordinator for {group}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn create_topic(bootstrap: &str, name: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let results = admin.create_topics([&topic], &AdminOptions::new()).await?;
    for r in results {
        r.map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e}"))?;
    }
    Ok(())
}

/// One member of the join benchmark: joins, syncs, and heartbeats until
/// its generation holds all `expected` members. Returns when it holds an
/// assignment of such a generation, and the generation.
async fn member(addr: String, group: String, expected: usize) -> Result<(Instant, i32)> {
    let mut client = KafkaClient::connect(addr.as_str()).await?;
    let mut member_id = String::new();
    loop {
        let join = JoinGroupRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_session_timeout_ms(30_000)
            .with_rebalance_timeout_ms(30_000)
            .with_member_id(s(&member_id))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::from_static(b"subscription"))]);
        let joined = client.send(5, &join).await?;
        member_id = joined.member_id.to_string();
        match joined.error_code {
            0 => {}
            MEMBER_ID_REQUIRED | REBALANCE_IN_PROGRESS => continue,
            code => bail!("JoinGroup: error {code}"),
        }
        // The leader tells everyone how many members the generation has.
        let count = (joined.members.len() as u32).to_be_bytes();
        let assignments = joined
            .members
            .iter()
            .map(|m| {
                SyncGroupRequestAssignment::default()
                    .with_member_id(m.member_id.clone())
                    .with_assignment(Bytes::copy_from_slice(&count))
            })
            .collect();
        let sync = SyncGroupRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_generation_id(joined.generation_id)
            .with_member_id(s(&member_id))
            .with_assignments(assignments);
        let synced = client.send(3, &sync).await?;
        match synced.error_code {
            0 => {}
            REBALANCE_IN_PROGRESS => continue,
            code => bail!("SyncGroup: error {code}"),
        }
        let members = synced
            .assignment
            .get(..4)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
        if members == expected {
            return Ok((Instant::now(), joined.generation_id));
        }
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let beat = HeartbeatRequest::default()
                .with_group_id(GroupId(s(&group)))
                .with_generation_id(joined.generation_id)
                .with_member_id(s(&member_id));
            match client.send(3, &beat).await?.error_code {
                0 => {}
                REBALANCE_IN_PROGRESS => break,
                code => bail!("Heartbeat: error {code}"),
            }
        }
    }
}

async fn join_times(coordinator: &str, size: usize, rounds: usize) -> Result<()> {
    let mut times = Vec::with_capacity(rounds);
    let mut generations = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let group = format!("join-{size}-{round}");
        let start = Instant::now();
        let tasks: Vec<_> = (0..size)
            .map(|_| tokio::spawn(member(coordinator.to_string(), group.clone(), size)))
            .collect();
        let mut last = start;
        let mut generation = 0;
        for task in tasks {
            let (done, g) = tokio::time::timeout(STALL, task)
                .await
                .context("a member never got a full generation")???;
            last = last.max(done);
            generation = generation.max(g);
        }
        times.push(last - start);
        generations.push(generation);
    }
    times.sort();
    generations.sort();
    println!(
        "  {size:>3} members: p50 {}  min {}  max {}  (generations: {})",
        ms(percentile(&times, 0.5)),
        ms(times[0]),
        ms(times[times.len() - 1]),
        generations[generations.len() / 2]
    );
    Ok(())
}

/// `committers` connections, each committing for its own group until
/// `duration` has passed.
async fn commit_throughput(bootstrap: &str, committers: usize, duration: Duration) -> Result<()> {
    let mut tasks = Vec::new();
    for c in 0..committers {
        let group = format!("commits-{committers}-{c}");
        let addr = coordinator_of(bootstrap, &group).await?;
        tasks.push(tokio::spawn(async move {
            let mut client = KafkaClient::connect(addr.as_str()).await?;
            let mut latencies = Vec::new();
            let end = Instant::now() + duration;
            let mut offset = 0i64;
            while Instant::now() < end {
                offset += 1;
                let partitions = (0..COMMIT_PARTITIONS)
                    .map(|p| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(offset)
                            .with_committed_metadata(Some(s("")))
                    })
                    .collect();
                let request = OffsetCommitRequest::default()
                    .with_group_id(GroupId(s(&group)))
                    .with_generation_id_or_member_epoch(-1)
                    .with_topics(vec![OffsetCommitRequestTopic::default()
                        .with_name(TopicName(s("bench-commits")))
                        .with_partitions(partitions)]);
                let sent = Instant::now();
                let response = client.send(8, &request).await?;
                latencies.push(sent.elapsed());
                if let Some(p) = response.topics[0]
                    .partitions
                    .iter()
                    .find(|p| p.error_code != 0)
                {
                    bail!("OffsetCommit: error {}", p.error_code);
                }
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    all.sort();
    let commits = all.len() as f64 / duration.as_secs_f64();
    println!(
        "  {committers:>2} committer(s): {:>8.0} commits/s  {:>9.0} offsets/s  p50 {}  p99 {}",
        commits,
        commits * f64::from(COMMIT_PARTITIONS),
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.99))
    );
    Ok(())
}

fn produce(bootstrap: &str, messages: usize) -> Result<()> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let payload = vec![b'x'; PAYLOAD];
    for i in 0..messages {
        let key = i.to_string();
        let mut record = BaseRecord::to("bench-consume").key(&key).payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, r)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    producer.poll(Duration::from_millis(10));
                    record = r;
                }
                Err((e, _)) => bail!("produce: {e}"),
            }
        }
    }
    producer.flush(STALL)?;
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Assigned,
    Subscribed,
}

/// One consume run: messages/s overall, the time to the first message, and
/// messages/s from the first message on (the reading itself, without the
/// start-up: a join, or finding the partitions' offsets).
#[derive(Clone, Copy, Debug)]
struct Run {
    rate: f64,
    first: Duration,
    steady: f64,
}

/// Prints the medians of `runs`.
fn report(mode: Mode, runs: impl Iterator<Item = Run>) {
    let runs: Vec<Run> = runs.collect();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let rate = median(runs.iter().map(|r| r.rate).collect());
    let steady = median(runs.iter().map(|r| r.steady).collect());
    let mut firsts: Vec<Duration> = runs.iter().map(|r| r.first).collect();
    firsts.sort();
    println!(
        "  {:<26} {:>9.0} msgs/s  {:>6.1} MB/s  first message after {}, then {:>9.0} msgs/s",
        match mode {
            Mode::Assigned => "assigned partitions:",
            Mode::Subscribed => "subscribed with group.id:",
        },
        rate,
        rate * PAYLOAD as f64 / 1e6,
        ms(firsts.get(firsts.len() / 2).copied().unwrap_or_default()),
        steady
    );
}

/// Reads every message back as a member of `group` (assigned: the group
/// only names the client).
fn consume(bootstrap: &str, messages: usize, mode: Mode, group: &str) -> Result<Run> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .create()?;
    let start = Instant::now();
    match mode {
        Mode::Assigned => {
            let mut list = TopicPartitionList::new();
            for p in 0..CONSUME_PARTITIONS {
                list.add_partition_offset("bench-consume", p, Offset::Beginning)?;
            }
            consumer.assign(&list)?;
        }
        Mode::Subscribed => consumer.subscribe(&["bench-consume"])?,
    }
    let mut read = 0;
    let mut first = None;
    let mut last_progress = Instant::now();
    while read < messages {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(_)) => {
                read += 1;
                first.get_or_insert_with(|| start.elapsed());
                last_progress = Instant::now();
            }
            Some(Err(e)) => eprintln!("consumer: {e}"),
            None if last_progress.elapsed() > STALL => bail!("stalled at {read} messages"),
            None => {}
        }
    }
    let elapsed = start.elapsed();
    let first = first.unwrap_or_default();
    Ok(Run {
        rate: messages as f64 / elapsed.as_secs_f64(),
        first,
        steady: (messages - 1) as f64 / (elapsed - first).as_secs_f64().max(1e-9),
    })
}
