//! Benchmark of cluster metadata at scale: 3 controller and 3 broker
//! `kraftd` processes (release build) take N partitions (default 1,000
//! topics x 100 partitions, replication factor 3). Prints figures; asserts
//! nothing.
//!
//! - partitions per second committed by CreateTopics (`--batch` topics per
//!   request, `--in-flight` requests at once on separate connections spread
//!   over the brokers), first request sent -> last response received, and
//!   the request latency p50/p99/max;
//! - the time until every broker's cache has all N partitions (Metadata for
//!   all topics, polled on each broker once the creates are answered);
//! - resident memory per partition of each broker (and controller): VmRSS
//!   growth from before the creates until all are visible, divided by N;
//! - snapshot bytes per partition: the newest controller checkpoint that
//!   covers the last create, and each broker's local snapshot;
//! - restart: SIGKILL one broker, restart it, time until it serves Metadata
//!   with all N partitions again, and which snapshot its log says it loaded.
//!
//! Run with `scripts/bench-metadata [--topics T] [--partitions-per-topic P]
//! [--batch B] [--in-flight F] [--snapshot-bytes BYTES]
//! [--snapshot-interval-ms MS] [--timeout-s S]`. The run stops, and says
//! why, when the machine's MemAvailable falls under 1.5 GiB or a wait takes
//! longer than `--timeout-s`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::{
    CreateTopicsRequest, DescribeClusterRequest, MetadataRequest, MetadataResponse, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, HeaderVersion, StrBytes};
use kafka_protocol::ResponseError;
use kraft_controller::QuorumClient;
use kraft_kafka_client::KafkaClient;
use kraft_proto::controller::{
    controller_request::Body, controller_response, DescribeQuorumRequest,
};
use kraft_testkit::bench_support::{arg, ms, percentile};
use kraft_testkit::process::ProcessCluster;

const KRAFTD: &str = env!("CARGO_BIN_EXE_kraftd");
const METADATA_VERSION: i16 = 12;
const CREATE_TOPICS_VERSION: i16 = 7;
const DESCRIBE_CLUSTER_VERSION: i16 = 2;
const TOPIC_PREFIX: &str = "bench-";
/// Below this much MemAvailable the run stops rather than push the machine
/// into swap or the OOM killer.
const MIN_AVAILABLE_BYTES: u64 = 1536 << 20;

/// Why a run stopped before printing every figure.
type Stopped = String;

struct Options {
    topics: usize,
    per_topic: usize,
    batch: usize,
    in_flight: usize,
    snapshot_bytes: u64,
    snapshot_interval_ms: u64,
    timeout: Duration,
}

impl Options {
    fn partitions(&self) -> usize {
        self.topics * self.per_topic
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// A `kB` field of a /proc file (`VmRSS:`, `MemAvailable:`), in bytes.
fn proc_kb(path: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

fn rss(cluster: &ProcessCluster, id: i32) -> u64 {
    cluster
        .pid(id)
        .and_then(|pid| proc_kb(&format!("/proc/{pid}/status"), "VmRSS:"))
        .unwrap_or(0)
}

/// Whether node `id`'s process is alive (not exited, not a zombie).
fn running(cluster: &ProcessCluster, id: i32) -> bool {
    cluster.pid(id).is_some_and(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
            !s.lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'))
        })
    })
}

/// The last line node `id` logged, without colour codes.
fn last_log_line(cluster: &ProcessCluster, id: i32) -> String {
    strip_ansi(cluster.log(id).lines().last().unwrap_or_default())
}

fn check_memory() -> Result<(), Stopped> {
    match proc_kb("/proc/meminfo", "MemAvailable:") {
        Some(available) if available < MIN_AVAILABLE_BYTES => Err(format!(
            "the machine's MemAvailable fell to {} (floor {}): this size does not fit here",
            mib(available),
            mib(MIN_AVAILABLE_BYTES)
        )),
        _ => Ok(()),
    }
}

fn topic_name(i: usize) -> String {
    format!("{TOPIC_PREFIX}{i:06}")
}

