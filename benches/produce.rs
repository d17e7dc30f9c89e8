//! Benchmark of Produce and Fetch through an unmodified Kafka client
//! (librdkafka, via `rdkafka`) against one combined `kraftd` process
//! (`process.roles=broker,controller`, release build, default settings).
//! Prints figures; asserts nothing.
//!
//! - produce throughput, 100 B and 1 KiB payloads, acks=all: MB/s and
//!   msgs/s from the first send to the last delivery report;
//! - consume throughput: a `BaseConsumer` assigned every partition from the
//!   beginning (no group) reads back what was produced; its note gives the
//!   wait for the first message and any waits of 100 ms or more after it;
//! - produce latency (send -> delivery report) with acks=1 and acks=all, at
//!   full load and at a fixed rate paced by the sender: p50 and p99 (at
//!   full load it is mostly time queued in the client, which holds up to
//!   librdkafka's default 100,000 messages);
//! - for every phase, the CPU time of this process (the client) and of the
//!   broker process over the phase's wall time, so the reader sees which
//!   side saturates the machine's cores.
//!
//! Run with `scripts/bench-produce [--messages N] [--rate R]
//! [--rate-seconds S] [--producers P] [--linger-ms L] [--latency-bytes B]`:
//! N messages per throughput and full-load run (200000), R msgs/s for the
//! paced runs (10000) lasting S seconds (5), P producer instances on their
//! own threads splitting the messages (1), librdkafka's `linger.ms` (5), and
//! the payload of the latency runs (100). `KRAFT_KEEP_LOGS=1` keeps the
//! broker's directory and log.

#![forbid(unsafe_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use kraft_testkit::bench_support::{arg, ms, percentile};
use kraft_testkit::process::free_ports;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use tempfile::TempDir;

const KRAFTD: &str = env!("CARGO_BIN_EXE_kraftd");
const PARTITIONS: i32 = 3;
/// How long a send may keep finding the client's queue full, a flush may
/// wait, or a consumer may go without a message, before the phase fails.
const STALL: Duration = Duration::from_secs(60);

struct Options {
    messages: u64,
    rate: u64,
    rate_seconds: u64,
    producers: u64,
    linger_ms: u64,
    latency_bytes: usize,
}

/// One `kraftd` with both roles, a PLAINTEXT and a CONTROLLER listener, its
/// data and stderr in a temp dir. Killed on drop.
struct Node {
    dir: TempDir,
    child: Child,
    bootstrap: String,
}

impl Node {
    fn start(kraftd: &Path) -> Result<Node> {
        let dir = tempfile::Builder::new().prefix("kraft-produce").tempdir()?;
        let [kafka, controller] = free_ports(2)?[..] else {
            bail!("two free ports");
        };
        let config = dir.path().join("server.properties");
        std::fs::write(
            &config,
            format!(
                "process.roles=broker,controller\nnode.id=1\n\
                 controller.quorum.voters=1@127.0.0.1:{controller}\n\
                 listeners=PLAINTEXT://127.0.0.1:{kafka},CONTROLLER://127.0.0.1:{controller}\n\
                 controller.listener.names=CONTROLLER\nlog.dirs={}\n",
                dir.path().join("data").display()
            ),
        )?;
        let uuid = Command::new(kraftd).arg("random-uuid").output()?;
        let cluster_id = String::from_utf8(uuid.stdout)?.trim().to_string();
        let format = Command::new(kraftd)
            // `=`: an id may start with '-' (base64url), which clap would
            // take for a flag after a separate `--cluster-id`.
            .arg("format")
            .arg(format!("--cluster-id={cluster_id}"))
            .arg("--config")
            .arg(&config)
            .output()?;
        if !format.status.success() {
            bail!("kraftd format: {}", String::from_utf8_lossy(&format.stderr));
        }
        let child = Command::new(kraftd)
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info,raft=warn")
            .stdout(Stdio::null())
            .stderr(File::create(dir.path().join("kraftd.log"))?)
            .spawn()
            .with_context(|| format!("spawning {}", kraftd.display()))?;
        let bootstrap = format!("127.0.0.1:{kafka}");
        Ok(Node {
            dir,
            child,
            bootstrap,
        })
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("kraftd.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Broker log lines at WARN or ERROR, and panics.
    fn complaints(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("panicked"))
            .map(str::to_string)
            .collect()
    }

    /// How the process ended, if it has.
    fn exit(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(status) => status.map(|s| s.to_string()),
            Err(e) => Some(format!("unknown ({e})")),
        }
    }

