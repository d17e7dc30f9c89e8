//! Unit tests of [`Partition`] as leader: a real log in a temp directory,
//! followers driven through [`Partition::read_for_follower`] (their fetch
//! offset is their log end), ISR changes through [`Partition::isr_change`]
//! and the metadata through [`Partition::set_state`].

use crate::test_batches::value_batch;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kraft_log::{LogConfig, PartitionLog};
use kraft_metadata::PartitionRegistration;
use uuid::Uuid;

use super::{FollowerRead, Partition, PartitionError};
use crate::replica::log_config::PartitionSettings;

const LEADER: i32 = 1;
const LAG_MS: i64 = 30_000;
const NOW: i64 = 1_000_000;

/// A partition led by broker [`LEADER`], with `min.insync.replicas` of
/// `min_isr`, and the temp directory holding its log.
fn leader_partition(min_isr: usize) -> (Arc<Partition>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let log_dir = dir.path().join("t-0");
    let log = PartitionLog::open(&log_dir, LogConfig::default()).expect("open the log");
    let settings = PartitionSettings {
        log: LogConfig::default(),
        min_insync_replicas: min_isr,
        timestamp_after_max_ms: i64::MAX / 2,
    };
    let partition = Partition::new(
        Uuid::new_v4(),
        "t".into(),
        0,
        LEADER,
        log,
        settings,
        Arc::new(AtomicBool::new(true)),
    );
    (partition, dir)
}

fn registration(replicas: &[i32], isr: &[i32], partition_epoch: i32) -> PartitionRegistration {
    PartitionRegistration {
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        leader: LEADER,
        leader_epoch: 1,
        partition_epoch,
        ..Default::default()
    }
}

/// Appends one batch as leader with acks=all; returns the offset a
/// produce of it waits for (its last offset + 1) and the leader epoch.
fn produce(p: &Partition) -> (i64, i32) {
    let (info, epoch) = p
        .append_as_leader(value_batch(1, NOW), -1, NOW)
        .expect("append");
    (info.last_offset + 1, epoch)
}

/// `follower` fetches at `offset` (its log end).
fn fetch(p: &Partition, follower: i32, offset: i64) {
    let read = p
        .read_for_follower(follower, offset, -1, 1, 1 << 20, true, NOW)
        .expect("follower fetch");
    assert!(matches!(read, FollowerRead::Records(_)), "{read:?}");
}

/// What an acks=all produce waiting for `offset` is told now (without
/// waiting: REQUEST_TIMED_OUT means it would still wait).
async fn produce_outcome(p: &Partition, offset: i64, epoch: i32) -> i16 {
    p.wait_for_replication(offset, epoch, tokio::time::Instant::now())
        .await
}

/// Issue 11, defect 1: while the ISR expansion that adds a rejoining
/// follower is in flight, the high watermark must not pass that follower's
/// log end, nor may an acks=all produce be acknowledged without it. The
/// controller may commit the expansion at any moment, after which the
/// follower is eligible for election.
#[tokio::test]
async fn a_pending_isr_expansion_holds_the_high_watermark_for_the_joining_follower() {
    let (p, _dir) = leader_partition(1);
    // Leader 1, ISR {1, 2}; follower 3 is out of the ISR.
    assert!(p.set_state(registration(&[1, 2, 3], &[1, 2], 1), NOW));
    produce(&p);
    fetch(&p, 2, 1);
    assert_eq!(p.high_watermark(), 1);
    // Follower 3 catches up and the leader asks to add it.
    fetch(&p, 3, 1);
    let change = p.isr_change(NOW, LAG_MS).expect("an ISR expansion");
    assert_eq!(change.new_isr, vec![1, 2, 3]);

    // More is written; follower 2 has it, follower 3 not yet.
    let (offset, epoch) = produce(&p);
    fetch(&p, 2, offset);
    assert_eq!(
        p.high_watermark(),
        1,
        "the high watermark passed the log end of follower 3 while its ISR expansion is pending"
    );
    assert_eq!(
        produce_outcome(&p, offset, epoch).await,
        ResponseError::RequestTimedOut.code(),
        "an acks=all produce was acknowledged before follower 3 (pending in the ISR) had it"
    );

    // Follower 3 gets it: now the write is on the maximal ISR.
    fetch(&p, 3, offset);
    assert_eq!(p.high_watermark(), offset);
    assert_eq!(produce_outcome(&p, offset, epoch).await, 0);

    // The controller commits {1, 2, 3}; nothing moves backwards.
    assert!(!p.set_state(registration(&[1, 2, 3], &[1, 2, 3], 2), NOW));
    assert_eq!(p.high_watermark(), offset);
}

/// A replica being removed from the ISR still holds the high watermark back
/// until the shrink commits: the controller may refuse it.
#[tokio::test]
async fn a_pending_isr_shrink_still_counts_the_leaving_follower() {
    let (p, _dir) = leader_partition(1);
    assert!(p.set_state(registration(&[1, 2, 3], &[1, 2, 3], 1), NOW));
    produce(&p);
    fetch(&p, 2, 1);
    fetch(&p, 3, 1);
    assert_eq!(p.high_watermark(), 1);
    let (offset, epoch) = produce(&p);
    fetch(&p, 2, offset);
    // Follower 3 has not caught up for longer than the lag allows.
    let later = NOW + LAG_MS + 1;
    let read = p
        .read_for_follower(2, offset, -1, 1, 1 << 20, true, later)
        .expect("follower fetch");
    assert!(matches!(read, FollowerRead::Records(_)));
    let change = p.isr_change(later, LAG_MS).expect("an ISR shrink");
    assert_eq!(change.new_isr, vec![1, 2]);
    assert_eq!(
        p.high_watermark(),
        1,
        "follower 3 left before the shrink committed"
    );
    assert_eq!(
        produce_outcome(&p, offset, epoch).await,
        ResponseError::RequestTimedOut.code()
    );
    // The shrink commits: follower 3 no longer holds it back.
    assert!(!p.set_state(registration(&[1, 2, 3], &[1, 2], 2), later));
    assert_eq!(p.high_watermark(), offset);
    assert_eq!(produce_outcome(&p, offset, epoch).await, 0);
}

