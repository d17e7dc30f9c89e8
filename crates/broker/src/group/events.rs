//! What happens to a group without a request: deadlines passing (session
//! expiry, lapsed member ids, the rebalance timeout and initial delay,
//! members that never synced), a write of the group finishing, the group
//! being deleted, and its coordinator letting go of it.
//!
//! In: the time or the outcome. Out: [`Effects`] for the caller to carry
//! out.

use super::member::{JoinResult, SyncResult};
use super::state::{Effects, Group, GroupState, Persist, Reply};

impl Group {
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
                                        error: 0,
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
