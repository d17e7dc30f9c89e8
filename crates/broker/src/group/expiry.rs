//! Offset expiry (`offsets.retention.minutes`, checked every
//! `offsets.retention.check.interval.ms`), by Kafka's rules
//! (`GroupMetadata.removeExpiredOffsets`, `cleanupGroupMetadata`):
//!
//! - a group with members never loses offsets;
//! - an Empty group that had members (it has a protocol type) loses all
//!   its offsets once `retention` has passed since it became Empty (its
//!   state timestamp);
//! - a group used only to store offsets loses each offset once
//!   `retention` has passed since it was committed;
//! - an offset an open transaction also wrote (pending) stays;
//! - an Empty group left with no offsets, nothing pending and no deadline
//!   is removed too.
//!
//! The plan ([`ShardData::plan_expiry`]) is pure; [`Shard::expire_offsets`]
//! writes the tombstones (offset records, and group records for removed
//! groups) to the partition, then forgets what they delete.
//!
//! In: the shard's groups, the retention and the time. Out: tombstones
//! appended to `__consumer_offsets` (acks=all).

use std::sync::Arc;
use std::time::Duration;

use super::records::CoordinatorRecord;
use super::shard::Shard;
use super::shard_data::{GroupEntry, ShardData};
use super::state::GroupState;
use crate::replica::now_ms;

/// What expires in one group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupExpiry {
    pub group: String,
    /// (topic, partition) of each expired offset.
    pub offsets: Vec<(String, i32)>,
    /// Whether the group itself goes (nothing is left in it).
    pub remove_group: bool,
}

/// The offsets of `entry` that have expired at `now`, and whether the
/// group goes with them.
pub fn plan_group(entry: &GroupEntry, retention_ms: i64, now: i64) -> GroupExpiry {
    let group = &entry.group;
    let mut plan = GroupExpiry {
        group: group.id().to_string(),
        ..GroupExpiry::default()
    };
    if group.state() != GroupState::Empty || !group.members().is_empty() {
        return plan;
    }
    let had_members = group.protocol_type().is_some();
    plan.offsets = entry
        .offsets
        .iter()
        .filter(|((topic, partition), committed)| {
            let base = if had_members {
                group.state_timestamp()
            } else {
                committed.value.commit_timestamp
            };
            base.saturating_add(retention_ms) <= now && !entry.has_pending(topic, *partition)
        })
        .map(|(key, _)| key.clone())
        .collect();
    plan.remove_group = plan.offsets.len() == entry.offsets.len()
        && entry.pending.is_empty()
        && group.next_deadline().is_none();
    plan
}

impl ShardData {
    /// What expires at `now` in every group of the shard (groups with
    /// nothing to do are left out).
    pub fn plan_expiry(&self, retention_ms: i64, now: i64) -> Vec<GroupExpiry> {
        let mut plans: Vec<GroupExpiry> = self
            .groups
            .values()
            .map(|e| plan_group(e, retention_ms, now))
            .map(|mut p| {
                // A commit of the same partition on its way to the ISR
                // would come after the tombstone in memory but before it
                // in the log: leave that offset for the next check.
                let before = p.offsets.len();
                p.offsets
                    .retain(|(t, i)| !self.is_committing(&p.group, t, *i));
                p.remove_group &= p.offsets.len() == before;
                p
            })
            .filter(|p| !p.offsets.is_empty() || p.remove_group)
            .collect();
        plans.sort_by(|a, b| a.group.cmp(&b.group));
        plans
    }

    /// Forgets what `plans` expire (once their tombstones are written).
    pub fn apply_expiry(&mut self, plans: &[GroupExpiry]) {
        for plan in plans {
            if plan.remove_group {
                self.groups.remove(&plan.group);
                continue;
            }
            if let Some(entry) = self.groups.get_mut(&plan.group) {
                for key in &plan.offsets {
                    entry.offsets.remove(key);
                }
            }
        }
    }
}

/// The tombstones that carry out `plans`.
pub fn tombstones(plans: &[GroupExpiry]) -> Vec<CoordinatorRecord> {
    let mut records = Vec::new();
    for plan in plans {
        records.extend(
            plan.offsets
                .iter()
                .map(|(topic, partition)| CoordinatorRecord::Offset {
                    group: plan.group.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                    value: None,
                }),
        );
        if plan.remove_group {
            records.push(CoordinatorRecord::Group {
                group: plan.group.clone(),
                value: None,
            });
        }
    }
    records
}

impl Shard {
    /// Expires what has expired at `now`: writes the tombstones, one batch
    /// per group as Kafka does (a batch stays far below the partition's
    /// message size limit), and once a batch is appended forgets the
    /// offsets and group it deletes. The number of offsets expired, or the
    /// coordinator error of the first write that failed.
    pub fn expire_offsets(self: &Arc<Self>, retention_ms: i64, now: i64) -> Result<usize, i16> {
        let mut inner = self.lock();
        let plans = inner.data.plan_expiry(retention_ms, now);
        let (mut expired, mut groups) = (0, 0);
        let mut outcome = Ok(());
        for plan in &plans {
            let appended = match self.append(&tombstones(std::slice::from_ref(plan))) {
                Ok(appended) => appended,
                Err(code) => {
                    outcome = Err(code);
                    break;
                }
            };
            inner.data.apply_expiry(std::slice::from_ref(plan));
            expired += plan.offsets.len();
            groups += usize::from(plan.remove_group);
            let shard = self.clone();
            tokio::spawn(async move {
                if let Err(code) = shard.replicated(appended).await {
                    tracing::warn!(shard = ?shard, code, "offset expiry tombstones not replicated");
                }
            });
        }
        drop(inner);
        if expired > 0 || groups > 0 {
            tracing::info!(shard = ?self, expired, groups, "expired offsets");
        }
        outcome.map(|()| expired)
    }

    /// Checks for expired offsets every `interval` until the shard closes.
    pub(super) async fn run_expiry(self: Arc<Self>, retention: Duration, interval: Duration) {
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        while !self.is_closed() {
            ticks.tick().await;
            if self.is_closed() {
                break;
            }
            if let Err(code) = self.expire_offsets(retention_ms, now_ms()) {
                tracing::warn!(shard = ?self, code, "cannot write offset expiry tombstones");
            }
        }
    }
}

#[cfg(test)]
mod tests;
