//! Benchmark of Produce and Fetch through an unmodified Kafka client
//! (librdkafka, via `rdkafka`) against real `kraftd` processes (release
//! build). Prints figures; asserts nothing.
//!
//! Four modes:
//!
//! - the default: one combined `kraftd` (`process.roles=broker,controller`,
//!   default settings) and topics with replication factor 1
//!   ([`single`]): produce and consume throughput, produce latency with
//!   acks=1 and acks=all at full load and at a fixed rate;
//! - `--idempotence [--rounds R]`: idempotent against plain produce
//!   throughput at 1 KiB on one combined `kraftd`, alternating over R
//!   rounds (3) ([`idempotence`]);
//! - `--replication`: 1 controller and 3 brokers as separate processes
//!   ([`replication`]): acks=all produce throughput and latency with
//!   replication factor 3 (min.insync.replicas=2) next to replication
//!   factor 1 on the same cluster, then the failover time from a partition
//!   leader's SIGKILL to the first acks=all produce through the new leader
//!   ([`failover`]);
//! - `--transactions [--txns N]`: librdkafka's transactional producer, 100
//!   messages per transaction, at RF 1 on one combined `kraftd` and at RF 3
//!   on 1 controller and 3 brokers: throughput and commit latency
//!   ([`transactions`]).
//!
//! Every phase also reports the CPU time of this process (the client) and
//! of the broker processes over its wall time ([`cpu`]), so the reader sees
//! which side saturates the machine's cores.
//!
//! Run with `scripts/bench-produce [--messages N] [--rate R]
//! [--rate-seconds S] [--producers P] [--linger-ms L] [--latency-bytes B]`:
//! N messages per throughput and full-load run (200000), R msgs/s for the
//! paced runs (10000) lasting S seconds (5), P producer instances on their
//! own threads splitting the messages (1), librdkafka's `linger.ms` (5), and
//! the payload of the latency runs (100). Add `--replication [--kills K]
//! [--session-timeout-ms T] [--heartbeat-ms H] [--replica-lag-ms L]` for
//! the replicated mode: K leader kills (10) and the brokers' session
//! timeout (3000), heartbeat interval (300) and `replica.lag.time.max.ms`
//! (2000). `KRAFT_KEEP_LOGS=1` keeps the brokers' directories and logs.

#![forbid(unsafe_code)]

mod client;
mod cpu;
mod failover;
mod idempotence;
mod node;
mod phases;
mod replication;
mod report;
mod single;
mod topics;
mod transactions;

use std::time::Duration;

use anyhow::Result;
use kraft_testkit::bench_support::arg;

const KRAFTD: &str = env!("CARGO_BIN_EXE_kraftd");
/// Partitions of every throughput and latency topic.
const PARTITIONS: i32 = 3;
/// How long a send may keep finding the client's queue full, a flush may
/// wait, or a consumer may go without a message, before the phase fails.
const STALL: Duration = Duration::from_secs(60);

/// The command line, shared by both modes.
pub struct Options {
    pub messages: u64,
    pub rate: u64,
    pub rate_seconds: u64,
    pub producers: u64,
    pub linger_ms: u64,
    pub latency_bytes: usize,
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
    if std::env::args().any(|a| a == "--transactions") {
        return transactions::run(&options);
    }
    if std::env::args().any(|a| a == "--idempotence") {
        return idempotence::run(&options);
    }
    if std::env::args().any(|a| a == "--replication") {
        let settings = replication::Settings {
            kills: arg("--kills", 10) as usize,
            session_timeout_ms: arg("--session-timeout-ms", 3000),
            heartbeat_ms: arg("--heartbeat-ms", 300),
            replica_lag_ms: arg("--replica-lag-ms", 2000),
        };
        replication::run(&options, &settings)
    } else {
        single::run(&options)
    }
}
