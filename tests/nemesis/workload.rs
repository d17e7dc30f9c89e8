//! The nemesis' producers: one acks=all and one acks=1 librdkafka producer,
//! each writing every partition of the topic from its own task, one message
//! in flight at a time, and recording every acknowledgement.
//!
//! In: the cluster's bootstrap servers. Out: [`Acks`], every acknowledged
//! (partition, offset, value), per acks setting, in acknowledgement order.
//! Values are `{acks}-p{partition}-{seq}`, unique, so a record read back
//! names the write it came from.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::task::JoinHandle;

use super::common::producer;
use super::schedule::{PARTITIONS, TOPIC};

/// One acknowledged write.
#[derive(Clone, Debug)]
pub struct Ack {
    pub partition: i32,
    pub offset: i64,
    pub value: String,
}

/// Acknowledgements so far, per acks setting.
#[derive(Clone, Default)]
pub struct Acks {
    pub all: Arc<Mutex<Vec<Ack>>>,
    pub one: Arc<Mutex<Vec<Ack>>>,
}

impl Acks {
    /// acks=all acknowledgements of `partition` so far.
    pub fn all_on(&self, partition: i32) -> usize {
        lock(&self.all)
            .iter()
            .filter(|a| a.partition == partition)
            .count()
    }
}

pub fn lock(acks: &Mutex<Vec<Ack>>) -> std::sync::MutexGuard<'_, Vec<Ack>> {
    acks.lock().unwrap_or_else(|e| e.into_inner())
}

/// The running producers.
pub struct Workload {
    pub acks: Acks,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<u64>>,
}

impl Workload {
    pub fn start(bootstrap: &str) -> Workload {
        let acks = Acks::default();
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for (setting, log) in [("all", &acks.all), ("1", &acks.one)] {
            let producer = producer(
                bootstrap,
                &[
                    ("acks", setting),
                    ("linger.ms", "0"),
                    ("max.in.flight.requests.per.connection", "1"),
                    ("message.timeout.ms", "8000"),
                    ("request.timeout.ms", "4000"),
                ],
            );
            for partition in 0..PARTITIONS {
                tasks.push(tokio::spawn(write(
                    producer.clone(),
                    setting,
                    partition,
                    log.clone(),
                    stop.clone(),
                )));
            }
        }
        Workload { acks, stop, tasks }
    }

    /// Stops every producer; returns how many writes were attempted.
    pub async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let mut attempted = 0;
        for task in self.tasks {
            attempted += task.await.unwrap_or(0);
        }
        attempted
    }
}

/// Writes `partition` until stopped, one message at a time; returns the
/// number of attempts.
async fn write(
    producer: FutureProducer,
    setting: &'static str,
    partition: i32,
    log: Arc<Mutex<Vec<Ack>>>,
    stop: Arc<AtomicBool>,
) -> u64 {
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let value = format!("{setting}-p{partition}-{seq}");
        let record = FutureRecord::to(TOPIC)
            .key("k")
            .payload(&value)
            .partition(partition);
        match producer.send(record, Duration::from_secs(10)).await {
            Ok(d) => lock(&log).push(Ack {
                partition: d.partition,
                offset: d.offset,
                value,
            }),
            // Not acknowledged: may or may not be stored. Let a failing
            // cluster breathe instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
        seq += 1;
    }
    seq
}