    fn check_alive(&mut self) -> Result<()> {
        match self.exit() {
            Some(exit) => bail!("kraftd exited ({exit}):\n{}", self.log()),
            None => Ok(()),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("KRAFT_KEEP_LOGS").is_some() {
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("a temp dir"));
            eprintln!("kept the broker's directory: {}", dir.keep().display());
        }
    }
}

/// utime + stime, in clock ticks, from a `/proc/.../stat` file.
fn cpu_ticks(stat: &str) -> u64 {
    let text = std::fs::read_to_string(stat).unwrap_or_default();
    // Fields after the parenthesised command name start at field 3.
    let rest = text.rfind(')').map_or("", |i| &text[i + 1..]);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    field(14).unwrap_or(0) + field(15).unwrap_or(0)
}

fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU seconds per wall second of the client (this process, every thread)
/// and of the broker over one phase: 1.0 is one core kept busy.
#[derive(Clone, Copy, Default)]
struct CpuUse {
    client: f64,
    broker: f64,
}

struct CpuWindow {
    broker_stat: String,
    start: Instant,
    client: u64,
    broker: u64,
}

impl CpuWindow {
    fn open(broker_pid: u32) -> CpuWindow {
        let broker_stat = format!("/proc/{broker_pid}/stat");
        CpuWindow {
            start: Instant::now(),
            client: cpu_ticks("/proc/self/stat"),
            broker: cpu_ticks(&broker_stat),
            broker_stat,
        }
    }

    fn close(&self, ticks_per_second: f64) -> CpuUse {
        let wall = self.start.elapsed().as_secs_f64() * ticks_per_second;
        CpuUse {
            client: (cpu_ticks("/proc/self/stat") - self.client) as f64 / wall,
            broker: cpu_ticks(&self.broker_stat).saturating_sub(self.broker) as f64 / wall,
        }
    }
}

/// librdkafka's warnings and errors, printed (the first few) rather than
/// lost: `rdkafka` sends them to the `log` crate, which has no logger here.
#[derive(Default)]
struct ClientLog {
    lines: AtomicU64,
}

impl ClientLog {
    fn print(&self, line: String) {
        if self.lines.fetch_add(1, Ordering::Relaxed) < 20 {
            eprintln!("  librdkafka: {line}");
        }
    }
}

impl ClientContext for ClientLog {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        if (level as i32) <= RDKafkaLogLevel::Warning as i32 {
            self.print(format!("{level:?} {fac} {message}"));
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.print(format!("error {error}: {reason}"));
    }
}

impl ConsumerContext for ClientLog {}

/// A producer's context: counts delivery reports and records each
/// message's latency. The delivery opaque is the send time, in nanoseconds
/// since `origin`.
struct Deliveries {
    origin: Instant,
    log: ClientLog,
    acked: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// Nanoseconds since `origin` of the last delivery report.
    last: AtomicU64,
    latencies: Mutex<Vec<Duration>>,
}

impl ClientContext for Deliveries {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.log.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason);
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_at: usize) {
        let now = self.origin.elapsed();
        self.last
            .fetch_max(now.as_nanos() as u64, Ordering::Relaxed);
        match result {
            Ok(_) => {
                self.acked.fetch_add(1, Ordering::Relaxed);
                let latency = now.saturating_sub(Duration::from_nanos(sent_at as u64));
                self.latencies.lock().expect("latencies").push(latency);
            }
            Err((error, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().expect("first error");
                first.get_or_insert_with(|| error.to_string());
            }
        }
    }
}

/// One line of the final table.
struct Row {
    phase: String,
    messages: u64,
    bytes: u64,
    /// Produce: first send -> last delivery report; consume: assign -> last
    /// message.
    elapsed: Duration,
    /// Sorted send -> delivery report latencies (empty for consume).
    latencies: Vec<Duration>,
    cpu: CpuUse,
    note: String,
}

impl Row {
    fn header() {
        println!(
            "{:<33} {:>8} {:>8} {:>9} {:>10} {:>10} {:>8} {:>8}",
            "phase", "msgs", "MB/s", "msgs/s", "p50", "p99", "client", "broker"
        );
    }

