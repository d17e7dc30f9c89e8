//! The group operations of a loaded shard, one per Kafka API: they find
//! (or create) the group, run its state machine under the shard lock and
//! dispatch the effects; offset commits and group deletions also write to
//! the partition and answer only once the write is replicated.
//!
//! In: requests already translated by the handlers (group id, member,
//! offsets). Out: oneshot receivers for JoinGroup and SyncGroup (they may
//! park), error codes, committed offsets, and group summaries.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::sync::oneshot;

use super::member::{JoinRequest, JoinResult, MemberRef, SyncRequest, SyncResult};
use super::records::{CoordinatorRecord, OffsetValue};
use super::shard::Shard;
use super::shard_data::{CommittedOffset, GroupEntry};
use super::state::{Effects, GroupState, Reply};
use crate::replica::now_ms;

/// One offset to commit.
#[derive(Clone, Debug)]
pub struct OffsetCommit {
    pub topic: String,
    pub partition: i32,
    pub value: OffsetValue,
}

/// A group member as DescribeGroups shows it.
#[derive(Clone, Debug)]
pub struct MemberSummary {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// A group as DescribeGroups shows it.
#[derive(Clone, Debug)]
pub struct GroupSummary {
    pub state: GroupState,
    pub protocol_type: String,
    /// The protocol in use while Stable, else empty.
    pub protocol: String,
    pub members: Vec<MemberSummary>,
}

/// A group as ListGroups shows it.
#[derive(Clone, Debug)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: GroupState,
}

/// The records that store `offsets` for `group_id` and the indexes of
/// the offsets they hold; an offset whose metadata is over
/// `max_metadata_bytes` gets OFFSET_METADATA_TOO_LARGE in `results`
/// instead (OffsetCommit and TxnOffsetCommit alike).
pub(super) fn offset_records(
    group_id: &str,
    offsets: &[OffsetCommit],
    max_metadata_bytes: usize,
    results: &mut [i16],
) -> (Vec<CoordinatorRecord>, Vec<usize>) {
    let mut records = Vec::new();
    let mut accepted = Vec::new();
    for (i, o) in offsets.iter().enumerate() {
        if o.value.metadata.len() > max_metadata_bytes {
            results[i] = ResponseError::OffsetMetadataTooLarge.code();
            continue;
        }
        records.push(CoordinatorRecord::Offset {
            group: group_id.to_string(),
            topic: o.topic.clone(),
            partition: o.partition,
            value: Some(o.value.clone()),
        });
        accepted.push(i);
    }
    (records, accepted)
}

/// Committed offsets of one topic: (partition, offset if any).
pub type TopicOffsets = (String, Vec<(i32, Option<OffsetValue>)>);

impl Shard {
    /// JoinGroup; the receiver gets the answer, maybe after a rebalance.
    pub fn join(
        self: &Arc<Self>,
        group_id: &str,
        req: JoinRequest,
        new_member_id: &str,
    ) -> oneshot::Receiver<JoinResult> {
        let now = now_ms();
        let mut inner = self.lock();
        let (waiter, rx) = inner.join_waiter();
        let effects = if !inner.data.groups.contains_key(group_id) && !req.member_id.is_empty() {
            let error = JoinResult::error(&req.member_id, ResponseError::UnknownMemberId.code());
            Effects {
                replies: vec![Reply::Join(waiter, error)],
                persist: Vec::new(),
            }
        } else {
            let timings = self.timings;
            inner
                .data
                .groups
                .entry(group_id.to_string())
                .or_insert_with(|| GroupEntry::new(group_id, timings, now))
                .group
                .join(req, waiter, new_member_id, now)
        };
        self.dispatch(&mut inner, group_id, effects);
        drop(inner);
        self.poke();
        rx
    }

    /// SyncGroup; the receiver gets the member's assignment.
    pub fn sync(
        self: &Arc<Self>,
        group_id: &str,
        req: SyncRequest,
    ) -> oneshot::Receiver<SyncResult> {
        let now = now_ms();
        let mut inner = self.lock();
        let (waiter, rx) = inner.sync_waiter();
        let effects = match inner.data.groups.get_mut(group_id) {
            Some(entry) => entry.group.sync(req, waiter, now),
            None => Effects {
                replies: vec![Reply::Sync(
                    waiter,
                    SyncResult::error(ResponseError::UnknownMemberId.code()),
                )],
                persist: Vec::new(),
            },
        };
        self.dispatch(&mut inner, group_id, effects);
        drop(inner);
        self.poke();
        rx
    }