/// `min.insync.replicas` as Kafka checks it: the append against the
/// committed ISR, the acknowledgement against the maximal ISR.
#[tokio::test]
async fn min_insync_replicas_counts_the_committed_isr_before_and_the_maximal_after() {
    let (p, _dir) = leader_partition(2);
    // Leader alone in the ISR: an acks=all append is refused up front, even
    // with an expansion in flight.
    assert!(p.set_state(registration(&[1, 2], &[1], 1), NOW));
    fetch(&p, 2, 0);
    let change = p.isr_change(NOW, LAG_MS).expect("an ISR expansion");
    assert_eq!(change.new_isr, vec![1, 2]);
    let refused = p.append_as_leader(value_batch(1, NOW), -1, NOW);
    assert!(
        matches!(
            refused,
            Err(PartitionError::NotEnoughReplicas { isr: 1, min: 2 })
        ),
        "{refused:?}"
    );

    // With {1, 2} committed an append is taken; follower 2 then falls out
    // of the ISR, and back in (pending) before it fetches the batch.
    assert!(!p.set_state(registration(&[1, 2], &[1, 2], 2), NOW));
    let (offset, epoch) = produce(&p);
    assert!(!p.set_state(registration(&[1, 2], &[1], 3), NOW));
    assert_eq!(p.high_watermark(), offset);
    assert_eq!(
        produce_outcome(&p, offset, epoch).await,
        ResponseError::NotEnoughReplicasAfterAppend.code()
    );
    fetch(&p, 2, offset);
    p.isr_change(NOW, LAG_MS).expect("an ISR expansion");
    assert_eq!(
        produce_outcome(&p, offset, epoch).await,
        0,
        "the maximal ISR {{1, 2}} meets min.insync.replicas"
    );
}

/// The AlterPartition that adds follower 3 gets no answer (the controller
/// may have committed it all the same): follower 3 keeps holding the high
/// watermark, and the same change is sent again.
#[tokio::test]
async fn an_isr_expansion_without_an_answer_still_holds_the_high_watermark() {
    let (p, _dir) = leader_partition(1);
    assert!(p.set_state(registration(&[1, 2, 3], &[1, 2], 1), NOW));
    produce(&p);
    fetch(&p, 2, 1);
    fetch(&p, 3, 1);
    let change = p.isr_change(NOW, LAG_MS).expect("an ISR expansion");
    assert_eq!(change.new_isr, vec![1, 2, 3]);
    p.isr_change_failed(None);

    let (offset, epoch) = produce(&p);
    fetch(&p, 2, offset);
    assert_eq!(
        p.high_watermark(),
        1,
        "the high watermark passed follower 3 while its expansion may have committed"
    );
    assert_eq!(
        produce_outcome(&p, offset, epoch).await,
        ResponseError::RequestTimedOut.code()
    );
    // Sent again at once, unchanged.
    assert_eq!(p.isr_change(NOW, LAG_MS), Some(change));
    // A stale partition epoch: this broker's metadata is behind, the change
    // may be in it. It waits, then goes again.
    p.isr_change_failed(Some(ResponseError::InvalidUpdateVersion.code().into()));
    assert_eq!(p.high_watermark(), 1);
    assert_eq!(p.isr_change(NOW, LAG_MS), None);
    // The controller refuses it outright: follower 3 no longer counts.
    p.isr_change_failed(Some(ResponseError::IneligibleReplica.code().into()));
    assert_eq!(p.high_watermark(), offset);
    assert_eq!(produce_outcome(&p, offset, epoch).await, 0);
}

/// The controller accepted the change but this broker's metadata has not
/// shown it yet when the change is due again: by then follower 2 lags and
/// follower 3 stopped fetching, yet the change sent again is the same one
/// (the controller has it), and follower 3 still holds the high watermark.
#[tokio::test]
async fn an_isr_change_not_yet_in_the_metadata_is_sent_again_unchanged() {
    let (p, _dir) = leader_partition(1);
    assert!(p.set_state(registration(&[1, 2, 3], &[1, 2], 1), NOW));
    produce(&p);
    fetch(&p, 2, 1);
    fetch(&p, 3, 1);
    let change = p.isr_change(NOW, LAG_MS).expect("an ISR expansion");
    assert_eq!(change.new_isr, vec![1, 2, 3]);

    let later = NOW + LAG_MS + 1;
    let again = p.isr_change(later, LAG_MS).expect("the change sent again");
    assert_eq!(
        again, change,
        "a different ISR change replaced one the controller may have committed"
    );
    let (offset, _) = produce(&p);
    let read = p
        .read_for_follower(2, offset, -1, 1, 1 << 20, true, later)
        .expect("follower fetch");
    assert!(matches!(read, FollowerRead::Records(_)));
    assert_eq!(p.high_watermark(), 1);
}
