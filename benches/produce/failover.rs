//! Failover of a replicated partition, measured the way a client sees it.
//!
//! Each round starts from a healthy cluster (every partition led, every
//! ISR full). A producer that sends one message at a time with acks=all
//! first gets one message acknowledged by the current leader of partition 0
//! (so it is connected and knows the leader); then the leader broker gets
//! SIGKILL and the clock starts. The producer sends one message, waits for
//! its delivery report, and sends another after each failure, until one is
//! acknowledged: that instant is the failover time. Meanwhile a second
//! client polls metadata to note when a new leader first shows. Then the
//! victim restarts and the round waits for every ISR to be full again.
//!
//! The controller fences the dead broker after `broker.session.timeout.ms`
//! without a heartbeat and elects a new leader from the ISR, so that
//! setting bounds the figures from below.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kraft_testkit::bench_support::{ms, percentile};
use kraft_testkit::process::ProcessCluster;
use rdkafka::client::Client;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::ClientContext;

use crate::client::{client_config, ClientLog};
use crate::topics::wait_healthy;

/// The failover producer's settings. Short backoffs and a 50 ms periodic
/// metadata refresh, so the client learns of the new leader soon after the
/// brokers do: librdkafka refreshes fast only while a partition has no
/// leader, and the dead broker stays the leader in metadata until the
/// controller fences it. A message not acknowledged within 1 s fails, and
/// the next one is sent.
pub const FAILOVER_PRODUCER: &[(&str, &str)] = &[
    ("acks", "all"),
    ("linger.ms", "0"),
    ("message.timeout.ms", "1000"),
    ("retry.backoff.ms", "10"),
    ("retry.backoff.max.ms", "50"),
    ("reconnect.backoff.ms", "10"),
    ("reconnect.backoff.max.ms", "50"),
    ("topic.metadata.refresh.interval.ms", "50"),
    ("topic.metadata.refresh.fast.interval.ms", "10"),
];

/// How long one round may wait for a success, or for a healthy cluster.
const ROUND_LIMIT: Duration = Duration::from_secs(120);

/// The delivery report of each message, with the instant it was served.
struct Reports {
    log: ClientLog,
    sender: Mutex<Sender<(Instant, Result<(), String>)>>,
}

impl ClientContext for Reports {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.log.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason);
    }
}

impl ProducerContext for Reports {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let outcome = result.as_ref().map(|_| ()).map_err(|(e, _)| e.to_string());
        let _ = self
            .sender
            .lock()
            .expect("sender")
            .send((Instant::now(), outcome));
    }
}

/// Sends one message to partition 0 and waits for its delivery report.
fn send_one(
    producer: &BaseProducer<Reports>,
    reports: &Receiver<(Instant, Result<(), String>)>,
    topic: &str,
) -> Result<(Instant, Result<(), String>)> {
    let record = BaseRecord::to(topic).partition(0).payload("failover");
    if let Err((e, _)) = producer.send::<str, str>(record) {
        bail!("send: {e}");
    }
    let deadline = Instant::now() + ROUND_LIMIT;
    loop {
        // `poll` returns as soon as a report is served.
        producer.poll(Duration::from_millis(50));
        if let Ok(report) = reports.try_recv() {
            return Ok(report);
        }
        if Instant::now() > deadline {
            bail!("no delivery report after {ROUND_LIMIT:?}");
        }
    }
}

/// After the kill at `killed`: one message at a time until one is
/// acknowledged. Returns the time to that acknowledgement, how many sends
/// failed before it, and the first failure.
fn produce_until_acked(
    producer: &BaseProducer<Reports>,
    reports: &Receiver<(Instant, Result<(), String>)>,
    topic: &str,
    killed: Instant,
) -> Result<(Duration, u32, Option<String>)> {
    let (mut failed_sends, mut first_error) = (0, None);
    loop {
        let (at, outcome) = send_one(producer, reports, topic)?;
        match outcome {
            Ok(()) => return Ok((at - killed, failed_sends, first_error)),
            Err(e) => {
                failed_sends += 1;
                first_error.get_or_insert(e);
                if killed.elapsed() > ROUND_LIMIT {
                    bail!(
                        "no acks=all produce within {ROUND_LIMIT:?}: \
                         {failed_sends} sends failed, first: {first_error:?}"
                    );
                }
            }
        }
    }
}

/// The leader of partition 0 of `topic`, as the brokers' metadata says.
fn leader(client: &Client<ClientLog>, topic: &str, timeout: Duration) -> Option<i32> {
    let metadata = client.fetch_metadata(Some(topic), timeout).ok()?;
    let partition = metadata.topics().first()?.partitions().first()?.leader();
    (partition >= 0).then_some(partition)
}

