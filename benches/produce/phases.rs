//! The measured phases against a running cluster: [`Run::produce`] sends
//! a number of messages (as fast as the client's queue allows, or paced)
//! from one or more producers and returns a [`Row`] with throughput,
//! send -> delivery latencies and CPU use; [`Run::consume`] reads a topic
//! back from the beginning of every partition.

use std::sync::atomic::Ordering;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use kraft_testkit::bench_support::ms;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::client::{client_config, ClientLog, Deliveries};
use crate::cpu::CpuWindow;
use crate::report::Row;
use crate::{Options, STALL};

/// What every phase needs: the options, where the brokers are, and which
/// processes count as the broker side in the CPU figures.
pub struct Run<'a> {
    pub options: &'a Options,
    pub bootstrap: &'a str,
    pub broker_pids: Vec<u32>,
    pub ticks: f64,
    /// librdkafka settings every producer of the phase gets on top of the
    /// defaults (e.g. `enable.idempotence=true`).
    pub settings: &'a [(&'a str, &'a str)],
}

impl Run<'_> {
    fn producer(&self, acks: &str, origin: Instant) -> Result<BaseProducer<Deliveries>> {
        let context = Deliveries::new(origin);
        let mut config = client_config(self.bootstrap);
        config
            .set("acks", acks)
            .set("linger.ms", self.options.linger_ms.to_string())
            .set("message.timeout.ms", STALL.as_millis().to_string());
        for (key, value) in self.settings {
            config.set(*key, *value);
        }
        Ok(config.create_with_context(context)?)
    }

    /// `count` messages of `size` bytes to `topic`, split over the
    /// producers; as fast as the client's queue allows, or `rate` msgs/s in
    /// all.
    pub fn produce(
        &self,
        phase: String,
        topic: &str,
        size: usize,
        count: u64,
        acks: &str,
        rate: Option<u64>,
    ) -> Result<Row> {
        let origin = Instant::now();
        let n = self.options.producers.max(1);
        let producers = (0..n)
            .map(|_| self.producer(acks, origin))
            .collect::<Result<Vec<_>>>()?;
        // Connect and learn the partition leaders before the clock starts.
        for p in &producers {
            p.client()
                .fetch_metadata(Some(topic), Duration::from_secs(10))?;
        }
        let payload = vec![b'k'; size];
        // And deliver one message each: an idempotent producer sends
        // nothing until it has its producer id (InitProducerId), which
        // librdkafka asks for on a timer of its own after it starts.
        for p in &producers {
            p.send::<[u8], [u8]>(BaseRecord::with_opaque_to(topic, 0).payload(&payload[..]))
                .map_err(|(e, _)| anyhow!("warm-up send: {e}"))?;
            p.flush(STALL)?;
            p.context().reset();
        }
        let barrier = Barrier::new(n as usize);
        let window = CpuWindow::open(&self.broker_pids);
        let firsts = std::thread::scope(|s| {
            let handles: Vec<_> = producers
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let share = count / n + u64::from((i as u64) < count % n);
                    let rate = rate.map(|r| r as f64 / n as f64);
                    let (barrier, payload) = (&barrier, &payload);
                    s.spawn(move || {
                        barrier.wait();
                        send_all(p, topic, payload, share, rate)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .map_err(|_| anyhow!("a producer thread panicked"))?
                })
                .collect::<Result<Vec<Instant>>>()
        })?;
        let cpu = window.close(self.ticks);
        let first = firsts.into_iter().min().unwrap_or(origin);
        let mut row = Row {
            phase,
            messages: 0,
            bytes: 0,
            elapsed: Duration::ZERO,
            latencies: Vec::new(),
            cpu,
            note: String::new(),
        };
        let (mut last, mut failed, mut first_error) = (Duration::ZERO, 0, None);
        for p in &producers {
            let d = p.context();
            row.messages += d.acked.load(Ordering::Relaxed);
            failed += d.failed.load(Ordering::Relaxed);
            last = last.max(Duration::from_nanos(d.last.load(Ordering::Relaxed)));
            row.latencies
                .append(&mut d.latencies.lock().expect("latencies"));
            let error = d.first_error.lock().expect("first error").take();
            first_error = first_error.or(error);
        }
        if let Some(e) = first_error {
            row.note = format!("{failed} failed, first: {e}");
        }
        row.bytes = row.messages * size as u64;
        row.elapsed = (origin + last).saturating_duration_since(first);
        row.latencies.sort();
        Ok(row)
    }

    /// Reads `expected` messages of `topic` from the beginning of every
    /// partition.
    ///
    /// `fetch.queue.backoff.ms` is lowered from librdkafka's 1000 ms: when
    /// the client's local queue is full, librdkafka otherwise waits a whole
    /// second before fetching again, and a phase then measures that pause
    /// (a stall of ~950 ms with both processes idle), not the broker.
    pub fn consume(&self, phase: String, topic: &str, expected: u64) -> Result<Row> {
        let consumer: BaseConsumer<ClientLog> = client_config(self.bootstrap)
            .set("group.id", "kraft-bench-unused")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("fetch.queue.backoff.ms", "10")
            .create_with_context(ClientLog::default())?;
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let partitions = metadata
            .topics()
            .first()
            .map_or(0, |t| t.partitions().len());
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions as i32 {
            assignment.add_partition_offset(topic, p, Offset::Beginning)?;
        }
        let window = CpuWindow::open(&self.broker_pids);
        let start = Instant::now();
        consumer.assign(&assignment)?;
        let (mut messages, mut bytes, mut errors) = (0u64, 0u64, 0u64);
        let mut first_error = None;
        let mut last = start;
        // The wait for the first message, and waits of 100 ms or more
        // between two: time in which neither side may have been busy.
        let (mut first, mut pauses, mut paused) = (Duration::ZERO, 0, Duration::ZERO);
        while messages < expected {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    messages += 1;
                    bytes += m.payload_len() as u64;
                    let now = Instant::now();
                    if messages == 1 {
                        first = now - start;
                    } else if now - last >= Duration::from_millis(100) {
                        pauses += 1;
                        paused += now - last;
                    }
                    last = now;
                }
                Some(Err(e)) => {
                    if errors < 5 {
                        eprintln!("  consumer error: {e}");
                    }
                    errors += 1;
                    first_error.get_or_insert_with(|| e.to_string());
                }
                None if last.elapsed() > STALL => {
                    break;
                }
                None => {}
            }
        }
        let mut note = String::new();
        if messages < expected {
            note = format!("STALLED: {messages} of {expected} read; ");
        }
        if first >= Duration::from_millis(100) {
            note.push_str(&format!("first message after {}; ", ms(first)));
        }
        if pauses > 0 {
            note.push_str(&format!(
                "{pauses} pauses >= 100 ms, {} in all; ",
                ms(paused)
            ));
        }
        if let Some(e) = first_error {
            note.push_str(&format!("{errors} errors, first: {e}"));
        }
        Ok(Row {
            phase,
            messages,
            bytes,
            elapsed: last - start,
            latencies: Vec::new(),
            cpu: window.close(self.ticks),
            note,
        })
    }
}

