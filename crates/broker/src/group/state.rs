//! One classic group's state machine, as Kafka's `GroupMetadata` and
//! `GroupCoordinator` run it: Empty -> PreparingRebalance ->
//! CompletingRebalance -> Stable (and Dead once deleted).
//!
//! Pure: no I/O, no clock, no tasks. Requests come in with the time
//! (`now`, ms since the epoch) and a [`WaiterId`] for requests that may
//! park; what should happen next comes out as [`Effects`] — answers to
//! parked requests and group snapshots to persist. Deadlines (session
//! expiry, the rebalance timeout, the initial rebalance delay, the pending
//! sync timeout) are kept as times; the caller calls [`Group::tick`] when
//! [`Group::next_deadline`] passes. Rebalancing itself is in
//! [`super::rebalance`], deadlines and write outcomes in [`super::events`],
//! the request operations in [`super::join`] and [`super::membership`].

use std::collections::{BTreeMap, BTreeSet};

use super::member::{JoinResult, Member, SyncResult, WaiterId};

/// A group's state, named as Kafka names it in DescribeGroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Timing settings (Kafka's keys in the field docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupTimings {
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of
    /// an empty group waits for more members.
    pub initial_rebalance_delay_ms: i64,
    /// How long a new member may wait in its first JoinGroup (Kafka's
    /// fixed 5 minutes).
    pub new_member_join_timeout_ms: i64,
}

impl Default for GroupTimings {
    fn default() -> Self {
        GroupTimings {
            initial_rebalance_delay_ms: 3000,
            new_member_join_timeout_ms: 300_000,
        }
    }
}

/// An answer to a parked request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Join(WaiterId, JoinResult),
    Sync(WaiterId, SyncResult),
}

/// Why the group's metadata must be written to its log now; the caller
/// reports the outcome with [`Group::persisted`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Persist {
    /// The leader's assignment of `generation`: parked syncs are answered
    /// once it is stored.
    Assignments { generation: i32 },
    /// The group became empty in `generation`; nobody waits.
    Empty { generation: i32 },
    /// A static member rejoined a stable group under a new member id; its
    /// JoinGroup is answered (with `result`) once that is stored.
    StaticRejoin {
        generation: i32,
        waiter: WaiterId,
        result: JoinResult,
    },
}

/// What an operation asks the caller to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    pub replies: Vec<Reply>,
    pub persist: Vec<Persist>,
}

/// One classic group.
#[derive(Clone, Debug)]
pub struct Group {
    pub(super) id: String,
    pub(super) state: GroupState,
    pub(super) generation: i32,
    pub(super) protocol_type: Option<String>,
    pub(super) protocol_name: Option<String>,
    pub(super) leader: Option<String>,
    /// In joining order; the first becomes leader when one is needed.
    pub(super) members: Vec<Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the time they
    /// lapse unless the member joins again.
    pub(super) pending_members: BTreeMap<String, i64>,
    /// `group.instance.id` -> member id.
    pub(super) static_members: BTreeMap<String, String>,
    /// A member joined during the initial delay: wait once more.
    pub(super) new_member_added: bool,
    /// When the rebalance in progress completes at the latest.
    pub(super) join_deadline: Option<i64>,
    /// During the initial delay: how much of the rebalance timeout is left
    /// for further delays.
    pub(super) initial_delay_remaining: Option<i64>,
    /// Members that have not sent SyncGroup since the join completed, and
    /// when they are dropped for it.
    pub(super) pending_sync: BTreeSet<String>,
    pub(super) pending_sync_deadline: Option<i64>,
    pub(super) state_timestamp: i64,
    pub(super) timings: GroupTimings,
}

impl Group {
    /// A new, empty group.
    pub fn new(id: &str, timings: GroupTimings, now: i64) -> Group {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: Vec::new(),
            pending_members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            new_member_added: false,
            join_deadline: None,
            initial_delay_remaining: None,
            pending_sync: BTreeSet::new(),
            pending_sync_deadline: None,
            state_timestamp: now,
            timings,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn state(&self) -> GroupState {
        self.state
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn state_timestamp(&self) -> i64 {
        self.state_timestamp
    }

    /// Whether the group holds anything worth listing: members, a
    /// generation or a protocol.
    pub fn is_in_use(&self) -> bool {
        self.state != GroupState::Empty
            || self.generation > 0
            || self.protocol_type.is_some()
            || !self.pending_members.is_empty()
    }

    pub(super) fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.member_id == member_id)
    }

    pub(super) fn member_mut(&mut self, member_id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.member_id == member_id)
    }

    pub(super) fn has_member(&self, member_id: &str) -> bool {
        self.member(member_id).is_some()
    }

    /// A static member whose instance id now belongs to another member id.
    pub(super) fn is_static_member_fenced(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> bool {
        instance_id
            .and_then(|i| self.static_members.get(i))
            .is_some_and(|known| known != member_id)
    }

    /// The largest rebalance timeout of the members.
    pub(super) fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .iter()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    /// Moves the session deadline of `member_id` on (a heartbeat).
    pub(super) fn heartbeat_member(&mut self, member_id: &str, now: i64) {
        if let Some(m) = self.member_mut(member_id) {
            m.session_deadline_ms = now + i64::from(m.session_timeout_ms);
        }
    }
}

#[cfg(test)]
mod tests;
