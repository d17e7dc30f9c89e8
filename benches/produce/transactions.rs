//! `--transactions [--txns N]`: librdkafka's transactional producer
//! (`init_transactions`, then `begin_transaction`, 100 messages,
//! `commit_transaction`, over and over) at replication factor 1 on one
//! combined `kraftd` (`transaction.state.log.replication.factor=1`), then at
//! replication factor 3 on 1 controller and 3 brokers as separate processes
//! (`__transaction_state` at Kafka's defaults, RF 3 and min.isr 2; the
//! topic with `min.insync.replicas=2`).
//!
//! Each transaction's 100 messages go round-robin to the topic's
//! [`PARTITIONS`] partitions, so each commit writes a marker to each. Per
//! cluster it reports transactional throughput (messages and transactions
//! per second over the N measured transactions, one producer, one
//! transaction at a time) and the commit latency p50/p99: the time
//! `commit_transaction` takes once the transaction's messages are
//! acknowledged (their delivery reports polled for), i.e. EndTxn until the
//! coordinator has stored PrepareCommit. `--retry-backoff-ms` sets
//! librdkafka's `retry.backoff.ms` (its default, 100). One transaction before the clock starts finds the
//! coordinator and the leaders.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use kraft_testkit::bench_support::{arg, ms, percentile};
use kraft_testkit::process::ProcessCluster;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::client::{client_config, ClientLog, Deliveries};
use crate::cpu::{ticks_per_second, CpuUse, CpuWindow};
use crate::report::{complaints, size_name};
use crate::topics::{create_topics, wait_healthy, TopicSpec};
use crate::{Options, KRAFTD, PARTITIONS, STALL};

/// Messages per transaction.
const TXN_MESSAGES: u64 = 100;

/// One cluster's figures.
struct TxnRow {
    setup: String,
    transactions: u64,
    elapsed: Duration,
    /// Sorted `commit_transaction` times.
    commits: Vec<Duration>,
    /// Sorted send -> delivery report latencies of the messages.
    acks: Vec<Duration>,
    cpu: CpuUse,
}

impl TxnRow {
    fn header() {
        println!(
            "{:<34} {:>6} {:>9} {:>8} {:>10} {:>10} {:>10} {:>8} {:>8}",
            "setup",
            "txns",
            "msgs/s",
            "txns/s",
            "ack p50",
            "commit p50",
            "commit p99",
            "client",
            "broker"
        );
    }

    fn print(&self) {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        println!(
            "{:<34} {:>6} {:>9.0} {:>8.1} {:>10} {:>10} {:>10} {:>7.0}% {:>7.0}%",
            self.setup,
            self.transactions,
            (self.transactions * TXN_MESSAGES) as f64 / secs,
            self.transactions as f64 / secs,
            ms(percentile(&self.acks, 0.5)),
            ms(percentile(&self.commits, 0.5)),
            ms(percentile(&self.commits, 0.99)),
            self.cpu.client * 100.0,
            self.cpu.broker * 100.0,
        );
    }
}

/// A node that exited on its own.
fn check_alive(cluster: &mut ProcessCluster) -> Result<()> {
    for id in cluster.ids() {
        if let Some(status) = cluster.exit_status(id)? {
            bail!("node {id} exited ({status})");
        }
    }
    Ok(())
}

pub fn run(options: &Options) -> Result<()> {
    let txns = arg("--txns", 1000).max(1);
    let size = options.latency_bytes;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "kraft transactions benchmark: {TXN_MESSAGES} messages of {} per transaction over \
         {PARTITIONS} partitions, {txns} transactions per setup, 1 transactional producer; \
         librdkafka {}, linger.ms={}; {cores} cores",
        size_name(size),
        rdkafka::util::get_rdkafka_version().1,
        options.linger_ms
    );
    TxnRow::header();
    let mut rows = Vec::new();
    let single = [
        ("transaction.state.log.replication.factor", "1"),
        ("transaction.state.log.min.isr", "1"),
    ];
    let mut cluster = ProcessCluster::start_combined(Path::new(KRAFTD), &single)?;
    let outcome = measure(
        &mut cluster,
        "RF 1, 1 combined kraftd",
        1,
        txns,
        size,
        options,
    );
    report(&cluster, outcome, &mut rows);
    drop(cluster);

    let mut cluster = ProcessCluster::start_with_brokers(Path::new(KRAFTD), 1, 3, &[])?;
    let outcome = measure(
        &mut cluster,
        "RF 3 (min.isr 2), 1 ctrl + 3 brokers",
        3,
        txns,
        size,
        options,
    );
    report(&cluster, outcome, &mut rows);
    drop(cluster);

    println!();
    TxnRow::header();
    for row in &rows {
        row.print();
    }
    println!(
        "msgs/s, txns/s: over the measured transactions, begin to commit, one at a time. \
         ack: send -> delivery report. \
         commit: commit_transaction() after the transaction's messages were acknowledged. \
         client/broker: CPU time over wall time, broker = every broker process summed \
         (100% = one of {cores} cores busy)."
    );
    Ok(())
}

