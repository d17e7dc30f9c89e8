//! Topic setup and health through librdkafka: [`create_topics`] creates
//! topics once the brokers take CreateTopics and waits for their leaders;
//! [`wait_healthy`] waits until every partition has a leader and a full ISR.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::Client;
use rdkafka::types::RDKafkaErrorCode;

use crate::client::{client_config, ClientLog};
use crate::STALL;

/// A topic to create.
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication: i32,
    /// Topic configs, such as `min.insync.replicas`.
    pub configs: Vec<(&'static str, &'static str)>,
}

impl TopicSpec {
    pub fn new(name: impl Into<String>, partitions: i32, replication: i32) -> TopicSpec {
        TopicSpec {
            name: name.into(),
            partitions,
            replication,
            configs: Vec::new(),
        }
    }
}

/// Creates the topics once the brokers take CreateTopics (a broker must
/// first be unfenced, and as many as the replication factor registered),
/// then waits until each partition has a leader. `alive` fails when a
/// broker process has exited, so a dead broker ends the wait at once.
pub fn create_topics(
    bootstrap: &str,
    topics: &[TopicSpec],
    alive: &mut dyn FnMut() -> Result<()>,
) -> Result<()> {
    let admin: AdminClient<ClientLog> =
        client_config(bootstrap).create_with_context(ClientLog::default())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let deadline = Instant::now() + STALL;
    for spec in topics {
        let topic = spec.name.as_str();
        let mut new = NewTopic::new(
            topic,
            spec.partitions,
            TopicReplication::Fixed(spec.replication),
        );
        for (key, value) in &spec.configs {
            new = new.set(key, value);
        }
        loop {
            alive()?;
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
                t.partitions().len() == spec.partitions as usize
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

/// Waits until every partition of `topics` has a leader and an ISR of all
/// its replicas, as the brokers' metadata says, polling every 50 ms for up
/// to `limit`. Returns how long that took, or what was still missing.
pub fn wait_healthy(
    client: &Client<ClientLog>,
    topics: &[&str],
    limit: Duration,
) -> Result<Duration> {
    let start = Instant::now();
    loop {
        let mut missing = Vec::new();
        for topic in topics {
            match client.fetch_metadata(Some(topic), Duration::from_secs(2)) {
                Ok(metadata) => match metadata.topics().first() {
                    Some(t) if !t.partitions().is_empty() => {
                        for p in t.partitions() {
                            if p.leader() < 0 || p.isr().len() < p.replicas().len() {
                                missing.push(format!(
                                    "{topic}-{} leader {} isr {:?} of {:?}",
                                    p.id(),
                                    p.leader(),
                                    p.isr(),
                                    p.replicas()
                                ));
                            }
                        }
                    }
                    _ => missing.push(format!("{topic}: no partitions")),
                },
                Err(e) => missing.push(format!("{topic}: {e}")),
            }
        }
        if missing.is_empty() {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            bail!("not healthy after {limit:?}: {}", missing.join("; "));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
