//! The `--replication` mode: 1 controller and 3 brokers as separate
//! `kraftd` processes (`ProcessCluster`), with short session and ISR
//! settings. On one cluster, in one run:
//!
//! - acks=all produce throughput and latency (full load, then paced) and
//!   consume throughput, for topics of replication factor 3 with
//!   `min.insync.replicas=2` next to topics of replication factor 1, all of
//!   [`PARTITIONS`] partitions, rows alternating so both see the same
//!   machine;
//! - then [`failover`]: SIGKILL of a partition leader until the first
//!   acks=all produce through the new leader, over `--kills` kills.
//!
//! The broker column of the table is the CPU of the three broker processes
//! summed (the controller is left out).

use std::path::Path;

use anyhow::{bail, Result};
use kraft_testkit::process::ProcessCluster;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::client::{client_config, ClientLog};
use crate::cpu::ticks_per_second;
use crate::failover::{self, FAILOVER_PRODUCER};
use crate::phases::Run;
use crate::report::{complaints, print_tail, record, size_name, Row};
use crate::topics::{create_topics, wait_healthy, TopicSpec};
use crate::{Options, KRAFTD, PARTITIONS, STALL};

/// Broker settings, written to every node's `server.properties`.
pub struct Settings {
    pub kills: usize,
    /// `broker.session.timeout.ms`: how long the controller waits for a
    /// heartbeat before it fences a broker and moves its leaderships.
    pub session_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms`.
    pub heartbeat_ms: u64,
    /// `replica.lag.time.max.ms`.
    pub replica_lag_ms: u64,
}

const REPLICATED: i32 = 3;
const FAILOVER_TOPIC: &str = "rf3-failover";

/// A node that exited on its own, with the end of its log.
fn check_alive(cluster: &mut ProcessCluster) -> Result<()> {
    for id in cluster.ids() {
        if let Some(status) = cluster.exit_status(id)? {
            println!("node {id} EXITED ({status}); the last lines of its log:");
            print_tail(&cluster.log(id), 30);
            bail!("node {id} exited ({status})");
        }
    }
    Ok(())
}

fn topic_name(replication: i32, what: &str) -> String {
    format!("rf{replication}-{what}")
}

pub fn run(options: &Options, settings: &Settings) -> Result<()> {
    let extra = [
        (
            "broker.session.timeout.ms",
            settings.session_timeout_ms.to_string(),
        ),
        (
            "broker.heartbeat.interval.ms",
            settings.heartbeat_ms.to_string(),
        ),
        (
            "replica.lag.time.max.ms",
            settings.replica_lag_ms.to_string(),
        ),
    ];
    let extra_refs: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut cluster = ProcessCluster::start_with_brokers(Path::new(KRAFTD), 1, 3, &extra_refs)?;
    let bootstrap = cluster.bootstrap_servers();
    let sizes = [100usize, 1024];
    let factors = [1, REPLICATED];
    let mut specs = Vec::new();
    for what in sizes
        .iter()
        .map(|s| s.to_string())
        .chain(["latency".to_string()])
    {
        for rf in factors {
            specs.push(TopicSpec::new(topic_name(rf, &what), PARTITIONS, rf));
        }
    }
    specs.push(TopicSpec::new(FAILOVER_TOPIC, 1, REPLICATED));
    for spec in &mut specs {
        if spec.replication == REPLICATED {
            spec.configs.push(("min.insync.replicas", "2"));
        }
    }
    create_topics(&bootstrap, &specs, &mut || check_alive(&mut cluster))?;
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let metadata: BaseConsumer<ClientLog> =
        client_config(&bootstrap).create_with_context(ClientLog::default())?;
    wait_healthy(metadata.client(), &names, STALL)?;

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let brokers = cluster.broker_ids();
    println!(
        "kraft produce benchmark, replication: 1 controller (node 1) and 3 brokers (nodes {brokers:?}), \
         separate kraftd processes, {KRAFTD}\n\
         broker settings: {}\n\
         topics of {PARTITIONS} partitions, RF 1 and RF 3 (min.insync.replicas=2), acks=all; \
         librdkafka {}; {} producer(s), linger.ms={}; {cores} cores",
        extra
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", "),
        rdkafka::util::get_rdkafka_version().1,
        options.producers,
        options.linger_ms
    );
    let broker_pids: Vec<u32> = brokers.iter().filter_map(|id| cluster.pid(*id)).collect();
    let run = Run {
        options,
        bootstrap: &bootstrap,
        broker_pids,
        ticks: ticks_per_second(),
        settings: &[],
    };
    Row::header();
    let mut rows = Vec::new();
    let latency = options.latency_bytes;
    let paced = options.rate * options.rate_seconds;
    let mut healthy = true;
    'phases: {
        for size in sizes {
            for rf in factors {
                let topic = topic_name(rf, &size.to_string());
                let name = size_name(size);
                let phase = format!("produce {name} RF{rf} acks=all");
                let row = run.produce(phase.clone(), &topic, size, options.messages, "all", None);
                let delivered = record(&mut rows, row, &phase);
                if check_alive(&mut cluster).is_err() {
                    healthy = false;
                    break 'phases;
                }
                if delivered > 0 {
                    let phase = format!("consume {name} RF{rf}");
                    record(
                        &mut rows,
                        run.consume(phase.clone(), &topic, delivered),
                        &phase,
                    );
                }
            }
        }
        for rf in factors {
            let phase = format!(
                "latency {} RF{rf} acks=all {}/s",
                size_name(latency),
                options.rate
            );
            let topic = topic_name(rf, "latency");
            let row = run.produce(
                phase.clone(),
                &topic,
                latency,
                paced,
                "all",
                Some(options.rate),
            );
            record(&mut rows, row, &phase);
            if check_alive(&mut cluster).is_err() {
                healthy = false;
                break 'phases;
            }
        }
    }
    println!();
    Row::header();
    for row in &rows {
        row.print();
    }
    println!(
        "MB/s: 10^6 payload bytes per second. p50/p99: send -> delivery report. \
         client/broker: CPU time over the phase's wall time, broker = the 3 brokers summed \
         (100% = one of {cores} cores busy)."
    );
    let before_kills: Vec<usize> = cluster
        .ids()
        .iter()
        .map(|id| cluster.log(*id).len())
        .collect();
    print_complaints(&cluster, &vec![0; before_kills.len()], "before the kills");

    if healthy && settings.kills > 0 {
        println!();
        println!(
            "failover: SIGKILL of the broker leading {FAILOVER_TOPIC}-0 (1 partition, RF 3, \
             min.insync.replicas=2) -> first acks=all produce acknowledged through the new leader; \
             the victim restarts and the ISR of every partition is full again before the next kill"
        );
        println!(
            "failover producer: {}",
            FAILOVER_PRODUCER
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let outcome = failover::run(
            &mut cluster,
            &bootstrap,
            FAILOVER_TOPIC,
            &names,
            settings.kills,
        );
        if let Err(e) = &outcome {
            println!("failover: FAILED: {e:#}");
            let _ = check_alive(&mut cluster);
        }
        print_complaints(&cluster, &before_kills, "during the kills");
    }
    Ok(())
}

/// Each node's WARN/ERROR log lines after byte `from[i]` of its log: a
/// count per node, then the first few lines.
fn print_complaints(cluster: &ProcessCluster, from: &[usize], when: &str) {
    let mut lines = Vec::new();
    let mut counts = Vec::new();
    for (id, start) in cluster.ids().into_iter().zip(from) {
        let log = cluster.log(id);
        let found = complaints(log.get(*start..).unwrap_or(""));
        counts.push(format!("node {id}: {}", found.len()));
        lines.extend(found.into_iter().map(|l| format!("node {id}: {l}")));
    }
    println!(
        "broker logs {when}: WARN/ERROR lines {} ({})",
        counts.join(", "),
        cluster
            .log_path(1)
            .parent()
            .map_or(String::new(), |d| d.display().to_string())
    );
    for line in lines.iter().take(10) {
        println!("  {line}");
    }
}