/// Prints a row (kept for the summary) or why the setup failed, and the
/// brokers' complaints.
fn report(cluster: &ProcessCluster, outcome: Result<TxnRow>, rows: &mut Vec<TxnRow>) {
    match outcome {
        Ok(row) => {
            row.print();
            rows.push(row);
        }
        Err(e) => println!("FAILED: {e:#}"),
    }
    let counts: Vec<String> = cluster
        .ids()
        .into_iter()
        .map(|id| format!("node {id}: {}", complaints(&cluster.log(id)).len()))
        .collect();
    println!("  broker logs: WARN/ERROR lines {}", counts.join(", "));
}

fn measure(
    cluster: &mut ProcessCluster,
    setup: &str,
    replication: i32,
    txns: u64,
    size: usize,
    options: &Options,
) -> Result<TxnRow> {
    let bootstrap = cluster.bootstrap_servers();
    let topic = format!("txn-rf{replication}");
    let mut spec = TopicSpec::new(topic.as_str(), PARTITIONS, replication);
    if replication > 1 {
        spec.configs.push(("min.insync.replicas", "2"));
    }
    create_topics(&bootstrap, &[spec], &mut || check_alive(cluster))?;
    let metadata: BaseConsumer<ClientLog> =
        client_config(&bootstrap).create_with_context(ClientLog::default())?;
    wait_healthy(metadata.client(), &[topic.as_str()], STALL)?;

    let origin = Instant::now();
    let producer: BaseProducer<Deliveries> = client_config(&bootstrap)
        .set("transactional.id", format!("bench-{topic}"))
        .set("linger.ms", options.linger_ms.to_string())
        .set("message.timeout.ms", STALL.as_millis().to_string())
        .set("transaction.timeout.ms", "60000")
        .set(
            "retry.backoff.ms",
            arg("--retry-backoff-ms", 100).to_string(),
        )
        .create_with_context(Deliveries::new(origin))?;
    producer.init_transactions(STALL)?;
    let payload = vec![b't'; size];
    let mut commits = Vec::with_capacity(txns as usize);
    // The warm-up transaction: coordinator, leaders, AddPartitionsToTxn.
    transaction(&producer, &topic, &payload, TXN_MESSAGES)?;
    producer.context().reset();
    let broker_pids: Vec<u32> = cluster
        .broker_ids()
        .iter()
        .filter_map(|id| cluster.pid(*id))
        .collect();
    let window = CpuWindow::open(&broker_pids);
    let start = Instant::now();
    for i in 1..=txns {
        commits.push(transaction(&producer, &topic, &payload, i * TXN_MESSAGES)?);
    }
    let elapsed = start.elapsed();
    let cpu = window.close(ticks_per_second());
    check_alive(cluster)?;
    let context = producer.context();
    let acked = context.acked.load(Ordering::Relaxed);
    if acked != txns * TXN_MESSAGES {
        let error = context.first_error.lock().expect("first error").clone();
        bail!(
            "{acked} of {} messages acknowledged ({error:?})",
            txns * TXN_MESSAGES
        );
    }
    commits.sort();
    let mut acks = std::mem::take(&mut *context.latencies.lock().expect("latencies"));
    acks.sort();
    Ok(TxnRow {
        setup: setup.to_string(),
        transactions: txns,
        elapsed,
        commits,
        acks,
        cpu,
    })
}

/// One transaction of [`TXN_MESSAGES`] messages round-robin over the
/// partitions, waiting for their delivery reports until `target` in all
/// (counted since the last reset); returns how long `commit_transaction`
/// took.
fn transaction(
    producer: &BaseProducer<Deliveries>,
    topic: &str,
    payload: &[u8],
    target: u64,
) -> Result<Duration> {
    producer.begin_transaction()?;
    for i in 0..TXN_MESSAGES {
        let partition = (i % PARTITIONS as u64) as i32;
        let sent_at = producer.context().origin.elapsed().as_nanos() as usize;
        producer
            .send::<[u8], [u8]>(
                BaseRecord::with_opaque_to(topic, sent_at)
                    .payload(payload)
                    .partition(partition),
            )
            .map_err(|(e, _)| anyhow!("send: {e}"))?;
    }
    // Wait for the delivery reports by polling in 1 ms steps: rdkafka's
    // `flush` (and `poll`) run out their whole timeout, 100 ms steps for
    // `flush`, which would be most of each transaction.
    let context = producer.context();
    let deadline = Instant::now() + STALL;
    while context.acked.load(Ordering::Relaxed) + context.failed.load(Ordering::Relaxed) < target {
        if Instant::now() > deadline {
            bail!("no delivery reports for {STALL:?}");
        }
        producer.poll(Duration::from_millis(1));
    }
    let start = Instant::now();
    producer.commit_transaction(STALL)?;
    Ok(start.elapsed())
}
