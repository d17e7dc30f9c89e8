//! JoinGroup on the group state machine, following Kafka's classic
//! coordinator: new members (the MEMBER_ID_REQUIRED round trip for v4+
//! dynamic members), static members (`group.instance.id`, replaced under a
//! new member id when they come back, FENCED_INSTANCE_ID for a stale id),
//! and known members rejoining, which may start a rebalance or simply get
//! the current generation back.
//!
//! In: a [`JoinRequest`], the [`WaiterId`] of the parked request and a
//! fresh member id (used only if one is handed out). Out: [`Effects`]; the
//! answer to this request is among their replies now or after a later
//! operation completes the rebalance.

use super::member::{JoinRequest, JoinResult, JoinedMember, Member, WaiterId};
use super::state::{Effects, Group, GroupState, Persist, Reply};
use kafka_protocol::error::ResponseError;

impl Group {
    /// Handles a JoinGroup.
    pub fn join(
        &mut self,
        req: JoinRequest,
        waiter: WaiterId,
        new_member_id: &str,
        now: i64,
    ) -> Effects {
        let mut effects = Effects::default();
        if self.state == GroupState::Dead {
            reply(
                &mut effects,
                waiter,
                JoinResult::error(
                    &req.member_id,
                    ResponseError::CoordinatorNotAvailable.code(),
                ),
            );
        } else if req.member_id.is_empty() {
            self.join_new(req, waiter, new_member_id, now, &mut effects);
        } else {
            self.join_known(req, waiter, now, &mut effects);
        }
        if self.state == GroupState::PreparingRebalance {
            self.try_complete_join(now, &mut effects);
        }
        effects
    }

