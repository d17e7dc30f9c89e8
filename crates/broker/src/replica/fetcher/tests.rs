//! The follower's side of a diverging-epoch fetch: a real leader partition
//! answers the follower's fetches (`read_for_follower`, as the Fetch handler
//! does) and [`apply`] acts on the answer, round after round, until the two
//! logs hold the same batches.

use crate::test_batches::value_batch;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{EpochEndOffset, PartitionData};
use kraft_log::{LogConfig, PartitionLog, ReadBound};
use kraft_metadata::PartitionRegistration;
use uuid::Uuid;

use super::{apply, truncation_offset, Followed};
use crate::replica::partition::FollowerRead;
use crate::replica::{partition_settings, LogDefaults, Partition};

const LEADER: i32 = 1;
const FOLLOWER: i32 = 2;
/// The leader epoch both replicas are in now.
const CURRENT_EPOCH: i32 = 3;

/// A replica on `node_id`, following or leading in the current epoch.
fn partition(node_id: i32, log: PartitionLog) -> Arc<Partition> {
    let partition = Partition::new(
        Uuid::from_u128(7),
        "t".to_string(),
        0,
        node_id,
        log,
        partition_settings(None, &LogDefaults::new()),
        Arc::new(AtomicBool::new(true)),
    );
    partition.set_state(
        PartitionRegistration {
            replicas: vec![LEADER, FOLLOWER],
            isr: vec![LEADER],
            leader: LEADER,
            leader_epoch: CURRENT_EPOCH,
            partition_epoch: 1,
            ..Default::default()
        },
        0,
    );
    partition
}

/// Appends batches of the given record counts, as leader in `epoch`.
fn append(log: &PartitionLog, epoch: i32, sizes: &[usize]) {
    for &count in sizes {
        log.append_as_leader(value_batch(count, 1_000), epoch, 0)
            .expect("append as leader");
    }
}

/// A follower log holding the leader's first `bytes` bytes of batches.
fn copy_of_leader(leader_log: &PartitionLog, dir: &std::path::Path, bytes: usize) -> PartitionLog {
    let follower_log = PartitionLog::open(dir, LogConfig::default()).unwrap();
    let shared = leader_log
        .read(0, 1 << 20, ReadBound::LogEnd, true)
        .unwrap()
        .records
        .slice(..bytes);
    follower_log.append_as_follower(shared).unwrap();
    follower_log
}

/// The leader and follower partitions over the two logs, and the follower
/// as its fetcher holds it.
fn replicas(
    leader_log: PartitionLog,
    follower_log: PartitionLog,
) -> (Arc<Partition>, Arc<Partition>, Followed) {
    let leader = partition(LEADER, leader_log);
    let follower = partition(FOLLOWER, follower_log);
    let followed = Followed {
        partition: follower.clone(),
        leader_epoch: CURRENT_EPOCH,
    };
    (leader, follower, followed)
}

/// Every batch of `log`, oldest first, as stored.
fn all_batches(log: &PartitionLog) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let records = log
            .read(offset, 1 << 20, ReadBound::LogEnd, true)
            .expect("read")
            .records;
        for item in kraft_log::batch::batches(&records) {
            let (header, range) = item.expect("a stored batch");
            out.push(records.slice(range));
            offset = header.next_offset();
        }
    }
    out
}

/// The leader's answer to the follower's next fetch, as the Fetch handler
/// encodes it.
fn fetch(leader: &Partition, follower: &Partition) -> PartitionData {
    let log = follower.log();
    let read = leader
        .read_for_follower(
            FOLLOWER,
            log.log_end_offset(),
            log.latest_epoch().unwrap_or(-1),
            CURRENT_EPOCH,
            1 << 20,
            true,
            0,
        )
        .expect("the leader serves the follower");
    match read {
        FollowerRead::Records(result) => PartitionData::default()
            .with_high_watermark(result.high_watermark)
            .with_log_start_offset(result.log_start_offset)
            .with_records(Some(result.records)),
        FollowerRead::Diverging {
            epoch,
            end_offset,
            high_watermark,
            log_start_offset,
        } => PartitionData::default()
            .with_high_watermark(high_watermark)
            .with_log_start_offset(log_start_offset)
            .with_diverging_epoch(
                EpochEndOffset::default()
                    .with_epoch(epoch)
                    .with_end_offset(end_offset),
            )
            .with_records(Some(Bytes::new())),
    }
}

