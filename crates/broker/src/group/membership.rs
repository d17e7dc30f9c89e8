//! SyncGroup, Heartbeat, LeaveGroup and the membership check of
//! OffsetCommit on the group state machine, with Kafka's error codes
//! (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS,
//! FENCED_INSTANCE_ID, ...).
//!
//! In: the request as a [`SyncRequest`] or [`MemberRef`] and the time.
//! Out: an error code, or [`Effects`] whose replies answer parked
//! requests (the leader's SyncGroup also asks for the group to be
//! persisted before anyone gets an assignment).

use std::collections::BTreeMap;

use super::member::{MemberRef, SyncRequest, SyncResult, WaiterId};
use super::state::{Effects, Group, GroupState, Persist, Reply};
use kafka_protocol::error::ResponseError;

impl Group {
    /// Handles a SyncGroup: in CompletingRebalance it parks until the
    /// leader's assignment is stored; in Stable it answers with the
    /// member's assignment.
    pub fn sync(&mut self, req: SyncRequest, waiter: WaiterId, now: i64) -> Effects {
        let mut effects = Effects::default();
        let error = |effects: &mut Effects, code| {
            effects
                .replies
                .push(Reply::Sync(waiter, SyncResult::error(code)));
        };
        let member_id = req.member_id.as_str();
        if self.state == GroupState::Dead {
            error(&mut effects, ResponseError::CoordinatorNotAvailable.code());
        } else if self.is_static_member_fenced(member_id, req.group_instance_id.as_deref()) {
            error(&mut effects, ResponseError::FencedInstanceId.code());
        } else if !self.has_member(member_id) {
            error(&mut effects, ResponseError::UnknownMemberId.code());
        } else if req.generation_id != self.generation {
            error(&mut effects, ResponseError::IllegalGeneration.code());
        } else if req
            .protocol_type
            .as_deref()
            .is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || req
                .protocol_name
                .as_deref()
                .is_some_and(|n| Some(n) != self.protocol_name.as_deref())
        {
            error(
                &mut effects,
                ResponseError::InconsistentGroupProtocol.code(),
            );
        } else {
            match self.state {
                GroupState::Empty | GroupState::Dead => {
                    error(&mut effects, ResponseError::UnknownMemberId.code())
                }
                GroupState::PreparingRebalance => {
                    error(&mut effects, ResponseError::RebalanceInProgress.code())
                }
                GroupState::CompletingRebalance => {
                    self.pending_sync.remove(member_id);
                    self.heartbeat_member(member_id, now);
                    let is_leader = self.leader.as_deref() == Some(member_id);
                    if let Some(m) = self.member_mut(member_id) {
                        if let Some(old) = m.awaiting_sync.replace(waiter) {
                            effects.replies.push(Reply::Sync(
                                old,
                                SyncResult::error(ResponseError::RebalanceInProgress.code()),
                            ));
                        }
                    }
                    if is_leader {
                        let mut given: BTreeMap<String, bytes::Bytes> =
                            req.assignments.into_iter().collect();
                        for m in &mut self.members {
                            m.assignment = given.remove(&m.member_id).unwrap_or_default();
                        }
                        effects.persist.push(Persist::Assignments {
                            generation: self.generation,
                        });
                    }
                }
                GroupState::Stable => {
                    self.pending_sync.remove(member_id);
                    self.heartbeat_member(member_id, now);
                    let assignment = self
                        .member(member_id)
                        .map(|m| m.assignment.clone())
                        .unwrap_or_default();
                    effects.replies.push(Reply::Sync(
                        waiter,
                        SyncResult {
                            error: 0,
                            protocol_type: self.protocol_type.clone(),
                            protocol_name: self.protocol_name.clone(),
                            assignment,
                        },
                    ));
                }
            }
        }
        effects
    }

    /// Checks who a request speaks for: Dead, fenced, unknown member, wrong
    /// generation.
    fn check_member(&self, who: &MemberRef) -> Result<(), i16> {
        if self.state == GroupState::Dead {
            Err(ResponseError::CoordinatorNotAvailable.code())
        } else if self.is_static_member_fenced(&who.member_id, who.group_instance_id.as_deref()) {
            Err(ResponseError::FencedInstanceId.code())
        } else if !self.has_member(&who.member_id) {
            Err(ResponseError::UnknownMemberId.code())
        } else if who.generation_id != self.generation {
            Err(ResponseError::IllegalGeneration.code())
        } else {
            Ok(())
        }
    }

    /// Handles a Heartbeat; the answer is an error code. A live member in a
    /// rebalance learns it with REBALANCE_IN_PROGRESS and rejoins.
    pub fn heartbeat(&mut self, who: &MemberRef, now: i64) -> i16 {
        if let Err(code) = self.check_member(who) {
            return code;
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => ResponseError::UnknownMemberId.code(),
            GroupState::PreparingRebalance => {
                self.heartbeat_member(&who.member_id, now);
                ResponseError::RebalanceInProgress.code()
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.heartbeat_member(&who.member_id, now);
                0
            }
        }
    }

    /// Handles one member of a LeaveGroup (by member id, or by
    /// `group.instance.id` with an empty member id for an admin removal).
    /// Returns the member's error code.
    pub fn leave(&mut self, who: &MemberRef, now: i64, effects: &mut Effects) -> i16 {
        if self.state == GroupState::Dead {
            return ResponseError::CoordinatorNotAvailable.code();
        }
        if let Some(instance) = &who.group_instance_id {
            return match self.static_members.get(instance).cloned() {
                None => ResponseError::UnknownMemberId.code(),
                Some(known) if !who.member_id.is_empty() && known != who.member_id => {
                    ResponseError::FencedInstanceId.code()
                }
                Some(known) => {
                    self.remove_member_and_rebalance(&known, now, effects);
                    0
                }
            };
        }
        if self.pending_members.remove(&who.member_id).is_some() {
            self.try_complete_join(now, effects);
            return 0;
        }
        if !self.has_member(&who.member_id) {
            return ResponseError::UnknownMemberId.code();
        }
        self.remove_member_and_rebalance(&who.member_id, now, effects);
        0
    }

    /// Whether `who` may commit offsets now (Kafka's rules: a group that
    /// only stores offsets takes commits with generation -1 while empty; a
    /// member commits with its current generation, also during
    /// PreparingRebalance, but not while the assignment is being decided).
    /// A commit counts as a heartbeat.
    /// Whether the group takes offsets at all (a TxnOffsetCommit without
    /// a member): not once it is Dead.
    pub fn check_alive(&self) -> Result<(), i16> {
        if self.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable.code());
        }
        Ok(())
    }

    pub fn check_commit(&mut self, who: &MemberRef, now: i64) -> Result<(), i16> {
        if self.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable.code());
        }
        if self.is_static_member_fenced(&who.member_id, who.group_instance_id.as_deref()) {
            return Err(ResponseError::FencedInstanceId.code());
        }
        if who.generation_id < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress.code());
        }
        self.check_member(who)?;
        self.heartbeat_member(&who.member_id, now);
        Ok(())
    }
}