/// Sends `count` messages as fast as the client's queue allows (or at
/// `rate` msgs/s, each when it falls due), serving delivery reports between
/// sends, then waits for the last report. Returns when the first message was
/// sent. Waits sleep rather than spin in `poll`, which rounds its timeout
/// down to whole milliseconds, so the client's CPU time is work done.
fn send_all(
    producer: &BaseProducer<Deliveries>,
    topic: &str,
    payload: &[u8],
    count: u64,
    rate: Option<f64>,
) -> Result<Instant> {
    let origin = producer.context().origin;
    let start = Instant::now();
    let mut sent = 0;
    while sent < count {
        if let Some(rate) = rate {
            let next = start + Duration::from_secs_f64(sent as f64 / rate);
            if Instant::now() < next {
                producer.poll(Duration::ZERO);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
                continue;
            }
        }
        let mut full_since = None;
        loop {
            let sent_at = origin.elapsed().as_nanos() as usize;
            let record = BaseRecord::with_opaque_to(topic, sent_at).payload(payload);
            match producer.send::<[u8], [u8]>(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    let since = *full_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > STALL {
                        bail!("the client's queue stayed full for {STALL:?}");
                    }
                    producer.poll(Duration::ZERO);
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err((e, _)) => bail!("send: {e}"),
            }
        }
        sent += 1;
        // A poll after every send cost about a quarter of the 100 B
        // throughput; a report now waits at most 64 sends (~100 us).
        if sent % 64 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    // `in_flight_count` counts delivery reports not yet served, too.
    let deadline = Instant::now() + STALL + Duration::from_secs(30);
    while producer.in_flight_count() > 0 {
        if Instant::now() > deadline {
            bail!(
                "{} messages still undelivered after {STALL:?}",
                producer.in_flight_count()
            );
        }
        producer.poll(Duration::from_millis(10));
    }
    Ok(start)
}
