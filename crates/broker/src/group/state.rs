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
//! [`Group::next_deadline`] passes. The request operations live in
//! [`super::join`] and [`super::membership`].

use std::collections::{BTreeMap, BTreeSet};

use super::codes;
use super::member::{JoinResult, JoinedMember, Member, SyncResult, WaiterId};

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

    /// Starts a rebalance if the state allows one (Stable, Completing, Empty).
    pub(super) fn maybe_prepare_rebalance(&mut self, now: i64, effects: &mut Effects) {
        if matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        ) {
            self.prepare_rebalance(now, effects);
        }
    }

    /// Enters PreparingRebalance. Syncs parked in CompletingRebalance get
    /// REBALANCE_IN_PROGRESS. An empty group waits the initial delay; any
    /// other waits for every member to rejoin, at most the rebalance
    /// timeout.
    pub(super) fn prepare_rebalance(&mut self, now: i64, effects: &mut Effects) {
        if self.state == GroupState::CompletingRebalance {
            self.reset_assignments(codes::REBALANCE_IN_PROGRESS, effects);
        }
        self.pending_sync.clear();
        self.pending_sync_deadline = None;
        let was_empty = self.state == GroupState::Empty;
        self.state = GroupState::PreparingRebalance;
        self.state_timestamp = now;
        let rebalance_timeout = self.rebalance_timeout_ms();
        if was_empty {
            let delay = self.timings.initial_rebalance_delay_ms;
            self.initial_delay_remaining = Some((rebalance_timeout - delay).max(0));
            self.join_deadline = Some(now + delay);
            if delay <= 0 {
                self.on_join_deadline(now, effects);
            }
        } else {
            self.initial_delay_remaining = None;
            self.join_deadline = Some(now + rebalance_timeout);
            self.try_complete_join(now, effects);
        }
    }

    /// Answers every parked sync with `error` and forgets the assignments.
    pub(super) fn reset_assignments(&mut self, error: i16, effects: &mut Effects) {
        for m in &mut self.members {
            if let Some(waiter) = m.awaiting_sync.take() {
                effects
                    .replies
                    .push(Reply::Sync(waiter, SyncResult::error(error)));
            }
            m.assignment = bytes::Bytes::new();
        }
    }

    /// Completes the rebalance early once every member has rejoined (not
    /// during the initial delay, which always runs its course).
    pub(super) fn try_complete_join(&mut self, now: i64, effects: &mut Effects) {
        if self.state == GroupState::PreparingRebalance
            && self.initial_delay_remaining.is_none()
            && self.pending_members.is_empty()
            && self.members.iter().all(|m| m.awaiting_join.is_some())
        {
            self.complete_join(now, effects);
        }
    }

    /// The rebalance deadline passed: delay once more if members are still
    /// arriving during the initial delay, else complete the join.
    fn on_join_deadline(&mut self, now: i64, effects: &mut Effects) {
        if let Some(remaining) = self.initial_delay_remaining {
            if self.new_member_added && remaining > 0 {
                let delay = self.timings.initial_rebalance_delay_ms;
                self.new_member_added = false;
                self.initial_delay_remaining = Some((remaining - delay).max(0));
                self.join_deadline = Some(now + delay.min(remaining));
                return;
            }
        }
        self.complete_join(now, effects);
    }

    /// Ends PreparingRebalance: members that did not rejoin are dropped,
    /// the generation moves on, and every parked join is answered (the
    /// leader with all members' metadata). No members left: Empty.
    pub(super) fn complete_join(&mut self, now: i64, effects: &mut Effects) {
        self.join_deadline = None;
        self.initial_delay_remaining = None;
        self.new_member_added = false;
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.awaiting_join.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id, effects);
        }
        if self.state == GroupState::Dead {
            return;
        }
        if !self
            .leader
            .as_deref()
            .is_some_and(|leader| self.has_member(leader))
        {
            self.leader = self.members.first().map(|m| m.member_id.clone());
        }
        self.generation += 1;
        self.state_timestamp = now;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.state = GroupState::Empty;
            self.leader = None;
            effects.persist.push(Persist::Empty {
                generation: self.generation,
            });
            return;
        }
        self.protocol_name = self.select_protocol();
        self.state = GroupState::CompletingRebalance;
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let all: Vec<JoinedMember> = self
            .members
            .iter()
            .map(|m| JoinedMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata(&protocol),
            })
            .collect();
        for m in &mut self.members {
            let Some(waiter) = m.awaiting_join.take() else {
                continue;
            };
            let members = if m.member_id == leader {
                all.clone()
            } else {
                Vec::new()
            };
            effects.replies.push(Reply::Join(
                waiter,
                JoinResult {
                    error: codes::NONE,
                    generation_id: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    leader: leader.clone(),
                    member_id: m.member_id.clone(),
                    members,
                    skip_assignment: false,
                },
            ));
            m.is_new = false;
            m.assignment = bytes::Bytes::new();
            m.session_deadline_ms = now + i64::from(m.session_timeout_ms);
        }
        self.pending_sync = self.members.iter().map(|m| m.member_id.clone()).collect();
        self.pending_sync_deadline = Some(now + self.rebalance_timeout_ms());
    }

    /// The protocol every member supports that most members prefer (ties
    /// go to the first member's preference).
    pub(super) fn select_protocol(&self) -> Option<String> {
        let first = self.members.first()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .filter(|name| self.members.iter().all(|m| m.supports(name)))
            .collect();
        let mut votes: Vec<(usize, &str)> = candidates.iter().map(|c| (0, *c)).collect();
        for m in &self.members {
            if let Some(choice) = m
                .protocols
                .iter()
                .find(|p| candidates.contains(&p.name.as_str()))
            {
                if let Some(v) = votes.iter_mut().find(|(_, name)| *name == choice.name) {
                    v.0 += 1;
                }
            }
        }
        let best = votes.iter().map(|(n, _)| *n).max()?;
        votes
            .into_iter()
            .find(|(n, _)| *n == best)
            .map(|(_, name)| name.to_string())
    }

    /// Removes a member (answering its parked requests with
    /// UNKNOWN_MEMBER_ID) without touching the group's state.
    pub(super) fn remove_member(&mut self, member_id: &str, effects: &mut Effects) {
        let Some(pos) = self.members.iter().position(|m| m.member_id == member_id) else {
            return;
        };
        let member = self.members.remove(pos);
        if let Some(waiter) = member.awaiting_join {
            effects.replies.push(Reply::Join(
                waiter,
                JoinResult::error(member_id, codes::UNKNOWN_MEMBER_ID),
            ));
        }
        if let Some(waiter) = member.awaiting_sync {
            effects.replies.push(Reply::Sync(
                waiter,
                SyncResult::error(codes::UNKNOWN_MEMBER_ID),
            ));
        }
        if let Some(instance) = &member.group_instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        self.pending_sync.remove(member_id);
        if self.leader.as_deref() == Some(member_id) {
            self.leader = self
                .members
                .iter()
                .find(|m| m.awaiting_join.is_some())
                .or(self.members.first())
                .map(|m| m.member_id.clone());
        }
    }

    /// Removes a member that left or expired, and rebalances.
    pub(super) fn remove_member_and_rebalance(
        &mut self,
        member_id: &str,
        now: i64,
        effects: &mut Effects,
    ) {
        self.remove_member(member_id, effects);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, effects)
            }
            GroupState::PreparingRebalance => self.try_complete_join(now, effects),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// The earliest time [`tick`](Self::tick) has something to do.
    pub fn next_deadline(&self) -> Option<i64> {
        let sessions = self
            .members
            .iter()
            .filter(|m| m.awaiting_sync.is_none() && (m.awaiting_join.is_none() || m.is_new))
            .map(|m| m.session_deadline_ms);
        let join = self
            .join_deadline
            .filter(|_| self.state == GroupState::PreparingRebalance);
        let sync = self
            .pending_sync_deadline
            .filter(|_| !self.pending_sync.is_empty());
        sessions
            .chain(self.pending_members.values().copied())
            .chain(join)
            .chain(sync)
            .min()
    }

    /// Acts on every deadline that has passed by `now`: expired sessions
    /// and pending member ids, the rebalance timeout or initial delay, and
    /// members that never synced.
    pub fn tick(&mut self, now: i64) -> Effects {
        let mut effects = Effects::default();
        let lapsed: Vec<String> = self
            .pending_members
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &lapsed {
            self.pending_members.remove(id);
        }
        if !lapsed.is_empty() {
            self.try_complete_join(now, &mut effects);
        }
        // A parked member is alive: its connection is waiting on us. Only a
        // new member parked past the new-member timeout expires.
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.session_deadline_ms <= now)
            .filter(|m| m.awaiting_sync.is_none() && (m.awaiting_join.is_none() || m.is_new))
            .map(|m| m.member_id.clone())
            .collect();
        for id in expired {
            self.remove_member_and_rebalance(&id, now, &mut effects);
        }
        if self.state == GroupState::PreparingRebalance
            && self.join_deadline.is_some_and(|d| d <= now)
        {
            self.on_join_deadline(now, &mut effects);
        }
        if matches!(
            self.state,
            GroupState::CompletingRebalance | GroupState::Stable
        ) && self.pending_sync_deadline.is_some_and(|d| d <= now)
        {
            self.pending_sync_deadline = None;
            let unsynced: Vec<String> =
                std::mem::take(&mut self.pending_sync).into_iter().collect();
            for id in unsynced {
                self.remove_member_and_rebalance(&id, now, &mut effects);
            }
        }
        effects
    }

    /// The outcome of a [`Persist`] (Ok, or the coordinator error code the
    /// write failed with).
    pub fn persisted(&mut self, persist: &Persist, outcome: Result<(), i16>, now: i64) -> Effects {
        let mut effects = Effects::default();
        match persist {
            Persist::Assignments { generation } => {
                if *generation != self.generation || self.state != GroupState::CompletingRebalance {
                    return effects;
                }
                match outcome {
                    Ok(()) => {
                        self.state = GroupState::Stable;
                        self.state_timestamp = now;
                        for m in &mut self.members {
                            if let Some(waiter) = m.awaiting_sync.take() {
                                effects.replies.push(Reply::Sync(
                                    waiter,
                                    SyncResult {
                                        error: codes::NONE,
                                        protocol_type: self.protocol_type.clone(),
                                        protocol_name: self.protocol_name.clone(),
                                        assignment: m.assignment.clone(),
                                    },
                                ));
                            }
                        }
                    }
                    Err(code) => {
                        self.reset_assignments(code, &mut effects);
                        self.maybe_prepare_rebalance(now, &mut effects);
                    }
                }
            }
            Persist::Empty { .. } => {}
            Persist::StaticRejoin { waiter, result, .. } => {
                let reply = match outcome {
                    Ok(()) => result.clone(),
                    Err(code) => JoinResult::error(&result.member_id, code),
                };
                effects.replies.push(Reply::Join(*waiter, reply));
            }
        }
        effects
    }

    /// Marks the group deleted: its members are dropped (a parked request
    /// gets UNKNOWN_MEMBER_ID) and later requests find it Dead.
    pub fn mark_dead(&mut self, now: i64) -> Effects {
        let mut effects = Effects::default();
        let ids: Vec<String> = self.members.iter().map(|m| m.member_id.clone()).collect();
        for id in ids {
            self.remove_member(&id, &mut effects);
        }
        self.pending_members.clear();
        self.state = GroupState::Dead;
        self.state_timestamp = now;
        effects
    }

    /// Answers every parked request with `error` (the coordinator is
    /// unloading this group's partition).
    pub fn abandon(&mut self, error: i16) -> Effects {
        let mut effects = Effects::default();
        for m in &mut self.members {
            if let Some(waiter) = m.awaiting_join.take() {
                effects
                    .replies
                    .push(Reply::Join(waiter, JoinResult::error(&m.member_id, error)));
            }
            if let Some(waiter) = m.awaiting_sync.take() {
                effects
                    .replies
                    .push(Reply::Sync(waiter, SyncResult::error(error)));
            }
        }
        effects
    }
}