/// Fetches until the follower's log ends where the leader's does, at most
/// `rounds` times; then the two logs must hold the same batches.
fn catch_up(leader: &Partition, followed: &Followed, rounds: usize) {
    let follower = &followed.partition;
    for _ in 0..rounds {
        if follower.log().log_end_offset() == leader.log().log_end_offset()
            && follower.log().latest_epoch() == leader.log().latest_epoch()
        {
            break;
        }
        apply(followed, fetch(leader, follower)).expect("apply the fetch");
    }
    assert_eq!(
        follower.log().epoch_entries(),
        leader.log().epoch_entries(),
        "after {rounds} fetches the follower's epochs are the leader's"
    );
    assert_eq!(
        all_batches(follower.log()),
        all_batches(leader.log()),
        "after {rounds} fetches the follower holds the leader's batches"
    );
}

/// A follower that never saw the leader's epoch truncates to the end of
/// its own largest epoch below it, when that comes first: follower epochs
/// [(0,0),(2,5)] and log end 8, leader epochs [(0,0),(1,5),(3,7)]; the
/// leader answers "epoch 1 ends at 7", and the follower's epoch-2 batches
/// at 5, 6 and 7 all conflict.
#[test]
fn a_follower_without_the_diverging_epoch_truncates_to_its_own_end_of_the_epoch_below() {
    let leader_dir = tempfile::tempdir().unwrap();
    let leader_log = PartitionLog::open(leader_dir.path(), LogConfig::default()).unwrap();
    append(&leader_log, 0, &[5]);
    append(&leader_log, 1, &[1, 1]);
    append(&leader_log, 3, &[1]);
    assert_eq!(leader_log.epoch_entries(), vec![(0, 0), (1, 5), (3, 7)]);

    let follower_dir = tempfile::tempdir().unwrap();
    let follower_log = copy_of_leader(
        &leader_log,
        follower_dir.path(),
        value_batch(5, 1_000).len(),
    );
    append(&follower_log, 2, &[1, 1, 1]);
    follower_log.set_high_watermark(5);
    assert_eq!(follower_log.epoch_entries(), vec![(0, 0), (2, 5)]);
    assert_eq!(follower_log.log_end_offset(), 8);

    let (leader, follower, followed) = replicas(leader_log, follower_log);

    let answer = fetch(&leader, &follower);
    assert_eq!(
        (
            answer.diverging_epoch.epoch,
            answer.diverging_epoch.end_offset
        ),
        (1, 7),
        "the leader's answer"
    );
    apply(&followed, answer).unwrap();
    assert_eq!(
        follower.log().log_end_offset(),
        5,
        "the follower must truncate to min(leader's end of epoch 1 = 7, its own end of epoch 0 = 5)"
    );
    assert_eq!(follower.log().epoch_entries(), vec![(0, 0)]);
    assert_eq!(
        all_batches(follower.log()),
        all_batches(leader.log())[..1],
        "the follower's epoch-2 batches at 5..=7 are gone"
    );
    catch_up(&leader, &followed, 4);
}

