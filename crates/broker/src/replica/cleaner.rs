//! The log cleaner threads: compaction of the hosted partitions whose
//! topic's `cleanup.policy` includes `compact`, as Kafka's LogCleaner.
//!
//! In: the replica manager's partitions and their logs' compaction
//! settings (`LogConfig::compaction`, from the topic configs), the
//! broker's [`CleanerSettings`]. Each of `log.cleaner.threads` tasks picks
//! the dirtiest log due for cleaning (past `max.compaction.lag.ms` first,
//! then by dirty ratio over `min.cleanable.dirty.ratio`), runs one pass on
//! a blocking thread ([`kraft_log::PartitionLog::clean`], which holds the
//! log's writer lock only to snapshot and swap), and looks again at once;
//! with nothing to clean it sleeps `log.cleaner.backoff.ms`. Out: smaller
//! logs. Reads and writes of all threads together are paced to
//! `log.cleaner.io.max.bytes.per.second`; each thread's offset map gets
//! its share of `log.cleaner.dedupe.buffer.size`. A storage error takes
//! the log dir offline as any other; a log that fails otherwise (a corrupt
//! segment) is not picked again until restart, as Kafka marks it uncleanable.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use uuid::Uuid;

use super::{now_ms, Partition, ReplicaManager};

/// The cleaner's broker settings.
#[derive(Clone, Debug)]
pub struct CleanerSettings {
    /// `log.cleaner.enable`.
    pub enable: bool,
    /// `log.cleaner.threads`.
    pub threads: usize,
    /// `log.cleaner.dedupe.buffer.size`: offset-map bytes of all threads.
    pub dedupe_buffer_bytes: u64,
    /// `log.cleaner.io.max.bytes.per.second`; infinite: unthrottled.
    pub io_max_bytes_per_second: f64,
    /// `log.cleaner.backoff.ms`: the pause when no log needs cleaning.
    pub backoff: Duration,
}

impl Default for CleanerSettings {
    fn default() -> Self {
        CleanerSettings {
            enable: true,
            threads: 1,
            dedupe_buffer_bytes: 128 << 20,
            io_max_bytes_per_second: f64::INFINITY,
            backoff: Duration::from_secs(15),
        }
    }
}

type Key = (Uuid, i32);

/// What the cleaner threads share.
pub(super) struct Shared {
    /// Logs a thread is cleaning now.
    pub busy: Mutex<HashSet<Key>>,
    /// Logs whose cleaning failed for a reason other than storage.
    pub uncleanable: Mutex<HashSet<Key>>,
    pub throttle: Throttle,
    pub map_bytes: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ReplicaManager {
    /// Runs the cleaner threads until `stop` turns true.
    pub async fn run_cleaner(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let settings = self.config.cleaner.clone();
        if !settings.enable || settings.threads == 0 {
            let _ = stop.wait_for(|s| *s).await;
            return;
        }
        let shared = Arc::new(Shared {
            busy: Mutex::new(HashSet::new()),
            uncleanable: Mutex::new(HashSet::new()),
            throttle: Throttle::new(settings.io_max_bytes_per_second),
            map_bytes: settings.dedupe_buffer_bytes / settings.threads as u64,
        });
        // Dropped (the broker aborts this task at shutdown), the set aborts the threads.
        let mut threads = tokio::task::JoinSet::new();
        for _ in 0..settings.threads {
            threads.spawn(self.clone().cleaner_thread(
                shared.clone(),
                settings.backoff,
                stop.clone(),
            ));
        }
        while let Some(done) = threads.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "a log cleaner thread failed");
            }
        }
    }

    async fn cleaner_thread(
        self: Arc<Self>,
        shared: Arc<Shared>,
        backoff: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            if *stop.borrow() {
                return;
            }
            let (this, shared2) = (self.clone(), shared.clone());
            let cleaned = tokio::task::spawn_blocking(move || this.clean_dirtiest(&shared2))
                .await
                .unwrap_or(false);
            if cleaned {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// One pass on the dirtiest log due for cleaning; whether one ran.
    pub(super) fn clean_dirtiest(&self, shared: &Shared) -> bool {
        let now = now_ms();
        let Some((partition, config)) = self.pick_dirtiest(shared, now) else {
            return false;
        };
        let key = (partition.topic_id(), partition.index());
        let name = format!("{}-{}", partition.topic(), partition.index());
        let log = partition.log();
        let result = log.clean(&config, now, &mut |bytes| shared.throttle.consume(bytes));
        lock(&shared.busy).remove(&key);
        match result {
            Ok(Some(stats)) => {
                tracing::info!(
                    partition = %name, segments = stats.segments, before = stats.bytes_before,
                    after = stats.bytes_after, keys = stats.keys, cleaned_to = stats.cleaned_to,
                    aborted = stats.aborted, "log cleaner pass"
                );
                true
            }
            Ok(None) => false,
            Err(e) => {
                partition.note_log_error(&e);
                if !e.is_storage_failure() {
                    lock(&shared.uncleanable).insert(key);
                }
                tracing::error!(partition = %name, error = %e, "cleaning the log failed; it is not cleaned again until restart");
                false
            }
        }
    }

    /// The compacted log most due for cleaning, marked busy.
    fn pick_dirtiest(
        &self,
        shared: &Shared,
        now: i64,
    ) -> Option<(Arc<Partition>, kraft_log::CompactionConfig)> {
        let mut busy = lock(&shared.busy);
        let uncleanable = lock(&shared.uncleanable).clone();
        let mut best: Option<((bool, f64), Arc<Partition>, kraft_log::CompactionConfig)> = None;
        for p in self.partitions() {
            let key = (p.topic_id(), p.index());
            if p.is_offline() || busy.contains(&key) || uncleanable.contains(&key) {
                continue;
            }
            let Some(mut config) = p.log().config().compaction else {
                continue;
            };
            config.dedupe_buffer_bytes = shared.map_bytes;
            let Some(cleanable) = p.log().cleanable(&config, now) else {
                continue;
            };
            if !cleanable.due(&config) {
                continue;
            }
            let score = (cleanable.overdue, cleanable.dirty_ratio);
            if best.as_ref().is_none_or(|(b, _, _)| score > *b) {
                best = Some((score, p, config));
            }
        }
        let (_, partition, config) = best?;
        busy.insert((partition.topic_id(), partition.index()));
        Some((partition, config))
    }
}

/// Paces the cleaner's I/O to a rate shared by all threads: a thread that
/// got ahead sleeps until the bytes so far fit the rate (blocking threads
/// only; this is the throttle, not a synchronization).
pub(super) struct Throttle {
    bytes_per_second: f64,
    window: Mutex<(Instant, f64)>,
}

impl Throttle {
    pub(super) fn new(bytes_per_second: f64) -> Throttle {
        Throttle {
            bytes_per_second,
            window: Mutex::new((Instant::now(), 0.0)),
        }
    }

    fn consume(&self, bytes: u64) {
        if !self.bytes_per_second.is_finite() || self.bytes_per_second <= 0.0 {
            return;
        }
        let wait = {
            let mut window = lock(&self.window);
            let elapsed = window.0.elapsed().as_secs_f64();
            window.1 += bytes as f64;
            let due = window.1 / self.bytes_per_second;
            if elapsed >= 1.0 && due <= elapsed {
                *window = (Instant::now(), 0.0);
            }
            due - elapsed
        };
        if wait > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(wait.min(1.0)));
        }
    }
}
