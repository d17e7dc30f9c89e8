//! What a coordinator knows of the groups in one `__consumer_offsets`
//! partition: each group's state machine, committed offsets and the
//! offsets open transactions committed (TxnOffsetCommit), built by
//! replaying the partition's records in order (on load) and kept current
//! by the coordinator afterwards.
//!
//! A transaction's offsets are pending, by producer id, until a COMMIT
//! marker of that producer makes the ones written before it committed, or
//! an ABORT marker drops them, as Kafka's `GroupMetadata` does.
//!
//! In: [`CoordinatorRecord`]s with their log offsets and producer ids, and
//! markers. Out: [`GroupEntry`]s. Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::records::{CoordinatorRecord, OffsetValue};
use super::state::{Group, GroupTimings};

/// A committed offset and where its record sits in the log (a later
/// record always wins, whatever order commits finish in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedOffset {
    pub value: OffsetValue,
    pub record_offset: i64,
}

/// One group: its membership state machine and committed offsets.
#[derive(Clone, Debug)]
pub struct GroupEntry {
    pub group: Group,
    /// (topic, partition) -> committed offset.
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// Producer id -> the offsets its open transaction wrote.
    pub pending: BTreeMap<i64, BTreeMap<(String, i32), CommittedOffset>>,
}

impl GroupEntry {
    pub fn new(id: &str, timings: GroupTimings, now: i64) -> GroupEntry {
        GroupEntry {
            group: Group::new(id, timings, now),
            offsets: BTreeMap::new(),
            pending: BTreeMap::new(),
        }
    }

    /// Whether the group exists as far as clients can tell (it has members,
    /// a stored generation, committed offsets or offsets of an open
    /// transaction).
    pub fn exists(&self) -> bool {
        self.group.is_in_use() || !self.offsets.is_empty() || !self.pending.is_empty()
    }

    /// Whether an open transaction wrote an offset for this partition.
    pub fn has_pending(&self, topic: &str, partition: i32) -> bool {
        let key = (topic.to_string(), partition);
        self.pending
            .values()
            .any(|offsets| offsets.contains_key(&key))
    }

    /// Stores a committed offset unless a later record already did.
    pub fn apply_offset(&mut self, topic: &str, partition: i32, committed: CommittedOffset) {
        let key = (topic.to_string(), partition);
        match self.offsets.get(&key) {
            Some(existing) if existing.record_offset > committed.record_offset => {}
            _ => {
                self.offsets.insert(key, committed);
            }
        }
    }
}

/// Every group of one partition.
#[derive(Clone, Debug, Default)]
pub struct ShardData {
    pub groups: HashMap<String, GroupEntry>,
    /// Producer id -> the groups holding offsets of its open transaction.
    pub txn_groups: HashMap<i64, HashSet<String>>,
    /// (group, topic, partition) -> offset commits appended and not yet
    /// replicated (offset expiry leaves these partitions alone).
    pub committing: HashMap<(String, String, i32), usize>,
    /// (group, topic, partition) -> the log offset of a tombstone written
    /// while a commit of that partition was on its way to the ISR: that
    /// commit, before the tombstone in the log, must not come back in
    /// memory once replicated.
    pub superseded: HashMap<(String, String, i32), i64>,
}

impl ShardData {
    /// Whether a commit of this partition is on its way to the ISR.
    pub fn is_committing(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.committing
            .contains_key(&(group.to_string(), topic.to_string(), partition))
    }

    /// A tombstone of this partition was written at `tombstone_offset`:
    /// remembered while a commit of it is in flight.
    pub fn supersede(&mut self, group: &str, topic: &str, partition: i32, tombstone_offset: i64) {
        if self.is_committing(group, topic, partition) {
            self.superseded.insert(
                (group.to_string(), topic.to_string(), partition),
                tombstone_offset,
            );
        }
    }

    /// Whether a commit written at `record_offset` was deleted by a later
    /// tombstone while it was in flight.
    pub fn is_superseded(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
        record_offset: i64,
    ) -> bool {
        self.superseded
            .get(&(group.to_string(), topic.to_string(), partition))
            .is_some_and(|tombstone| *tombstone > record_offset)
    }