/// One kill's figures.
struct Round {
    victim: i32,
    new_leader: Option<i32>,
    /// SIGKILL -> a new leader first shows in metadata.
    visible: Option<Duration>,
    /// SIGKILL -> the first acknowledged produce.
    took: Duration,
    failed_sends: u32,
    first_error: Option<String>,
    /// Restart -> every ISR full again.
    healthy_after: Duration,
}

impl Round {
    fn print(&self, n: usize) {
        let new = self
            .new_leader
            .map_or("?".to_string(), |id| format!("broker {id}"));
        let visible = match self.visible {
            Some(v) => format!(
                "{} (+{} to the ack)",
                ms(v),
                ms(self.took.saturating_sub(v))
            ),
            None => "-".to_string(),
        };
        let failures = match &self.first_error {
            Some(e) => format!("{} sends failed first ({e})", self.failed_sends),
            None => "no send failed first".to_string(),
        };
        println!(
            "  kill {n:>2}: broker {} -> {new}: new leader in metadata after {visible}, \
             first acks=all produce after {}; {failures}; ISR full {} after the restart",
            self.victim,
            ms(self.took),
            ms(self.healthy_after)
        );
    }
}

/// `kills` rounds against partition 0 of `topic`; `all_topics` must be
/// healthy before each kill. Prints a line per kill and the summary.
pub fn run(
    cluster: &mut ProcessCluster,
    bootstrap: &str,
    topic: &str,
    all_topics: &[&str],
    kills: usize,
) -> Result<()> {
    let (sender, reports) = channel();
    let mut config = client_config(bootstrap);
    for (key, value) in FAILOVER_PRODUCER {
        config.set(*key, *value);
    }
    let producer: BaseProducer<Reports> = config.create_with_context(Reports {
        log: ClientLog::expecting_dead_brokers(),
        sender: Mutex::new(sender),
    })?;
    let watcher: BaseConsumer<ClientLog> =
        client_config(bootstrap).create_with_context(ClientLog::expecting_dead_brokers())?;
    let mut took = Vec::new();
    let mut visible = Vec::new();
    for n in 1..=kills {
        wait_healthy(watcher.client(), all_topics, ROUND_LIMIT)?;
        // Connected to the leader, and sure it is the leader.
        let (_, warm) = send_one(&producer, &reports, topic)?;
        if let Err(e) = warm {
            bail!("the produce before kill {n} failed: {e}");
        }
        let victim = leader(watcher.client(), topic, Duration::from_secs(5))
            .context("no leader before the kill")?;
        let stop = AtomicBool::new(false);
        let round = std::thread::scope(|s| -> Result<Round> {
            let killed = Instant::now();
            cluster.kill9(victim)?;
            let (stop, client) = (&stop, watcher.client());
            let watch = s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let now = leader(client, topic, Duration::from_millis(200));
                    if now.is_some_and(|id| id != victim) {
                        return Some(killed.elapsed());
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                None
            });
            let produced = produce_until_acked(&producer, &reports, topic, killed);
            // The watcher gets a moment to see what the producer saw.
            let deadline = Instant::now() + Duration::from_secs(5);
            while produced.is_ok() && !watch.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            stop.store(true, Ordering::Relaxed);
            let visible = watch.join().unwrap_or(None);
            let (took, failed_sends, first_error) =
                produced.with_context(|| format!("after killing broker {victim}"))?;
            Ok(Round {
                victim,
                new_leader: leader(watcher.client(), topic, Duration::from_secs(5)),
                visible,
                took,
                failed_sends,
                first_error,
                healthy_after: Duration::ZERO,
            })
        });
        let mut round = round?;
        cluster.spawn(victim)?;
        round.healthy_after = wait_healthy(watcher.client(), all_topics, ROUND_LIMIT)?;
        round.print(n);
        took.push(round.took);
        visible.extend(round.visible);
    }
    took.sort();
    visible.sort();
    let spread = |samples: &[Duration]| {
        if samples.is_empty() {
            return "-".to_string();
        }
        format!(
            "min {} median {} max {}",
            ms(samples[0]),
            ms(percentile(samples, 0.5)),
            ms(samples[samples.len() - 1])
        )
    };
    println!(
        "failover over {} leader kills (SIGKILL -> first acks=all produce through the new leader): {}",
        took.len(),
        spread(&took)
    );
    println!(
        "  (SIGKILL -> new leader first in metadata, {} of {} kills seen: {})",
        visible.len(),
        took.len(),
        spread(&visible)
    );
    println!(
        "  librdkafka connection failures to the killed brokers (expected, not printed): \
         producer {}, metadata client {}",
        producer.context().log.connection_failures(),
        watcher.context().connection_failures()
    );
    Ok(())
}