    /// Whether a member with these protocols may join: the first member
    /// sets the protocol type; later ones must match it and share a
    /// protocol with every other member.
    fn supports_protocols(&self, req: &JoinRequest) -> bool {
        let others: Vec<&Member> = self
            .members
            .iter()
            .filter(|m| m.member_id != req.member_id)
            .collect();
        if others.is_empty() {
            return !req.protocol_type.is_empty() && !req.protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(req.protocol_type.as_str())
            && req
                .protocols
                .iter()
                .any(|p| others.iter().all(|m| m.supports(&p.name)))
    }

    fn join_new(
        &mut self,
        req: JoinRequest,
        waiter: WaiterId,
        new_member_id: &str,
        now: i64,
        effects: &mut Effects,
    ) {
        if !self.supports_protocols(&req) {
            let error = JoinResult::error("", ResponseError::InconsistentGroupProtocol.code());
            return reply(effects, waiter, error);
        }
        match &req.group_instance_id {
            Some(instance) => match self.static_members.get(instance).cloned() {
                Some(old_id) => {
                    self.replace_static_member(&old_id, req, waiter, new_member_id, now, effects)
                }
                None => self.add_member(new_member_id, req, waiter, now, effects),
            },
            None if req.require_known_member_id => {
                let deadline = now + i64::from(req.session_timeout_ms);
                self.pending_members
                    .insert(new_member_id.to_string(), deadline);
                reply(
                    effects,
                    waiter,
                    JoinResult::error(new_member_id, ResponseError::MemberIdRequired.code()),
                );
            }
            None => self.add_member(new_member_id, req, waiter, now, effects),
        }
    }

    fn join_known(&mut self, req: JoinRequest, waiter: WaiterId, now: i64, effects: &mut Effects) {
        let member_id = req.member_id.clone();
        if self.pending_members.contains_key(&member_id) {
            if !self.supports_protocols(&req) {
                let error =
                    JoinResult::error(&member_id, ResponseError::InconsistentGroupProtocol.code());
                return reply(effects, waiter, error);
            }
            self.pending_members.remove(&member_id);
            return self.add_member(&member_id, req, waiter, now, effects);
        }
        if self.is_static_member_fenced(&member_id, req.group_instance_id.as_deref()) {
            let error = JoinResult::error(&member_id, ResponseError::FencedInstanceId.code());
            return reply(effects, waiter, error);
        }
        let Some(member) = self.member(&member_id) else {
            let error = JoinResult::error(&member_id, ResponseError::UnknownMemberId.code());
            return reply(effects, waiter, error);
        };
        if !self.supports_protocols(&req) {
            let error =
                JoinResult::error(&member_id, ResponseError::InconsistentGroupProtocol.code());
            return reply(effects, waiter, error);
        }
        let same_protocols = member.protocols == req.protocols;
        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        match self.state {
            GroupState::PreparingRebalance => self.update_member(req, waiter, now, effects),
            GroupState::CompletingRebalance if same_protocols => {
                // The member lost our answer: send it again.
                self.heartbeat_member(&member_id, now);
                let result = self.current_generation(&member_id, is_leader, false);
                reply(effects, waiter, result);
            }
            GroupState::Stable if same_protocols && !is_leader => {
                self.heartbeat_member(&member_id, now);
                let result = self.current_generation(&member_id, false, false);
                reply(effects, waiter, result);
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member(req, waiter, now, effects)
            }
            GroupState::Empty | GroupState::Dead => {
                let error = JoinResult::error(&member_id, ResponseError::UnknownMemberId.code());
                reply(effects, waiter, error)
            }
        }
    }

    /// The current generation as a JoinGroup answer for `member_id` (with
    /// every member's metadata when `with_members`).
    fn current_generation(
        &self,
        member_id: &str,
        with_members: bool,
        skip_assignment: bool,
    ) -> JoinResult {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = if with_members {
            self.members
                .iter()
                .map(|m| JoinedMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: 0,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members,
            skip_assignment,
        }
    }

    /// Adds a member parked in its join, and rebalances.
    fn add_member(
        &mut self,
        member_id: &str,
        req: JoinRequest,
        waiter: WaiterId,
        now: i64,
        effects: &mut Effects,
    ) {
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if let Some(instance) = &req.group_instance_id {
            self.static_members
                .insert(instance.clone(), member_id.to_string());
        }
        self.members.push(Member {
            member_id: member_id.to_string(),
            group_instance_id: req.group_instance_id,
            client_id: req.client_id,
            client_host: req.client_host,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            session_timeout_ms: req.session_timeout_ms,
            protocol_type: req.protocol_type,
            protocols: req.protocols,
            assignment: bytes::Bytes::new(),
            awaiting_join: Some(waiter),
            awaiting_sync: None,
            is_new: true,
            session_deadline_ms: now + self.timings.new_member_join_timeout_ms,
        });
        if self.leader.is_none() {
            self.leader = Some(member_id.to_string());
        }
        if self.state == GroupState::PreparingRebalance && self.generation == 0 {
            self.new_member_added = true;
        }
        self.maybe_prepare_rebalance(now, effects);
    }

    /// A known member rejoins with (possibly new) protocols: park it and
    /// rebalance.
    fn update_member(
        &mut self,
        req: JoinRequest,
        waiter: WaiterId,
        now: i64,
        effects: &mut Effects,
    ) {
        let Some(member) = self.member_mut(&req.member_id) else {
            return;
        };
        if let Some(old) = member.awaiting_join.replace(waiter) {
            effects.replies.push(Reply::Join(
                old,
                JoinResult::error(&req.member_id, ResponseError::RebalanceInProgress.code()),
            ));
        }
        member.protocols = req.protocols;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.session_timeout_ms = req.session_timeout_ms;
        member.client_id = req.client_id;
        member.client_host = req.client_host;
        member.session_deadline_ms = now + i64::from(member.session_timeout_ms);
        self.maybe_prepare_rebalance(now, effects);
    }

    /// A static member came back without its member id: it takes a new one
    /// and the old one is fenced. In a stable group it keeps its assignment
    /// (no rebalance), once the new id is stored; otherwise it joins the
    /// rebalance.
    fn replace_static_member(
        &mut self,
        old_id: &str,
        req: JoinRequest,
        waiter: WaiterId,
        new_id: &str,
        now: i64,
        effects: &mut Effects,
    ) {
        let Some(member) = self.member_mut(old_id) else {
            return;
        };
        if let Some(old_waiter) = member.awaiting_join.take() {
            effects.replies.push(Reply::Join(
                old_waiter,
                JoinResult::error(old_id, ResponseError::FencedInstanceId.code()),
            ));
        }
        if let Some(old_waiter) = member.awaiting_sync.take() {
            effects.replies.push(Reply::Sync(
                old_waiter,
                super::member::SyncResult::error(ResponseError::FencedInstanceId.code()),
            ));
        }
        let same_protocols = member.protocols == req.protocols;
        member.member_id = new_id.to_string();
        if let Some(instance) = &req.group_instance_id {
            self.static_members
                .insert(instance.clone(), new_id.to_string());
        }
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.to_string());
        }
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.to_string());
        }
        let mut req = req;
        req.member_id = new_id.to_string();
        if self.state == GroupState::Stable && same_protocols {
            self.heartbeat_member(new_id, now);
            let is_leader = self.leader.as_deref() == Some(new_id);
            let result = self.current_generation(new_id, is_leader, is_leader);
            effects.persist.push(Persist::StaticRejoin {
                generation: self.generation,
                waiter,
                result,
            });
        } else {
            self.update_member(req, waiter, now, effects);
        }
    }
}

fn reply(effects: &mut Effects, waiter: WaiterId, result: JoinResult) {
    effects.replies.push(Reply::Join(waiter, result));
}