    /// Heartbeat: an error code.
    pub fn heartbeat(self: &Arc<Self>, group_id: &str, who: &MemberRef) -> i16 {
        let now = now_ms();
        let code = match self.lock().data.groups.get_mut(group_id) {
            Some(entry) => entry.group.heartbeat(who, now),
            None => ResponseError::UnknownMemberId.code(),
        };
        if code != 0 {
            tracing::debug!(group = group_id, member = %who.member_id, generation = who.generation_id, code, "heartbeat refused");
        }
        self.poke();
        code
    }

    /// LeaveGroup: one error code per member.
    pub fn leave(self: &Arc<Self>, group_id: &str, members: &[MemberRef]) -> Vec<i16> {
        let now = now_ms();
        let mut inner = self.lock();
        let Some(entry) = inner.data.groups.get_mut(group_id) else {
            return vec![ResponseError::UnknownMemberId.code(); members.len()];
        };
        let mut effects = Effects::default();
        let results: Vec<i16> = members
            .iter()
            .map(|who| entry.group.leave(who, now, &mut effects))
            .collect();
        tracing::debug!(group = group_id, ?members, ?results, state = ?entry.group.state(), "members left");
        self.dispatch(&mut inner, group_id, effects);
        drop(inner);
        self.poke();
        results
    }

    /// OffsetCommit: one error code per offset, answered once the offsets
    /// are on every in-sync replica.
    pub async fn commit(
        self: &Arc<Self>,
        group_id: &str,
        who: &MemberRef,
        offsets: Vec<OffsetCommit>,
        max_metadata_bytes: usize,
    ) -> Vec<i16> {
        let now = now_ms();
        let mut results = vec![0; offsets.len()];
        let (appended, accepted) = {
            let mut inner = self.lock();
            let timings = self.timings;
            let entry = match inner.data.groups.get_mut(group_id) {
                Some(entry) => entry,
                None if who.generation_id < 0 => inner
                    .data
                    .groups
                    .entry(group_id.to_string())
                    .or_insert_with(|| GroupEntry::new(group_id, timings, now)),
                None => return vec![ResponseError::IllegalGeneration.code(); offsets.len()],
            };
            if let Err(code) = entry.group.check_commit(who, now) {
                return vec![code; offsets.len()];
            }
            let (records, accepted) =
                offset_records(group_id, &offsets, max_metadata_bytes, &mut results);
            if records.is_empty() {
                return results;
            }
            match self.append(&records) {
                Ok(appended) => {
                    inner
                        .data
                        .track_commits(group_id, &commit_keys(&offsets, &accepted), true);
                    (appended, accepted)
                }
                Err(code) => {
                    for i in accepted {
                        results[i] = code;
                    }
                    return results;
                }
            }
        };
        self.poke();
        let outcome = self.replicated(appended).await;
        let mut inner = self.lock();
        let keys = commit_keys(&offsets, &accepted);
        match outcome {
            Ok(()) => {
                let timings = self.timings;
                // Offsets deleted (OffsetDelete, DeleteGroups) while this
                // commit was in flight stay deleted, as in the log.
                let live: Vec<bool> = keys
                    .iter()
                    .enumerate()
                    .map(|(k, (topic, partition))| {
                        let at = appended.first_offset + k as i64;
                        !inner.data.is_superseded(group_id, topic, *partition, at)
                    })
                    .collect();
                let entry = inner
                    .data
                    .groups
                    .entry(group_id.to_string())
                    .or_insert_with(|| GroupEntry::new(group_id, timings, now));
                for (k, i) in accepted.into_iter().enumerate() {
                    if !live[k] {
                        continue;
                    }
                    let o = &offsets[i];
                    entry.apply_offset(
                        &o.topic,
                        o.partition,
                        CommittedOffset {
                            value: o.value.clone(),
                            record_offset: appended.first_offset + k as i64,
                        },
                    );
                }
            }
            Err(code) => {
                for i in accepted {
                    results[i] = code;
                }
            }
        }
        inner.data.track_commits(group_id, &keys, false);
        results
    }

