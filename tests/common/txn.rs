//! What the transaction tests share: librdkafka consumers of one partition
//! at an isolation level, read on their own threads, and transactional
//! producers.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureProducer;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::mpsc;

use super::{client_config, DEADLINE};

/// A librdkafka consumer of `topic`-0 from the beginning at `isolation`
/// (`read_committed` or `read_uncommitted`), on its own thread: every
/// record's value arrives on the channel, in order, until the channel is
/// dropped.
pub fn spawn_consumer(
    bootstrap: &str,
    topic: &str,
    isolation: &str,
) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", "assigned-only")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    std::thread::spawn(move || {
        while !tx.is_closed() {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let value = String::from_utf8_lossy(m.payload().unwrap_or_default());
                    if tx.send(value.into_owned()).is_err() {
                        break;
                    }
                }
                Some(Err(e)) => eprintln!("consumer: {e}"),
                None => {}
            }
        }
    });
    rx
}

/// The next `count` values from a consumer (panics at [`DEADLINE`]).
pub async fn next(rx: &mut mpsc::UnboundedReceiver<String>, count: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let value = tokio::time::timeout(DEADLINE, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("received {out:?} of {count} values before the deadline"))
            .expect("consumer thread alive");
        out.push(value);
    }
    out
}

pub fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

/// A transactional librdkafka producer with `transactional.id` = `id`
/// (acks=all, idempotent, as librdkafka makes every transactional
/// producer); `init_transactions` is the caller's.
pub fn transactional_producer(bootstrap: &str, id: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut config = client_config(bootstrap);
    config
        .set("transactional.id", id)
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000")
        .set("transaction.timeout.ms", "60000");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config.create().expect("transactional producer")
}