    fn print(&self) {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let (p50, p99) = if self.latencies.is_empty() {
            ("-".to_string(), "-".to_string())
        } else {
            (
                ms(percentile(&self.latencies, 0.5)),
                ms(percentile(&self.latencies, 0.99)),
            )
        };
        println!(
            "{:<33} {:>8} {:>8.1} {:>9.0} {:>10} {:>10} {:>7.0}% {:>7.0}%  {}",
            self.phase,
            self.messages,
            self.bytes as f64 / 1e6 / secs,
            self.messages as f64 / secs,
            p50,
            p99,
            self.cpu.client * 100.0,
            self.cpu.broker * 100.0,
            self.note
        );
    }
}

struct Run<'a> {
    options: &'a Options,
    bootstrap: &'a str,
    broker_pid: u32,
    ticks: f64,
}

impl Run<'_> {
    fn producer(&self, acks: &str, origin: Instant) -> Result<BaseProducer<Deliveries>> {
        let context = Deliveries {
            origin,
            log: ClientLog::default(),
            acked: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            first_error: Mutex::new(None),
            last: AtomicU64::new(0),
            latencies: Mutex::new(Vec::new()),
        };
        Ok(ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap)
            .set("broker.address.family", "v4")
            .set("acks", acks)
            .set("linger.ms", self.options.linger_ms.to_string())
            .set("message.timeout.ms", STALL.as_millis().to_string())
            .create_with_context(context)?)
    }

    /// `count` messages of `size` bytes to `topic`, split over the
    /// producers; as fast as the client's queue allows, or `rate` msgs/s in
    /// all.
    fn produce(
        &self,
        phase: String,
        topic: &str,
        size: usize,
        count: u64,
        acks: &str,
        rate: Option<u64>,
    ) -> Result<Row> {
        let origin = Instant::now();
        let n = self.options.producers.max(1);
        let producers = (0..n)
            .map(|_| self.producer(acks, origin))
            .collect::<Result<Vec<_>>>()?;
        // Connect and learn the partition leaders before the clock starts.
        for p in &producers {
            p.client()
                .fetch_metadata(Some(topic), Duration::from_secs(10))?;
        }
        let payload = vec![b'k'; size];
        let barrier = Barrier::new(n as usize);
        let window = CpuWindow::open(self.broker_pid);
        let firsts = std::thread::scope(|s| {
            let handles: Vec<_> = producers
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let share = count / n + u64::from((i as u64) < count % n);
                    let rate = rate.map(|r| r as f64 / n as f64);
                    let (barrier, payload) = (&barrier, &payload);
                    s.spawn(move || {
                        barrier.wait();
                        send_all(p, topic, payload, share, rate)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .map_err(|_| anyhow!("a producer thread panicked"))?
                })
                .collect::<Result<Vec<Instant>>>()
        })?;
        let cpu = window.close(self.ticks);
        let first = firsts.into_iter().min().unwrap_or(origin);
        let mut row = Row {
            phase,
            messages: 0,
            bytes: 0,
            elapsed: Duration::ZERO,
            latencies: Vec::new(),
            cpu,
            note: String::new(),
        };
        let (mut last, mut failed, mut first_error) = (Duration::ZERO, 0, None);
        for p in &producers {
            let d = p.context();
            row.messages += d.acked.load(Ordering::Relaxed);
            failed += d.failed.load(Ordering::Relaxed);
            last = last.max(Duration::from_nanos(d.last.load(Ordering::Relaxed)));
            row.latencies
                .append(&mut d.latencies.lock().expect("latencies"));
            let error = d.first_error.lock().expect("first error").take();
            first_error = first_error.or(error);
        }
        if let Some(e) = first_error {
            row.note = format!("{failed} failed, first: {e}");
        }
        row.bytes = row.messages * size as u64;
        row.elapsed = (origin + last).saturating_duration_since(first);
        row.latencies.sort();
        Ok(row)
    }

    /// Reads `expected` messages of `topic` from the beginning of every
    /// partition.
    fn consume(&self, phase: String, topic: &str, expected: u64) -> Result<Row> {
        let consumer: BaseConsumer<ClientLog> = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap)
            .set("broker.address.family", "v4")
            .set("group.id", "kraft-bench-unused")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .create_with_context(ClientLog::default())?;
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let partitions = metadata
            .topics()
            .first()
            .map_or(0, |t| t.partitions().len());
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions as i32 {
            assignment.add_partition_offset(topic, p, Offset::Beginning)?;
        }
        let window = CpuWindow::open(self.broker_pid);
        let start = Instant::now();
        consumer.assign(&assignment)?;
        let (mut messages, mut bytes, mut errors) = (0u64, 0u64, 0u64);
        let mut first_error = None;
        let mut last = start;
        // The wait for the first message, and waits of 100 ms or more
        // between two: time in which neither side may have been busy.
        let (mut first, mut pauses, mut paused) = (Duration::ZERO, 0, Duration::ZERO);
        while messages < expected {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    messages += 1;
                    bytes += m.payload_len() as u64;
                    let now = Instant::now();
                    if messages == 1 {
                        first = now - start;
                    } else if now - last >= Duration::from_millis(100) {
                        pauses += 1;
                        paused += now - last;
                    }
                    last = now;
                }
                Some(Err(e)) => {
                    if errors < 5 {
                        eprintln!("  consumer error: {e}");
                    }
                    errors += 1;
                    first_error.get_or_insert_with(|| e.to_string());
                }
                None if last.elapsed() > STALL => {
                    break;
                }
                None => {}
            }
        }
        let mut note = String::new();
        if messages < expected {
            note = format!("STALLED: {messages} of {expected} read; ");
        }
        if first >= Duration::from_millis(100) {
            note.push_str(&format!("first message after {}; ", ms(first)));
        }
        if pauses > 0 {
            note.push_str(&format!(
                "{pauses} pauses >= 100 ms, {} in all; ",
                ms(paused)
            ));
        }
        if let Some(e) = first_error {
            note.push_str(&format!("{errors} errors, first: {e}"));
        }
        Ok(Row {
            phase,
            messages,
            bytes,
            elapsed: last - start,
            latencies: Vec::new(),
            cpu: window.close(self.ticks),
            note,
        })
    }
}

