//! A failed fsync takes the log offline and is never retried: the flush
//! policy stops asking for it, later flushes and writes are refused without
//! touching the disk, and reopening recovers what is really there.

use super::{fill, open, read_all, simple_batch};
use crate::{LogConfig, LogError, ReadBound};

fn flush_every_message() -> LogConfig {
    LogConfig {
        flush_interval_messages: Some(1),
        ..LogConfig::default()
    }
}

#[test]
fn a_failed_fsync_takes_the_log_offline_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), flush_every_message());
    fill(&log, 2, 2, 0, 0);
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), 4);

    fill(&log, 1, 2, 10, 0);
    log.disk_fault().fail_syncs();
    assert!(log.flush_due(i64::MAX), "one unflushed batch");
    let err = log.flush().unwrap_err();
    assert!(err.is_storage_failure(), "{err}");
    assert_eq!(log.disk_fault().failed_syncs(), 1);

    // Offline: the flush policy does not ask again, an explicit flush is
    // refused without an fsync, and so are writes and checkpoints.
    assert!(log.is_offline(), "a failed fsync leaves the log offline");
    assert!(
        !log.flush_due(i64::MAX),
        "the failed fsync is not due again"
    );
    assert!(matches!(log.flush(), Err(LogError::Offline { .. })));
    assert!(matches!(
        log.append_as_leader(simple_batch(1, 20, 40), 0, 20),
        Err(LogError::Offline { .. })
    ));
    log.checkpoint().unwrap();
    log.close().unwrap();
    assert_eq!(
        log.disk_fault().failed_syncs(),
        1,
        "no fsync was tried after the failure"
    );
    assert_eq!(
        log.recovery_point(),
        4,
        "nothing past the failure counts as synced"
    );
    drop(log);

    // Reopening recovers the log from the disk (here intact).
    let log = open(dir.path(), flush_every_message());
    assert_eq!(read_all(&log, 0, ReadBound::LogEnd).len(), 3);
    assert!(!log.is_offline());
}