    /// OffsetFetch: every committed offset (`None`), or the asked-for
    /// partitions with `None` where nothing is committed.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        wanted: Option<Vec<(String, Vec<i32>)>>,
    ) -> Vec<TopicOffsets> {
        let inner = self.lock();
        let committed = inner.data.groups.get(group_id).map(|e| &e.offsets);
        match wanted {
            Some(topics) => topics
                .into_iter()
                .map(|(topic, partitions)| {
                    let found = partitions
                        .into_iter()
                        .map(|p| {
                            let value = committed
                                .and_then(|c| c.get(&(topic.clone(), p)))
                                .map(|c| c.value.clone());
                            (p, value)
                        })
                        .collect();
                    (topic, found)
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, Vec<(i32, Option<OffsetValue>)>> =
                    BTreeMap::new();
                for ((topic, p), c) in committed.into_iter().flatten() {
                    by_topic
                        .entry(topic.clone())
                        .or_default()
                        .push((*p, Some(c.value.clone())));
                }
                by_topic.into_iter().collect()
            }
        }
    }

    /// DescribeGroups: `None` for a group that does not exist.
    pub fn describe(&self, group_id: &str) -> Option<GroupSummary> {
        let inner = self.lock();
        let entry = inner.data.groups.get(group_id).filter(|e| e.exists())?;
        let group = &entry.group;
        let stable = group.state() == GroupState::Stable;
        let protocol = group.protocol_name().unwrap_or_default().to_string();
        Some(GroupSummary {
            state: group.state(),
            protocol_type: group.protocol_type().unwrap_or_default().to_string(),
            protocol: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            members: group
                .members()
                .iter()
                .map(|m| MemberSummary {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata(&protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        })
    }

    /// ListGroups: the groups this shard holds.
    pub fn list(&self) -> Vec<GroupListing> {
        self.lock()
            .data
            .groups
            .values()
            .filter(|e| e.exists())
            .map(|e| GroupListing {
                group_id: e.group.id().to_string(),
                protocol_type: e.group.protocol_type().unwrap_or_default().to_string(),
                state: e.group.state(),
            })
            .collect()
    }

    /// DeleteGroups for one group: only an empty group can go. Tombstones
    /// for the group and each of its offsets are written; the answer comes
    /// once they are replicated.
    pub async fn delete(self: &Arc<Self>, group_id: &str) -> i16 {
        let now = now_ms();
        let appended = {
            let mut inner = self.lock();
            let Some(entry) = inner.data.groups.get(group_id).filter(|e| e.exists()) else {
                return ResponseError::GroupIdNotFound.code();
            };
            if !matches!(entry.group.state(), GroupState::Empty | GroupState::Dead) {
                return ResponseError::NonEmptyGroup.code();
            }
            let mut records: Vec<CoordinatorRecord> = entry
                .offsets
                .keys()
                .map(|(topic, partition)| CoordinatorRecord::Offset {
                    group: group_id.to_string(),
                    topic: topic.clone(),
                    partition: *partition,
                    value: None,
                })
                .collect();
            records.push(CoordinatorRecord::Group {
                group: group_id.to_string(),
                value: None,
            });
            let appended = match self.append(&records) {
                Ok(appended) => appended,
                Err(code) => return code,
            };
            for (k, record) in records.iter().enumerate() {
                if let CoordinatorRecord::Offset {
                    topic, partition, ..
                } = record
                {
                    let at = appended.first_offset + k as i64;
                    inner.data.supersede(group_id, topic, *partition, at);
                }
            }
            let effects = inner
                .data
                .groups
                .get_mut(group_id)
                .map(|e| e.group.mark_dead(now))
                .unwrap_or_default();
            self.dispatch(&mut inner, group_id, effects);
            inner.data.groups.remove(group_id);
            appended
        };
        match self.replicated(appended).await {
            Ok(()) => 0,
            Err(code) => code,
        }
    }
}

/// The partitions of the accepted offsets of a commit.
fn commit_keys(offsets: &[OffsetCommit], accepted: &[usize]) -> Vec<(String, i32)> {
    accepted
        .iter()
        .map(|&i| (offsets[i].topic.clone(), offsets[i].partition))
        .collect()
}