/// Sends `count` messages as fast as the client's queue allows (or at
/// `rate` msgs/s, each when it falls due), serving delivery reports between
/// sends, then waits for the last report. Returns when the first message was
/// sent. Waits sleep rather than spin in `poll`, which rounds its timeout
/// down to whole milliseconds, so the client's CPU time is work done.
fn send_all(
    producer: &BaseProducer<Deliveries>,
    topic: &str,
    payload: &[u8],
    count: u64,
    rate: Option<f64>,
) -> Result<Instant> {
    let origin = producer.context().origin;
    let start = Instant::now();
    let mut sent = 0;
    while sent < count {
        if let Some(rate) = rate {
            let next = start + Duration::from_secs_f64(sent as f64 / rate);
            if Instant::now() < next {
                producer.poll(Duration::ZERO);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
                continue;
            }
        }
        let mut full_since = None;
        loop {
            let sent_at = origin.elapsed().as_nanos() as usize;
            let record = BaseRecord::with_opaque_to(topic, sent_at).payload(payload);
            match producer.send::<[u8], [u8]>(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    let since = *full_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > STALL {
                        bail!("the client's queue stayed full for {STALL:?}");
                    }
                    producer.poll(Duration::ZERO);
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err((e, _)) => bail!("send: {e}"),
            }
        }
        sent += 1;
        // A poll after every send cost about a quarter of the 100 B
        // throughput; a report now waits at most 64 sends (~100 us).
        if sent % 64 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    // `in_flight_count` counts delivery reports not yet served, too.
    let deadline = Instant::now() + STALL + Duration::from_secs(30);
    while producer.in_flight_count() > 0 {
        if Instant::now() > deadline {
            bail!(
                "{} messages still undelivered after {STALL:?}",
                producer.in_flight_count()
            );
        }
        producer.poll(Duration::from_millis(10));
    }
    Ok(start)
}

/// Creates the topics once the broker takes CreateTopics (it must first be
/// unfenced), then waits until each partition has a leader.
fn create_topics(node: &mut Node, topics: &[&str]) -> Result<()> {
    let admin: AdminClient<ClientLog> = ClientConfig::new()
        .set("bootstrap.servers", &node.bootstrap)
        .set("broker.address.family", "v4")
        .create_with_context(ClientLog::default())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let deadline = Instant::now() + STALL;
    for topic in topics {
        let new = NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1));
        loop {
            node.check_alive()?;
            let result = runtime.block_on(admin.create_topics([&new], &options));
            let outcome = match result.map(|mut r| r.pop()) {
                Ok(Some(Ok(_))) => Ok(()),
                Ok(Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists)))) => Ok(()),
                Ok(Some(Err((_, code)))) => Err(code.to_string()),
                Ok(None) => Err("no result".to_string()),
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(()) => break,
                Err(e) if Instant::now() > deadline => bail!("creating {topic}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
        loop {
            let metadata = admin
                .inner()
                .fetch_metadata(Some(topic), Duration::from_secs(10))?;
            let led = metadata.topics().first().is_some_and(|t| {
                t.partitions().len() == PARTITIONS as usize
                    && t.partitions().iter().all(|p| p.leader() >= 0)
            });
            if led {
                break;
            }
            if Instant::now() > deadline {
                bail!("{topic}'s partitions have no leaders after {STALL:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

fn size_name(bytes: usize) -> String {
    if bytes % 1024 == 0 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

fn main() -> Result<()> {
    let options = Options {
        messages: arg("--messages", 200_000),
        rate: arg("--rate", 10_000),
        rate_seconds: arg("--rate-seconds", 5),
        producers: arg("--producers", 1).max(1),
        linger_ms: arg("--linger-ms", 5),
        latency_bytes: arg("--latency-bytes", 100) as usize,
    };
    let sizes = [100usize, 1024];
    let mut node = Node::start(Path::new(KRAFTD))?;
    let topics: Vec<String> = sizes
        .iter()
        .map(|s| format!("bench-{s}"))
        .chain(["bench-latency".to_string()])
        .collect();
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    create_topics(&mut node, &names)?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "kraft produce benchmark: 1 combined kraftd (broker,controller), {KRAFTD}\n\
         topics of {PARTITIONS} partitions, RF 1; librdkafka {}; {} producer(s), linger.ms={}; {cores} cores",
        rdkafka::util::get_rdkafka_version().1,
        options.producers,
        options.linger_ms
    );
    let bootstrap = node.bootstrap.clone();
    let run = Run {
        options: &options,
        bootstrap: &bootstrap,
        broker_pid: node.child.id(),
        ticks: ticks_per_second(),
    };
    Row::header();
    let mut rows = Vec::new();
    let mut record = |row: Result<Row>, phase: &str| -> u64 {
        match row {
            Ok(row) => {
                row.print();
                let delivered = row.messages;
                rows.push(row);
                delivered
            }
            Err(e) => {
                println!("{phase}: FAILED: {e:#}");
                0
            }
        }
    };
    let latency = options.latency_bytes;
    let paced = options.rate * options.rate_seconds;
    let mut broker_exit = None;
    'phases: {
        for (size, topic) in sizes.iter().zip(&topics) {
            let name = size_name(*size);
            let phase = format!("produce {name} acks=all");
            let row = run.produce(phase.clone(), topic, *size, options.messages, "all", None);
            let delivered = record(row, &phase);
            broker_exit = node.exit();
            if broker_exit.is_some() {
                break 'phases;
            }
            if delivered > 0 {
                let phase = format!("consume {name}");
                record(run.consume(phase.clone(), topic, delivered), &phase);
            }
        }
        for (rate, count) in [(None, options.messages), (Some(options.rate), paced)] {
            for acks in ["1", "all"] {
                let load = rate.map_or("full load".to_string(), |r| format!("{r}/s"));
                let phase = format!("latency {} acks={acks} {load}", size_name(latency));
                let row = run.produce(phase.clone(), "bench-latency", latency, count, acks, rate);
                record(row, &phase);
                broker_exit = node.exit();
                if broker_exit.is_some() {
                    break 'phases;
                }
            }
        }
    }
    let complaints = node.complaints();
    println!();
    Row::header();
    for row in &rows {
        row.print();
    }
    println!(
        "MB/s: 10^6 payload bytes per second. p50/p99: send -> delivery report. \
         client/broker: CPU time over the phase's wall time (100% = one of {cores} cores busy)."
    );
    println!(
        "broker log: {} WARN/ERROR lines ({})",
        complaints.len(),
        node.log_path().display()
    );
    for line in complaints.iter().take(10) {
        println!("  {line}");
    }
    if let Some(exit) = broker_exit {
        println!("kraftd EXITED ({exit}) during the run; the last lines of its log:");
        let log = node.log();
        let lines: Vec<&str> = log.lines().collect();
        for line in &lines[lines.len().saturating_sub(30)..] {
            println!("  {line}");
        }
    }
    Ok(())
}