/// One Metadata request for all topics: the number of benchmark partitions
/// in the answer, the answer's size in bytes, and how long the broker took
/// to answer (request sent -> whole response read, before decoding).
async fn all_metadata(client: &mut KafkaClient) -> Result<(usize, usize, Duration), String> {
    let request = MetadataRequest::default()
        .with_topics(None)
        .with_allow_auto_topic_creation(false);
    let frame = client
        .encode_request(1, METADATA_VERSION, &request)
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    client
        .write_frame(&frame)
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = client
        .read_frame()
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the broker closed the connection")?;
    let took = start.elapsed();
    let size = answer.len();
    ResponseHeader::decode(
        &mut answer,
        MetadataResponse::header_version(METADATA_VERSION),
    )
    .map_err(|e| e.to_string())?;
    let response =
        MetadataResponse::decode(&mut answer, METADATA_VERSION).map_err(|e| e.to_string())?;
    let partitions = response
        .topics
        .iter()
        .filter(|t| {
            t.name
                .as_ref()
                .is_some_and(|n| n.0.starts_with(TOPIC_PREFIX))
        })
        .map(|t| t.partitions.len())
        .sum();
    Ok((partitions, size, took))
}

/// Until every broker is registered and unfenced (a broker answers only
/// once it is unfenced itself).
async fn wait_for_brokers(cluster: &ProcessCluster, timeout: Duration) -> Result<(), Stopped> {
    let deadline = Instant::now() + timeout;
    let want = cluster.broker_ids().len();
    for id in cluster.broker_ids() {
        loop {
            if Instant::now() > deadline {
                return Err(format!(
                    "broker {id} was not up and unfenced in {timeout:?}"
                ));
            }
            if let Some(dead) = cluster.ids().into_iter().find(|id| !running(cluster, *id)) {
                return Err(format!(
                    "node {dead} exited at start-up: {}",
                    last_log_line(cluster, dead)
                ));
            }
            let attempt = tokio::time::timeout(Duration::from_secs(2), async {
                let mut client = KafkaClient::connect(cluster.addr(id)).await.ok()?;
                let request = DescribeClusterRequest::default().with_include_fenced_brokers(true);
                client.send(DESCRIBE_CLUSTER_VERSION, &request).await.ok()
            })
            .await;
            if let Ok(Some(response)) = attempt {
                let unfenced = response.brokers.iter().filter(|b| !b.is_fenced).count();
                if unfenced == want {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

struct Created {
    first_sent: Instant,
    last_answered: Instant,
    latencies: Vec<Duration>,
}

/// Creates every topic: `in_flight` workers, each on its own connection,
/// take the next batch until none is left.
async fn create_topics(cluster: &ProcessCluster, opts: &Options) -> Result<Created, Stopped> {
    let brokers: Vec<String> = cluster
        .broker_ids()
        .iter()
        .map(|id| cluster.addr(*id).to_string())
        .collect();
    let batches = opts.topics.div_ceil(opts.batch);
    let next = Arc::new(AtomicUsize::new(0));
    let first_sent = Instant::now();
    let mut workers = Vec::new();
    for w in 0..opts.in_flight {
        let addr = brokers[w % brokers.len()].clone();
        let next = next.clone();
        let (topics, batch, per_topic) = (opts.topics, opts.batch, opts.per_topic as i32);
        workers.push(tokio::spawn(async move {
            let mut client = KafkaClient::connect(&addr)
                .await
                .map_err(|e| format!("connect to {addr}: {e}"))?;
            let mut latencies = Vec::new();
            let mut last = Instant::now();
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    return Ok::<_, Stopped>((latencies, last));
                }
                check_memory()?;
                if batches >= 10 && b % (batches / 10) == 0 && b > 0 {
                    eprintln!("  ... sending batch {b} of {batches}");
                }
                let request = CreateTopicsRequest::default()
                    .with_timeout_ms(120_000)
                    .with_topics(
                        (b * batch..((b + 1) * batch).min(topics))
                            .map(|i| {
                                CreatableTopic::default()
                                    .with_name(TopicName(StrBytes::from_string(topic_name(i))))
                                    .with_num_partitions(per_topic)
                                    .with_replication_factor(3)
                            })
                            .collect(),
                    );
                let start = Instant::now();
                let response = client
                    .send(CREATE_TOPICS_VERSION, &request)
                    .await
                    .map_err(|e| format!("CreateTopics via {addr}: {e}"))?;
                last = Instant::now();
                latencies.push(last - start);
                if let Some(t) = response.topics.iter().find(|t| t.error_code != 0) {
                    let error = ResponseError::try_from_code(t.error_code);
                    return Err(format!(
                        "CreateTopics failed for {}: {error:?} {:?}",
                        t.name.0,
                        t.error_message.as_ref().map(|m| m.to_string())
                    ));
                }
            }
        }));
    }
    let mut latencies = Vec::new();
    let mut last_answered = first_sent;
    let mut failure = None;
    for worker in workers {
        match worker.await {
            Ok(Ok((l, last))) => {
                latencies.extend(l);
                last_answered = last_answered.max(last);
            }
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(e) => failure = failure.or(Some(format!("create worker panicked: {e}"))),
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(Created {
            first_sent,
            last_answered,
            latencies,
        }),
    }
}

/// Polls broker `addr` with Metadata for all topics until it shows `n`
/// partitions; returns when it first did, the response size and the last
/// call's duration. Polls no faster than the broker answers.
async fn wait_visible(
    addr: String,
    n: usize,
    timeout: Duration,
) -> Result<(Instant, usize, Duration), Stopped> {
    let deadline = Instant::now() + timeout;
    let mut client: Option<KafkaClient> = None;
    let mut seen = 0;
    loop {
        check_memory()?;
        if Instant::now() > deadline {
            return Err(format!(
                "broker {addr} showed {seen} of {n} partitions after {timeout:?}"
            ));
        }
        if client.is_none() {
            client = KafkaClient::connect(&addr).await.ok();
        }
        let mut pause = Duration::from_millis(100);
        if let Some(c) = client.as_mut() {
            match all_metadata(c).await {
                Ok((count, size, took)) if count >= n => {
                    return Ok((Instant::now(), size, took));
                }
                Ok((count, _, took)) => {
                    seen = count;
                    pause = pause.max(took);
                }
                Err(_) => client = None,
            }
        }
        tokio::time::sleep(pause).await;
    }
}

/// Checkpoint files (`<index:020>-<term:020>.checkpoint`) in a node's
/// metadata dir, as (index, size).
fn checkpoints(data_dir: &Path) -> Vec<(u64, u64)> {
    let dir = data_dir.join("__cluster_metadata-0");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(u64, u64)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".checkpoint")?;
            let (index, term) = stem.split_once('-')?;
            if index.len() != 20 || term.len() != 20 {
                return None;
            }
            term.parse::<u64>().ok()?;
            Some((index.parse().ok()?, e.metadata().ok()?.len()))
        })
        .collect();
    out.sort();
    out
}

/// Waits for a checkpoint at or past `offset` in `data_dir`; (index, size).
async fn wait_checkpoint(data_dir: PathBuf, offset: u64, timeout: Duration) -> Option<(u64, u64)> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(c) = checkpoints(&data_dir)
            .into_iter()
            .rfind(|(i, _)| *i >= offset)
        {
            return Some(c);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The quorum's leader and high watermark now.
async fn high_watermark(cluster: &ProcessCluster) -> Result<(i32, u64), Stopped> {
    let addrs = cluster.voters.values().cloned().collect::<Vec<_>>();
    let mut client = QuorumClient::new(addrs, &cluster.cluster_id);
    let response = client
        .call_leader(
            Body::DescribeQuorum(DescribeQuorumRequest {}),
            Duration::from_secs(30),
        )
        .await
        .map_err(|e| format!("DescribeQuorum: {e}"))?;
    match response.body {
        Some(controller_response::Body::DescribeQuorum(q)) => Ok((q.leader_id, q.high_watermark)),
        _ => Err("DescribeQuorum: unexpected answer".to_string()),
    }
}

/// `line` without terminal colour codes (`ESC [ ... m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What a restarting broker logs on its way back, in order.
const RESTART_MILESTONES: [(&str, &str); 3] = [
    ("metadata snapshot", "loaded a snapshot"),
    ("registered with the controller", "registered"),
    ("Kafka listener started", "unfenced, serving"),
];

/// Kills `victim` with SIGKILL, restarts it and times it until it serves
/// Metadata with all `n` partitions; prints when its log reached each of
/// [`RESTART_MILESTONES`] and which snapshot it loaded.
async fn restart(
    cluster: &mut ProcessCluster,
    victim: i32,
    n: usize,
    timeout: Duration,
) -> Result<(), Stopped> {
    let log_path = cluster
        .config_path(victim)
        .with_file_name(format!("node-{victim}.log"));
    let log_before = cluster.log(victim).len();
    cluster.kill9(victim).map_err(|e| e.to_string())?;
    cluster.spawn(victim).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let seen: Arc<Mutex<Vec<(Duration, String)>>> = Arc::default();
    let watcher = tokio::spawn({
        let seen = seen.clone();
        async move {
            let mut next = 0;
            while next < RESTART_MILESTONES.len() {
                let text = std::fs::read(&log_path).unwrap_or_default();
                let text = String::from_utf8_lossy(text.get(log_before..).unwrap_or_default());
                let found = text
                    .lines()
                    .find(|l| l.contains(RESTART_MILESTONES[next].0))
                    .map(strip_ansi);
                match found {
                    Some(line) => {
                        seen.lock()
                            .expect("milestones")
                            .push((start.elapsed(), line));
                        next += 1;
                    }
                    None => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        }
    });
    let served = wait_visible(cluster.addr(victim).to_string(), n, timeout).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    watcher.abort();
    let (at, _, _) = served?;
    println!(
        "restart: broker {victim} SIGKILLed and restarted; serves Metadata with all {n} partitions after {}; RSS then {}",
        secs(at - start),
        mib(rss(cluster, victim))
    );
    let seen = seen.lock().expect("milestones").clone();
    for ((after, line), (_, label)) in seen.iter().zip(RESTART_MILESTONES) {
        println!("  {label} after {}: {}", secs(*after), line.trim());
    }
    match seen.first() {
        Some((_, line)) if line.contains("loaded the local metadata snapshot") => {
            println!("  (it loaded its local snapshot)")
        }
        Some(_) => println!("  (it did NOT load its local snapshot)"),
        None => println!("  its log says nothing about loading a metadata snapshot"),
    }
    Ok(())
}

async fn run(cluster: &mut ProcessCluster, opts: &Options) -> Result<(), Stopped> {
    let n = opts.partitions();
    wait_for_brokers(cluster, opts.timeout.min(Duration::from_secs(120))).await?;
    let brokers = cluster.broker_ids();
    let controllers: Vec<i32> = cluster.voters.keys().copied().collect();
    let rss_before: Vec<(i32, u64)> = cluster
        .ids()
        .iter()
        .map(|id| (*id, rss(cluster, *id)))
        .collect();

    // 1. CreateTopics throughput.
    let created = create_topics(cluster, opts).await?;
    let create_time = created.last_answered - created.first_sent;
    let (leader, last_create_offset) = high_watermark(cluster).await?;
    let mut latencies = created.latencies;
    latencies.sort();
    println!(
        "create: {:.0} partitions/s committed ({n} partitions in {}; {} CreateTopics requests of {} topics, {} in flight)",
        n as f64 / create_time.as_secs_f64(),
        secs(create_time),
        latencies.len(),
        opts.batch,
        opts.in_flight
    );
    println!(
        "  CreateTopics latency: p50 {} p99 {} max {}; metadata log high watermark {last_create_offset}",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies[latencies.len() - 1])
    );

    // 2. Every broker's cache.
    let pollers: Vec<_> = brokers
        .iter()
        .map(|id| tokio::spawn(wait_visible(cluster.addr(*id).to_string(), n, opts.timeout)))
        .collect();
    let mut last_visible = created.last_answered;
    for (id, poller) in brokers.iter().zip(pollers) {
        let (at, size, took) = poller.await.map_err(|e| e.to_string())??;
        last_visible = last_visible.max(at);
        println!(
            "  broker {id}: all {n} partitions visible {} after the last create response ({} after the first request; one poll: the broker answers Metadata for all topics, {}, in {})",
            secs(at.saturating_duration_since(created.last_answered)),
            secs(at - created.first_sent),
            mib(size as u64),
            ms(took)
        );
    }
    println!(
        "visible: every broker has all {n} partitions {} after the last create response, {} after the first request",
        secs(last_visible.saturating_duration_since(created.last_answered)),
        secs(last_visible - created.first_sent)
    );

    // 3. Resident memory.
    for (id, before) in &rss_before {
        let after = rss(cluster, *id);
        let role = if controllers.contains(id) {
            "controller"
        } else {
            "broker"
        };
        println!(
            "memory: {role} {id}: VmRSS {} -> {} = {:.0} bytes per partition",
            mib(*before),
            mib(after),
            (after as f64 - *before as f64) / n as f64
        );
    }

    // 4. Snapshots.
    let interval = Duration::from_millis(opts.snapshot_interval_ms);
    let wait = interval + Duration::from_secs(30);
    match wait_checkpoint(cluster.data_dir(leader), last_create_offset, wait).await {
        Some((index, size)) => println!(
            "snapshot: controller {leader} (leader) checkpoint at offset {index}: {} = {:.1} bytes per partition (covers the last create at <= {last_create_offset}; there {} after the last create response)",
            mib(size),
            size as f64 / n as f64,
            secs(created.last_answered.elapsed())
        ),
        None => println!(
            "snapshot: controller {leader} wrote no checkpoint covering offset {last_create_offset} within {wait:?}"
        ),
    }
    for id in &brokers {
        match wait_checkpoint(cluster.data_dir(*id), last_create_offset, wait).await {
            Some((index, size)) => println!(
                "  broker {id} local snapshot at offset {index}: {} = {:.1} bytes per partition",
                mib(size),
                size as f64 / n as f64
            ),
            None => println!(
                "  broker {id} has no local snapshot covering offset {last_create_offset} within {wait:?} (newest: {:?})",
                checkpoints(&cluster.data_dir(*id)).last()
            ),
        }
    }

    // 5. Restart from the local snapshot.
    let victim = brokers[brokers.len() - 1];
    restart(cluster, victim, n, opts.timeout).await
}

/// Starts the 3 controllers and 3 brokers.
fn start_cluster(extra: &[(&str, &str)]) -> ProcessCluster {
    ProcessCluster::start_with_brokers(Path::new(KRAFTD), 3, 3, extra).expect("start cluster")
}

fn main() {
    let opts = Options {
        topics: arg("--topics", 1000) as usize,
        per_topic: arg("--partitions-per-topic", 100) as usize,
        batch: arg("--batch", 50).max(1) as usize,
        in_flight: arg("--in-flight", 4).max(1) as usize,
        snapshot_bytes: arg("--snapshot-bytes", 1 << 20),
        snapshot_interval_ms: arg("--snapshot-interval-ms", 10_000),
        timeout: Duration::from_secs(arg("--timeout-s", 900)),
    };
    let snapshot_bytes = opts.snapshot_bytes.to_string();
    let snapshot_interval = opts.snapshot_interval_ms.to_string();
    let extra = [
        (
            "metadata.log.max.record.bytes.between.snapshots",
            snapshot_bytes.as_str(),
        ),
        (
            "metadata.log.max.snapshot.interval.ms",
            snapshot_interval.as_str(),
        ),
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = runtime.block_on(async {
        let mut cluster = start_cluster(&extra);
        println!(
            "kraft metadata benchmark: 3 controllers + 3 brokers, {} topics x {} partitions = {} partitions (RF 3); snapshots every {} bytes or {} ms; {}",
            opts.topics,
            opts.per_topic,
            opts.partitions(),
            opts.snapshot_bytes,
            opts.snapshot_interval_ms,
            KRAFTD
        );
        run(&mut cluster, &opts).await
        // The cluster's processes are killed here, before the exit code.
    });
    if let Err(reason) = outcome {
        println!("stopped: {reason}");
        std::process::exit(1);
    }
}
