//! `--idempotence`: idempotent against plain produce throughput at 1 KiB,
//! acks=all, on one combined `kraftd` (topics of RF 1), in the same run.
//! Three kinds of producer alternate over `--rounds` rounds (3), each on its
//! own topic, so drift in the machine's load hits all alike; the summary is
//! the ratio of their total throughputs:
//! - plain: librdkafka's defaults (up to 1,000,000 requests in flight);
//! - plain, 5 in flight: `max.in.flight.requests.per.connection=5`, the
//!   limit idempotence imposes, so the difference to the next one is the
//!   broker's work (producer ids, sequence checks);
//! - idempotent: `enable.idempotence=true` (acks=all, at most 5 requests in
//!   flight): the broker gives it a producer id (InitProducerId) and each
//!   partition leader checks every batch's sequence and epoch.

use std::path::Path;

use anyhow::Result;
use kraft_testkit::bench_support::arg;

use crate::cpu::ticks_per_second;
use crate::node::Node;
use crate::phases::Run;
use crate::report::{complaints, record, Row};
use crate::topics::{create_topics, TopicSpec};
use crate::{Options, KRAFTD, PARTITIONS};

const SIZE: usize = 1024;

/// A kind of producer: its name, its topic and its librdkafka settings.
type Kind = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

pub fn run(options: &Options) -> Result<()> {
    let rounds = arg("--rounds", 3).max(1);
    let mut node = Node::start(Path::new(KRAFTD))?;
    let bootstrap = node.bootstrap.clone();
    let kinds: [Kind; 3] = [
        ("plain", "bench-plain", &[]),
        (
            "plain 5 in flight",
            "bench-plain-5",
            &[("max.in.flight.requests.per.connection", "5")],
        ),
        (
            "idempotent",
            "bench-idempotent",
            &[("enable.idempotence", "true")],
        ),
    ];
    let specs: Vec<TopicSpec> = kinds
        .iter()
        .map(|(_, topic, _)| TopicSpec::new(*topic, PARTITIONS, 1))
        .collect();
    create_topics(&bootstrap, &specs, &mut || node.check_alive())?;
    println!(
        "kraft idempotence benchmark: 1 combined kraftd, {PARTITIONS} partitions, RF 1, 1 KiB, acks=all; \
         librdkafka {}; {} producer(s), linger.ms={}; {rounds} rounds of {} messages",
        rdkafka::util::get_rdkafka_version().1,
        options.producers,
        options.linger_ms,
        options.messages
    );
    let pid = node.child.id();
    let run = |settings| Run {
        options,
        bootstrap: &bootstrap,
        broker_pids: vec![pid],
        ticks: ticks_per_second(),
        settings,
    };
    Row::header();
    let mut rows: Vec<(&str, Row)> = Vec::new();
    for round in 0..rounds {
        for (kind, topic, settings) in kinds {
            let phase = format!("1 KiB acks=all {kind} #{}", round + 1);
            let mut kept = Vec::new();
            let row =
                run(settings).produce(phase.clone(), topic, SIZE, options.messages, "all", None);
            record(&mut kept, row, &phase);
            rows.extend(kept.into_iter().map(|r| (kind, r)));
            if let Some(exit) = node.exit() {
                println!("kraftd EXITED ({exit}) during the run");
                return Ok(());
            }
        }
    }
    let throughput = |kind: &str| {
        let (messages, secs) = rows
            .iter()
            .filter(|(k, _)| *k == kind)
            .fold((0u64, 0f64), |(m, s), (_, r)| {
                (m + r.messages, s + r.elapsed.as_secs_f64())
            });
        messages as f64 / secs.max(1e-9)
    };
    let (plain, five, idempotent) = (
        throughput("plain"),
        throughput("plain 5 in flight"),
        throughput("idempotent"),
    );
    println!(
        "msgs/s: plain {plain:.0}, plain 5 in flight {five:.0}, idempotent {idempotent:.0}; \
         idempotent is {:.1}% of plain and {:.1}% of plain with 5 in flight",
        idempotent / plain.max(1e-9) * 100.0,
        idempotent / five.max(1e-9) * 100.0
    );
    let complaints = complaints(&node.log());
    println!(
        "broker log: {} WARN/ERROR lines ({})",
        complaints.len(),
        node.log_path().display()
    );
    for line in complaints.iter().take(10) {
        println!("  {line}");
    }
    Ok(())
}
