//! The nemesis' checker, run once every fault is healed and the producers
//! have stopped. Each check returns `Err(what is wrong)` so the caller can
//! print it with the seed and the schedule.
//!
//! In: the healed cluster and the producers' [`Acks`]. Out: a [`Tally`] of
//! what was acknowledged and what was lost, or the first violated rule:
//! - every ISR is whole again (no reassignment left, a leader in place);
//! - no broker leads a partition the metadata does not give it;
//! - every replica's log is byte-identical to its leader's below the high
//!   watermark;
//! - every acks=all acknowledgement is read back at its offset, in order.

use std::collections::{BTreeMap, HashMap};

use kraft_broker::replica::partition::Partition;
use kraft_broker::replica::PartitionLookup;
use kraft_log::ReadBound;
use kraft_metadata::{MetadataImage, PartitionRegistration};
use kraft_testkit::{wait_for, TestCluster};
use rdkafka::Message;

use super::common::consume;
use super::schedule::{PARTITIONS, TOPIC};
use super::workload::{lock, Ack, Acks};

/// What the producers got acknowledged and what of it is gone (or out of
/// order).
#[derive(Debug, Default)]
pub struct Tally {
    pub all_acked: usize,
    pub all_lost: usize,
    pub one_acked: usize,
    pub one_lost: usize,
    /// The first violations of the acks=all rules, and how many more.
    pub problems: Vec<String>,
    pub more_problems: usize,
}

/// The committed image of the active controller.
async fn controller_image(cluster: &TestCluster) -> Option<std::sync::Arc<MetadataImage>> {
    cluster.image(cluster.active_controller().await?)
}

/// Waits until every partition of every topic has its whole replica set in
/// sync, no reassignment in progress, and a leader.
pub async fn isr_whole(cluster: &TestCluster) -> Result<(), String> {
    let short = |image: &MetadataImage| -> Vec<String> {
        let mut short = Vec::new();
        for topic in image.topics().topics() {
            for (index, p) in topic.partitions().iter() {
                if !whole(p) {
                    short.push(format!("{}-{index}: {p:?}", topic.name()));
                }
            }
        }
        short
    };
    let waited = wait_for("every ISR to be whole", || async {
        let image = controller_image(cluster).await?;
        short(&image).is_empty().then_some(())
    })
    .await;
    match waited {
        Ok(()) => Ok(()),
        Err(e) => {
            let Some(image) = controller_image(cluster).await else {
                return Err(format!("{e}; no active controller"));
            };
            let mut report = format!("{e}; short: {:?}", short(&image));
            for topic in image.topics().topics() {
                for (index, p) in topic.partitions().iter().filter(|(_, p)| !whole(p)) {
                    report += &format!("\n  {}-{index} replicas:", topic.name());
                    for r in &p.replicas {
                        report += &match hosted(cluster, *r, topic.id(), *index) {
                            Some(h) => format!(
                                " {r} (log end {}, high watermark {}, leader {}, epoch {})",
                                h.log().log_end_offset(),
                                h.high_watermark(),
                                h.replica_state().registration.leader,
                                h.replica_state().registration.leader_epoch
                            ),
                            None => format!(" {r} (not hosted)"),
                        };
                    }
                }
            }
            Err(report)
        }
    }
}

fn whole(p: &PartitionRegistration) -> bool {
    let (mut isr, mut replicas) = (p.isr.clone(), p.replicas.clone());
    isr.sort_unstable();
    replicas.sort_unstable();
    isr == replicas
        && p.adding_replicas.is_empty()
        && p.removing_replicas.is_empty()
        && replicas.contains(&p.leader)
}

/// Waits until every running broker has applied the controller's image,
/// then checks that each leads exactly what that image gives it.
pub async fn leaders_match(cluster: &TestCluster) -> Result<(), String> {
    let image = controller_image(cluster)
        .await
        .ok_or("no active controller")?;
    for id in cluster.broker_ids() {
        let Some(broker) = cluster.broker(id) else {
            continue;
        };
        let desc = format!("broker {id} to apply metadata offset {}", image.offset());
        wait_for(&desc, || async {
            (broker.cache().offset() >= image.offset()).then_some(())
        })
        .await
        .map_err(|e| e.to_string())?;
        let image = broker.cache().image();
        for p in broker.replicas().partitions() {
            if !p.is_leader() {
                continue;
            }
            let reg = image.topics().partition(p.topic_id(), p.index());
            if reg.is_none_or(|r| r.leader != id || !r.replicas.contains(&id)) {
                return Err(format!(
                    "broker {id} leads {}-{} but the metadata says {reg:?}",
                    p.topic(),
                    p.index()
                ));
            }
        }
    }
    Ok(())
}

fn hosted(
    cluster: &TestCluster,
    broker: i32,
    topic: uuid::Uuid,
    index: i32,
) -> Option<std::sync::Arc<Partition>> {
    match cluster.broker(broker)?.replicas().lookup(topic, index) {
        PartitionLookup::Hosted(p) => Some(p),
        _ => None,
    }
}