    /// Counts commits appended (`started`) or settled.
    pub fn track_commits(&mut self, group: &str, keys: &[(String, i32)], started: bool) {
        for (topic, partition) in keys {
            let key = (group.to_string(), topic.clone(), *partition);
            let count = self.committing.entry(key.clone()).or_insert(0);
            if started {
                *count += 1;
            } else {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.committing.remove(&key);
                    self.superseded.remove(&key);
                }
            }
        }
    }

    /// Stores an offset written by `producer_id`'s open transaction at
    /// `record_offset`, pending until its marker.
    pub fn add_pending(
        &mut self,
        group: &str,
        producer_id: i64,
        key: (String, i32),
        committed: CommittedOffset,
        timings: GroupTimings,
        now: i64,
    ) {
        self.groups
            .entry(group.to_string())
            .or_insert_with(|| GroupEntry::new(group, timings, now))
            .pending
            .entry(producer_id)
            .or_default()
            .insert(key, committed);
        self.txn_groups
            .entry(producer_id)
            .or_default()
            .insert(group.to_string());
    }

    /// Forgets pending offsets whose write failed (those still at the
    /// record offsets given).
    pub fn drop_pending(&mut self, group: &str, producer_id: i64, written: &BTreeSet<i64>) {
        if let Some(offsets) = self
            .groups
            .get_mut(group)
            .and_then(|e| e.pending.get_mut(&producer_id))
        {
            offsets.retain(|_, c| !written.contains(&c.record_offset));
        }
        self.forget_empty_pending(group, producer_id);
    }

    /// A marker of `producer_id` at `marker_offset`: the pending offsets it
    /// wrote before the marker become committed (`commit`) or are dropped.
    pub fn complete_txn(&mut self, producer_id: i64, commit: bool, marker_offset: i64) {
        let Some(groups) = self.txn_groups.get(&producer_id).cloned() else {
            return;
        };
        for group in groups {
            let Some(entry) = self.groups.get_mut(&group) else {
                continue;
            };
            let mut ended = Vec::new();
            if let Some(offsets) = entry.pending.get_mut(&producer_id) {
                offsets.retain(|key, c| {
                    let before = c.record_offset < marker_offset;
                    if before {
                        ended.push((key.clone(), c.clone()));
                    }
                    !before
                });
            }
            if commit {
                for ((topic, partition), committed) in ended {
                    entry.apply_offset(&topic, partition, committed);
                }
            }
            self.forget_empty_pending(&group, producer_id);
        }
    }

    fn forget_empty_pending(&mut self, group: &str, producer_id: i64) {
        let Some(entry) = self.groups.get_mut(group) else {
            return;
        };
        if entry
            .pending
            .get(&producer_id)
            .is_some_and(|o| o.is_empty())
        {
            entry.pending.remove(&producer_id);
            if let Some(groups) = self.txn_groups.get_mut(&producer_id) {
                groups.remove(group);
                if groups.is_empty() {
                    self.txn_groups.remove(&producer_id);
                }
            }
        }
        if !entry.exists() && entry.group.next_deadline().is_none() {
            self.groups.remove(group);
        }
    }

    /// Applies one record a transaction of `producer_id` wrote, read back
    /// from the log at `record_offset`: an offset becomes pending; a group
    /// record (never written in a transaction) is applied as usual.
    pub fn replay_transactional(
        &mut self,
        producer_id: i64,
        record: CoordinatorRecord,
        record_offset: i64,
        timings: GroupTimings,
        now: i64,
    ) {
        match record {
            CoordinatorRecord::Offset {
                group,
                topic,
                partition,
                value: Some(value),
            } => self.add_pending(
                &group,
                producer_id,
                (topic, partition),
                CommittedOffset {
                    value,
                    record_offset,
                },
                timings,
                now,
            ),
            other => self.replay(other, record_offset, timings, now),
        }
    }

    /// Applies one record read back from the log at `record_offset`.
    pub fn replay(
        &mut self,
        record: CoordinatorRecord,
        record_offset: i64,
        timings: GroupTimings,
        now: i64,
    ) {
        match record {
            CoordinatorRecord::Offset {
                group,
                topic,
                partition,
                value,
            } => match value {
                Some(value) => self
                    .groups
                    .entry(group.clone())
                    .or_insert_with(|| GroupEntry::new(&group, timings, now))
                    .apply_offset(
                        &topic,
                        partition,
                        CommittedOffset {
                            value,
                            record_offset,
                        },
                    ),
                None => {
                    if let Some(entry) = self.groups.get_mut(&group) {
                        entry.offsets.remove(&(topic, partition));
                        if !entry.exists() {
                            self.groups.remove(&group);
                        }
                    }
                }
            },
            CoordinatorRecord::Group { group, value } => match value {
                Some(value) => {
                    let loaded = Group::from_value(&group, value, timings, now);
                    self.groups
                        .entry(group.clone())
                        .or_insert_with(|| GroupEntry::new(&group, timings, now))
                        .group = loaded;
                }
                None => {
                    if let Some(entry) = self.groups.get_mut(&group) {
                        entry.group = Group::new(&group, timings, now);
                        if !entry.exists() {
                            self.groups.remove(&group);
                        }
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset(offset: i64, record_offset: i64) -> CommittedOffset {
        CommittedOffset {
            value: OffsetValue {
                offset,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp: 0,
            },
            record_offset,
        }
    }

    fn committed(data: &ShardData, group: &str) -> Option<i64> {
        data.groups
            .get(group)
            .and_then(|e| e.offsets.get(&("t".to_string(), 0)))
            .map(|c| c.value.offset)
    }

    #[test]
    fn pending_offsets_wait_for_their_marker() {
        let timings = GroupTimings::default();
        let mut data = ShardData::default();
        data.add_pending("g", 7, ("t".into(), 0), offset(10, 5), timings, 0);
        assert!(data.groups["g"].has_pending("t", 0));
        assert_eq!(committed(&data, "g"), None);
        // A marker before the record (another transaction's) changes nothing.
        data.complete_txn(7, true, 4);
        assert!(data.groups["g"].has_pending("t", 0));
        // Another producer's marker neither.
        data.complete_txn(8, true, 9);
        assert!(data.groups["g"].has_pending("t", 0));
        data.complete_txn(7, true, 9);
        assert_eq!(committed(&data, "g"), Some(10));
        assert!(!data.groups["g"].has_pending("t", 0));
        assert!(data.txn_groups.is_empty());
    }

    #[test]
    fn an_abort_drops_pending_offsets_and_a_later_commit_wins_over_them() {
        let timings = GroupTimings::default();
        let mut data = ShardData::default();
        data.add_pending("g", 7, ("t".into(), 0), offset(10, 5), timings, 0);
        data.complete_txn(7, false, 6);
        assert_eq!(committed(&data, "g"), None);
        assert!(
            !data.groups.contains_key("g"),
            "a group holding nothing goes"
        );
        // A plain commit recorded after a transactional one wins over it
        // when the transaction commits later.
        data.add_pending("g", 7, ("t".into(), 0), offset(20, 7), timings, 0);
        data.groups
            .get_mut("g")
            .expect("group")
            .apply_offset("t", 0, offset(30, 8));
        data.complete_txn(7, true, 9);
        assert_eq!(committed(&data, "g"), Some(30));
    }
}
