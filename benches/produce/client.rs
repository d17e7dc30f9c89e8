//! librdkafka client contexts: [`ClientLog`] prints the client's warnings
//! and errors, and [`Deliveries`] counts a producer's delivery reports and
//! records each message's latency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::ProducerContext;
use rdkafka::{ClientConfig, ClientContext};

/// `bootstrap.servers` and IPv4 only: what every client here starts from.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4");
    config
}

/// librdkafka's warnings and errors, printed (the first few) rather than
/// lost: `rdkafka` sends them to the `log` crate, which has no logger here.
/// A client that expects brokers to die counts connection failures instead
/// of printing them.
#[derive(Default)]
pub struct ClientLog {
    lines: AtomicU64,
    expect_dead_brokers: bool,
    connection_failures: AtomicU64,
}

impl ClientLog {
    /// Connection failures (refused, transport failure, disconnected) are
    /// counted, not printed: the brokers it talks to get killed.
    pub fn expecting_dead_brokers() -> ClientLog {
        ClientLog {
            expect_dead_brokers: true,
            ..ClientLog::default()
        }
    }

    /// How many connection failures were counted rather than printed.
    pub fn connection_failures(&self) -> u64 {
        self.connection_failures.load(Ordering::Relaxed)
    }

    fn print(&self, line: String) {
        let connection = ["Connection refused", "transport failure", "Disconnected"]
            .iter()
            .any(|s| line.contains(s));
        if self.expect_dead_brokers && connection {
            self.connection_failures.fetch_add(1, Ordering::Relaxed);
        } else if self.lines.fetch_add(1, Ordering::Relaxed) < 20 {
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
pub struct Deliveries {
    pub origin: Instant,
    log: ClientLog,
    pub acked: AtomicU64,
    pub failed: AtomicU64,
    pub first_error: Mutex<Option<String>>,
    /// Nanoseconds since `origin` of the last delivery report.
    pub last: AtomicU64,
    pub latencies: Mutex<Vec<Duration>>,
}

impl Deliveries {
    pub fn new(origin: Instant) -> Deliveries {
        Deliveries {
            origin,
            log: ClientLog::default(),
            acked: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            first_error: Mutex::new(None),
            last: AtomicU64::new(0),
            latencies: Mutex::new(Vec::new()),
        }
    }
}

impl Deliveries {
    /// Forgets every report so far (the warm-up's).
    pub fn reset(&self) {
        self.acked.store(0, Ordering::Relaxed);
        self.failed.store(0, Ordering::Relaxed);
        self.last.store(0, Ordering::Relaxed);
        self.latencies.lock().expect("latencies").clear();
        self.first_error.lock().expect("first error").take();
    }
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