/// Whole batches of `p` from its log start up to `end` (exclusive).
fn bytes_below(p: &Partition, end: i64) -> Result<Vec<u8>, String> {
    let log = p.log();
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while next < end {
        let read = log
            .read(next, 1 << 20, ReadBound::LogEnd, true)
            .map_err(|e| format!("reading {p:?} at {next}: {e}"))?;
        let mut rest = &read.records[..];
        let before = next;
        while rest.len() >= 27 && next < end {
            let base = i64::from_be_bytes(rest[0..8].try_into().unwrap_or_default());
            let len = i32::from_be_bytes(rest[8..12].try_into().unwrap_or_default());
            let delta = i32::from_be_bytes(rest[23..27].try_into().unwrap_or_default());
            let size = 12 + usize::try_from(len).unwrap_or(0);
            let last = base + i64::from(delta);
            if size > rest.len() || last >= end {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size..];
            next = last + 1;
        }
        if next == before {
            return Err(format!("{p:?}: no whole batch below {end} at {next}"));
        }
    }
    Ok(out)
}

/// Checks that every in-sync replica of every partition of the topic holds
/// the same bytes as its leader below the leader's high watermark (replicas
/// out of the ISR are [`isr_whole`]'s business). Returns the high
/// watermarks, and what differs.
pub async fn replicas_identical(
    cluster: &TestCluster,
) -> Result<(BTreeMap<i32, i64>, Vec<String>), String> {
    let image = controller_image(cluster)
        .await
        .ok_or("no active controller")?;
    let topic = image
        .topics()
        .topic_by_name(TOPIC)
        .ok_or("the topic is gone")?;
    let mut watermarks = BTreeMap::new();
    let mut differ = Vec::new();
    for index in 0..PARTITIONS {
        let reg = topic.partition(index).ok_or("a partition is gone")?;
        let leader = hosted(cluster, reg.leader, topic.id(), index)
            .ok_or_else(|| format!("leader {} does not host {TOPIC}-{index}", reg.leader))?;
        let hw = leader.high_watermark();
        let expected = bytes_below(&leader, hw)?;
        watermarks.insert(index, hw);
        for replica in reg.isr.iter().filter(|r| **r != reg.leader) {
            let desc = format!("broker {replica} to copy {TOPIC}-{index} up to {hw}");
            let follower = wait_for(&desc, || async {
                hosted(cluster, *replica, topic.id(), index)
                    .filter(|p| p.log().log_end_offset() >= hw)
            })
            .await;
            let follower = match follower {
                Ok(follower) => follower,
                Err(e) => {
                    differ.push(e.to_string());
                    continue;
                }
            };
            let got = bytes_below(&follower, hw)?;
            if got != expected {
                let at = got.iter().zip(&expected).position(|(a, b)| a != b);
                differ.push(format!(
                    "{TOPIC}-{index}: broker {replica}'s log differs from leader {}'s below \
                     the high watermark {hw} ({} vs {} bytes, first difference at byte {at:?})",
                    reg.leader,
                    got.len(),
                    expected.len()
                ));
            }
        }
    }
    Ok((watermarks, differ))
}

/// Reads the topic back through a consumer and checks every acks=all
/// acknowledgement: its value at its offset, and each partition's offsets
/// rising in the order they were acknowledged. acks=1 losses are counted,
/// not failed. The tally's `problems` name the first few violations.
pub async fn acks_read_back(
    bootstrap: &str,
    watermarks: &BTreeMap<i32, i64>,
    acks: &Acks,
) -> Tally {
    let total: i64 = watermarks.values().sum();
    let consumed = consume(bootstrap, TOPIC, PARTITIONS, total as usize).await;
    let stored: HashMap<(i32, i64), String> = consumed
        .iter()
        .map(|m| {
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            ((m.partition(), m.offset()), value)
        })
        .collect();
    let found = |a: &Ack| stored.get(&(a.partition, a.offset)) == Some(&a.value);
    let all = lock(&acks.all).clone();
    let one = lock(&acks.one).clone();
    let mut tally = Tally {
        all_acked: all.len(),
        one_acked: one.len(),
        one_lost: one.iter().filter(|a| !found(a)).count(),
        ..Tally::default()
    };
    let mut previous: HashMap<i32, i64> = HashMap::new();
    for ack in &all {
        let last = previous.insert(ack.partition, ack.offset).unwrap_or(-1);
        let problem = if !found(ack) {
            tally.all_lost += 1;
            format!(
                "acks=all write {} acknowledged at {TOPIC}-{} offset {} is not there (found {:?})",
                ack.value,
                ack.partition,
                ack.offset,
                stored.get(&(ack.partition, ack.offset))
            )
        } else if ack.offset <= last {
            format!(
                "acks=all write {} at offset {} is not after the write acknowledged before it ({last})",
                ack.value, ack.offset
            )
        } else {
            continue;
        };
        if tally.problems.len() < 5 {
            tally.problems.push(problem);
        } else {
            tally.more_problems += 1;
        }
    }
    tally
}
