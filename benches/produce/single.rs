//! The default mode: one combined `kraftd` and topics with replication
//! factor 1. Produce then consume 100 B and 1 KiB messages with acks=all,
//! then produce latency with acks=1 and acks=all at full load and at a
//! fixed rate; the table, the broker's complaints, and its last log lines
//! if it exited.

use std::path::Path;

use anyhow::Result;

use crate::cpu::ticks_per_second;
use crate::node::Node;
use crate::phases::Run;
use crate::report::{complaints, print_tail, record, size_name, Row};
use crate::topics::{create_topics, TopicSpec};
use crate::{Options, KRAFTD, PARTITIONS};

pub fn run(options: &Options) -> Result<()> {
    let sizes = [100usize, 1024];
    let mut node = Node::start(Path::new(KRAFTD))?;
    let topics: Vec<String> = sizes
        .iter()
        .map(|s| format!("bench-{s}"))
        .chain(["bench-latency".to_string()])
        .collect();
    let specs: Vec<TopicSpec> = topics
        .iter()
        .map(|t| TopicSpec::new(t, PARTITIONS, 1))
        .collect();
    let bootstrap = node.bootstrap.clone();
    create_topics(&bootstrap, &specs, &mut || node.check_alive())?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "kraft produce benchmark: 1 combined kraftd (broker,controller), {KRAFTD}\n\
         topics of {PARTITIONS} partitions, RF 1; librdkafka {}; {} producer(s), linger.ms={}; {cores} cores",
        rdkafka::util::get_rdkafka_version().1,
        options.producers,
        options.linger_ms
    );
    let run = Run {
        options,
        bootstrap: &bootstrap,
        broker_pids: vec![node.child.id()],
        ticks: ticks_per_second(),
        settings: &[],
    };
    Row::header();
    let mut rows = Vec::new();
    let latency = options.latency_bytes;
    let paced = options.rate * options.rate_seconds;
    let mut broker_exit = None;
    'phases: {
        for (size, topic) in sizes.iter().zip(&topics) {
            let name = size_name(*size);
            let phase = format!("produce {name} acks=all");
            let row = run.produce(phase.clone(), topic, *size, options.messages, "all", None);
            let delivered = record(&mut rows, row, &phase);
            broker_exit = node.exit();
            if broker_exit.is_some() {
                break 'phases;
            }
            if delivered > 0 {
                let phase = format!("consume {name}");
                record(
                    &mut rows,
                    run.consume(phase.clone(), topic, delivered),
                    &phase,
                );
            }
        }
        for (rate, count) in [(None, options.messages), (Some(options.rate), paced)] {
            for acks in ["1", "all"] {
                let load = rate.map_or("full load".to_string(), |r| format!("{r}/s"));
                let phase = format!("latency {} acks={acks} {load}", size_name(latency));
                let row = run.produce(phase.clone(), "bench-latency", latency, count, acks, rate);
                record(&mut rows, row, &phase);
                broker_exit = node.exit();
                if broker_exit.is_some() {
                    break 'phases;
                }
            }
        }
    }
    let complaints = complaints(&node.log());
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
        print_tail(&node.log(), 30);
    }
    Ok(())
}
