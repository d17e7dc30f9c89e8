//! How a group rebalances, as Kafka's classic coordinator does it:
//! PreparingRebalance waits for every member to rejoin (or the rebalance
//! timeout; an empty group's first rebalance waits the initial delay, again
//! while members keep arriving), then the join completes — members that did
//! not rejoin are dropped, the generation moves on, a protocol is chosen
//! and every parked JoinGroup is answered, the leader with all members'
//! metadata.
//!
//! In: the group and the time, from the request operations and from
//! [`super::events`]. Out: replies and writes added to [`Effects`].

use super::member::{JoinResult, JoinedMember, SyncResult};
use super::state::{Effects, Group, GroupState, Persist, Reply};
use kafka_protocol::error::ResponseError;

impl Group {
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
            self.reset_assignments(ResponseError::RebalanceInProgress.code(), effects);
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
    pub(super) fn on_join_deadline(&mut self, now: i64, effects: &mut Effects) {
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
                    error: 0,
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
                JoinResult::error(member_id, ResponseError::UnknownMemberId.code()),
            ));
        }
        if let Some(waiter) = member.awaiting_sync {
            effects.replies.push(Reply::Sync(
                waiter,
                SyncResult::error(ResponseError::UnknownMemberId.code()),
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
}
