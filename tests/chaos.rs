//! A randomized fault test: while a producer writes with acks=all
//! (replication factor 3, min.insync.replicas 2), brokers are killed,
//! restarted and cut off from each other and from the controller, for a
//! bounded time. Afterwards every acknowledged write must be readable at
//! the offset it was acknowledged at, in the order it was sent.
//!
//! The faults come from a seed, printed at the start; set
//! `KRAFT_CHAOS_SEED` to replay a failing run, `KRAFT_CHAOS_SECS` to run
//! longer.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{consume, create_topic, producer};
use kraft_testkit::{wait_for, TestCluster};
use rdkafka::producer::FutureRecord;
use rdkafka::Message;

const CONTROLLER: i32 = 1;
const BROKERS: [i32; 3] = [2, 3, 4];

/// splitmix64: a small, well-mixed generator, so a seed replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

fn seed() -> u64 {
    std::env::var("KRAFT_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

/// What the producer saw acknowledged: sequence number -> offset.
type Acked = Arc<Mutex<BTreeMap<u64, i64>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_random_faults() {
    let seed = seed();
    let secs: u64 = std::env::var("KRAFT_CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    eprintln!("chaos: KRAFT_CHAOS_SEED={seed} KRAFT_CHAOS_SECS={secs}");
    let mut rng = Rng(seed);

    let mut cluster = TestCluster::builder(1)
        .brokers(3)
        .prop("replica.lag.time.max.ms", 2000)
        .prop("broker.session.timeout.ms", 3000)
        .prop("broker.heartbeat.interval.ms", 300)
        .start()
        .await
        .expect("cluster starts");
    let bootstrap = cluster.bootstrap_servers();
    create_topic(&bootstrap, "chaos", 1, 3, &[("min.insync.replicas", "2")]).await;

    // One message in flight at a time: each is acknowledged or not, and the
    // acknowledged ones must keep their order.
    let acked: Acked = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let acked = acked.clone();
        let stop = stop.clone();
        let producer = producer(
            &bootstrap,
            &[
                ("linger.ms", "0"),
                ("max.in.flight.requests.per.connection", "1"),
                ("message.timeout.ms", "10000"),
            ],
        );
        tokio::spawn(async move {
            let mut seq = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let value = format!("seq-{seq}");
                let record = FutureRecord::to("chaos").key("k").payload(&value);
                if let Ok(d) = producer.send(record, Duration::from_secs(15)).await {
                    acked.lock().expect("acked").insert(seq, d.offset);
                }
                seq += 1;
            }
        })
    };

    let mut down: Vec<i32> = Vec::new();
    let end = Instant::now() + Duration::from_secs(secs);
    let mut step = 0;
    while Instant::now() < end {
        step += 1;
        let action = rng.below(5);
        match action {
            // Kill a broker, keeping at least two up.
            0 if down.is_empty() => {
                let up: Vec<i32> = BROKERS
                    .iter()
                    .copied()
                    .filter(|b| !down.contains(b))
                    .collect();
                let victim = rng.pick(&up);
                eprintln!("chaos step {step}: kill broker {victim}");
                cluster.kill(victim).await;
                down.push(victim);
            }
            // Restart a dead broker.
            1 if !down.is_empty() => {
                let back = down.remove(rng.below(down.len() as u64) as usize);
                eprintln!("chaos step {step}: restart broker {back}");
                cluster.restart(back).await.expect("restart");
            }
            // Cut two brokers apart.
            2 => {
                let a = rng.pick(&BROKERS);
                let b = rng.pick(&BROKERS);
                if a != b {
                    eprintln!("chaos step {step}: cut {a} <-> {b}");
                    cluster.faults().cut(a, b);
                }
            }
            // Cut a broker off from the controller.
            3 => {
                let b = rng.pick(&BROKERS);
                eprintln!("chaos step {step}: cut {b} <-> controller");
                cluster.faults().cut(b, CONTROLLER);
            }
            _ => {
                eprintln!("chaos step {step}: heal");
                cluster.heal();
            }
        }
        tokio::time::sleep(Duration::from_millis(300 + rng.below(1500))).await;
    }

    eprintln!("chaos: healing and restarting everything");
    cluster.heal();
    for b in down.drain(..) {
        cluster.restart(b).await.expect("restart");
    }
    // Let the writer see the healed cluster, then stop it.
    let before = acked.lock().expect("acked").len();
    wait_for("writes to be acknowledged again after healing", || async {
        (acked.lock().ok()?.len() > before + 10).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.expect("writer");

    let acked = acked.lock().expect("acked").clone();
    assert!(!acked.is_empty(), "seed {seed}: nothing was acknowledged");
    let last = acked.values().max().copied().unwrap_or(0);
    let consumed = consume(&bootstrap, "chaos", 1, (last + 1) as usize).await;
    let stored: BTreeMap<i64, String> = consumed
        .iter()
        .map(|m| {
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            (m.offset(), value)
        })
        .collect();
    let mut previous = -1i64;
    for (seq, offset) in &acked {
        assert_eq!(
            stored.get(offset).map(String::as_str),
            Some(format!("seq-{seq}").as_str()),
            "seed {seed}: acknowledged seq-{seq} is not at offset {offset}"
        );
        assert!(
            *offset > previous,
            "seed {seed}: seq-{seq} at offset {offset} is not after the previous acknowledged write ({previous})"
        );
        previous = *offset;
    }
    eprintln!(
        "chaos: {} acknowledged writes checked, log end {}",
        acked.len(),
        last + 1
    );
    cluster.shutdown().await;
}
