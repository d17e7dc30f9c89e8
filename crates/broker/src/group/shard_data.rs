//! What a coordinator knows of the groups in one `__consumer_offsets`
//! partition: each group's state machine and committed offsets, built by
//! replaying the partition's records in order (on load) and kept current
//! by the coordinator afterwards.
//!
//! In: [`CoordinatorRecord`]s with their log offsets. Out: [`GroupEntry`]s.
//! Pure: no I/O.

use std::collections::{BTreeMap, HashMap};

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
}

impl GroupEntry {
    pub fn new(id: &str, timings: GroupTimings, now: i64) -> GroupEntry {
        GroupEntry {
            group: Group::new(id, timings, now),
            offsets: BTreeMap::new(),
        }
    }

    /// Whether the group exists as far as clients can tell (it has members,
    /// a stored generation or committed offsets).
    pub fn exists(&self) -> bool {
        self.group.is_in_use() || !self.offsets.is_empty()
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
}

impl ShardData {
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
