//! When to snapshot the metadata log: after
//! `metadata.log.max.record.bytes.between.snapshots` bytes of committed
//! records, or `metadata.log.max.snapshot.interval.ms` after the last
//! snapshot if anything was committed since.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct SnapshotPolicy {
    max_bytes: u64,
    max_interval: Duration,
    bytes_since: u64,
    last: Instant,
}

impl SnapshotPolicy {
    pub fn new(max_bytes: u64, max_interval: Duration) -> SnapshotPolicy {
        SnapshotPolicy {
            max_bytes,
            max_interval,
            bytes_since: 0,
            last: Instant::now(),
        }
    }

    /// Counts a committed batch of `bytes`.
    pub fn record_committed(&mut self, bytes: usize) {
        self.bytes_since += bytes as u64;
    }

    /// Whether a snapshot is due now.
    pub fn due(&self, now: Instant) -> bool {
        self.bytes_since > 0
            && (self.bytes_since >= self.max_bytes
                || now.duration_since(self.last) >= self.max_interval)
    }

    /// A snapshot was started (or loaded) now; count from zero.
    pub fn reset(&mut self, now: Instant) {
        self.bytes_since = 0;
        self.last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_after_bytes_or_interval_but_never_when_idle() {
        let start = Instant::now();
        let mut policy = SnapshotPolicy::new(100, Duration::from_secs(60));
        assert!(!policy.due(start));
        assert!(
            !policy.due(start + Duration::from_secs(120)),
            "nothing committed"
        );
        policy.record_committed(99);
        assert!(!policy.due(start));
        assert!(policy.due(start + Duration::from_secs(61)));
        policy.record_committed(1);
        assert!(policy.due(start));
        policy.reset(start);
        assert!(!policy.due(start + Duration::from_secs(61)));
    }
}