/// A follower holding the leader's epoch but ending it earlier truncates to
/// its own end of that epoch: follower epochs [(0,0),(1,5),(2,7)] and log
/// end 9, leader epochs [(0,0),(1,5),(3,9)]; the leader answers "epoch 1
/// ends at 9", the follower's epoch 1 ends at 7 and its epoch-2 batches at
/// 7 and 8 conflict.
#[test]
fn a_follower_with_the_diverging_epoch_truncates_to_its_own_end_of_it() {
    let leader_dir = tempfile::tempdir().unwrap();
    let leader_log = PartitionLog::open(leader_dir.path(), LogConfig::default()).unwrap();
    append(&leader_log, 0, &[5]);
    append(&leader_log, 1, &[2, 1, 1]);
    append(&leader_log, 3, &[1]);
    assert_eq!(leader_log.epoch_entries(), vec![(0, 0), (1, 5), (3, 9)]);

    let follower_dir = tempfile::tempdir().unwrap();
    let shared = value_batch(5, 1_000).len() + value_batch(2, 1_000).len();
    let follower_log = copy_of_leader(&leader_log, follower_dir.path(), shared);
    append(&follower_log, 2, &[1, 1]);
    assert_eq!(follower_log.epoch_entries(), vec![(0, 0), (1, 5), (2, 7)]);
    assert_eq!(follower_log.log_end_offset(), 9);

    let (leader, follower, followed) = replicas(leader_log, follower_log);

    let answer = fetch(&leader, &follower);
    assert_eq!(
        (
            answer.diverging_epoch.epoch,
            answer.diverging_epoch.end_offset
        ),
        (1, 9),
        "the leader's answer"
    );
    apply(&followed, answer).unwrap();
    assert_eq!(
        follower.log().log_end_offset(),
        7,
        "the follower must truncate to min(leader's end of epoch 1 = 9, its own end of epoch 1 = 7)"
    );
    assert_eq!(
        all_batches(follower.log()),
        all_batches(leader.log())[..2],
        "the follower's epoch-2 batches at 7 and 8 are gone"
    );
    catch_up(&leader, &followed, 4);
}

/// The edges of [`truncation_offset`]: no end offset from the leader means
/// no truncation; an epoch the follower knows nothing about at or below
/// leaves the leader's offset, capped at the follower's log end.
#[test]
fn truncation_offset_edges() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(truncation_offset(&log, 1, 3), Some(0), "empty log");
    append(&log, 2, &[4]);
    append(&log, 4, &[4]);
    assert_eq!(truncation_offset(&log, 1, -1), None, "no end offset");
    assert_eq!(
        truncation_offset(&log, -1, 3),
        Some(3),
        "undefined epoch: the leader's offset"
    );
    assert_eq!(
        truncation_offset(&log, 1, 3),
        Some(0),
        "below every epoch: the start of the first"
    );
    assert_eq!(truncation_offset(&log, 3, 6), Some(4), "own end of epoch 2");
    assert_eq!(
        truncation_offset(&log, 4, 20),
        Some(8),
        "never past the log end"
    );
    assert_eq!(
        truncation_offset(&log, 4, 6),
        Some(6),
        "the leader's end first"
    );
}

/// A follower whose high watermark is above the point where it diverges
/// from the leader follows the leader anyway, as Kafka's fetcher does
/// (with a warning). A zombie leader, cut off with this follower after the
/// controller had moved leadership away, could advance both their high
/// watermarks over a stale ISR; the data above the leader's end of the
/// shared epoch is not on the leader, so keeping it leaves the follower
/// diverged for ever, never back in the ISR (found by the nemesis, seed
/// 1001). Follower epochs [(0,0),(2,5)], log end 8, high watermark 7;
/// leader epochs [(0,0),(3,5)]: the follower must end up with the
/// leader's batches.
#[test]
fn a_follower_follows_the_leader_below_its_own_high_watermark() {
    let leader_dir = tempfile::tempdir().unwrap();
    let leader_log = PartitionLog::open(leader_dir.path(), LogConfig::default()).unwrap();
    append(&leader_log, 0, &[5]);
    append(&leader_log, 3, &[1, 1]);
    assert_eq!(leader_log.epoch_entries(), vec![(0, 0), (3, 5)]);

    let follower_dir = tempfile::tempdir().unwrap();
    let follower_log = copy_of_leader(
        &leader_log,
        follower_dir.path(),
        value_batch(5, 1_000).len(),
    );
    append(&follower_log, 2, &[1, 1, 1]);
    follower_log.set_high_watermark(7);
    assert_eq!(follower_log.epoch_entries(), vec![(0, 0), (2, 5)]);

    let (leader, follower, followed) = replicas(leader_log, follower_log);
    catch_up(&leader, &followed, 6);
    assert!(
        follower.log().high_watermark() <= follower.log().log_end_offset(),
        "the high watermark came down with the log"
    );
}
