//! Log maintenance for every hosted partition, on blocking threads so no
//! fsync or file deletion runs on a runtime worker: the flush policy
//! (`flush.messages`, `flush.ms`, deferred fsyncs of rolled segments),
//! retention (`retention.ms`, `retention.bytes`, every
//! `log.retention.check.interval.ms`, with the expiry of idempotent
//! producers by `producer.id.expiration.ms`) and high-watermark checkpoints (every
//! `replica.high.watermark.checkpoint.interval.ms`).
//!
//! In: the replica manager's partitions, each tick. Out: fsyncs, deleted
//! segments (the log start offset moves) and checkpoint files. A storage
//! error takes the partition's log dir offline (`log_dirs.rs`): no
//! partition of that dir is touched again, so a failed fsync is never
//! retried.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{now_ms, ReplicaManager};

impl ReplicaManager {
    /// Flush policy, retention and high-watermark checkpoints, until
    /// `stop` turns true.
    pub async fn run_maintenance(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let tick = Duration::from_millis(200);
        let mut last_retention = Instant::now();
        let mut last_checkpoint = Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let retention = last_retention.elapsed() >= self.config.retention_check_interval;
            let checkpoint = last_checkpoint.elapsed() >= self.config.checkpoint_interval;
            if retention {
                last_retention = Instant::now();
            }
            if checkpoint {
                last_checkpoint = Instant::now();
            }
            let partitions = self.partitions();
            let expiration_ms =
                i64::try_from(self.config.producer_id_expiration.as_millis()).unwrap_or(i64::MAX);
            let work = tokio::task::spawn_blocking(move || {
                let now = now_ms();
                for p in partitions {
                    // A partition of a dir that failed earlier in this tick.
                    if p.is_offline() {
                        continue;
                    }
                    let log = p.log();
                    let result = (|| {
                        if log.flush_due(now) {
                            log.flush()?;
                        }
                        if retention {
                            let deleted = log.enforce_retention(now)?;
                            if deleted > 0 {
                                tracing::info!(partition = %format!("{}-{}", p.topic(), p.index()), deleted, start = log.log_start_offset(), "retention deleted segments");
                            }
                            let expired = log.remove_expired_producers(now, expiration_ms);
                            if expired > 0 {
                                tracing::debug!(partition = %format!("{}-{}", p.topic(), p.index()), expired, "expired idempotent producers");
                            }
                        }
                        if checkpoint {
                            log.checkpoint()?;
                        }
                        Ok::<(), kraft_log::LogError>(())
                    })();
                    if let Err(e) = result {
                        p.note_log_error(&e);
                        tracing::error!(partition = %format!("{}-{}", p.topic(), p.index()), error = %e, "log maintenance failed");
                    }
                }
            });
            if let Err(e) = work.await {
                tracing::error!(error = %e, "log maintenance task failed");
            }
        }
    }
}
