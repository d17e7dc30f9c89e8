//! A group's durable form: the [`GroupValue`] written to
//! `__consumer_offsets` when a generation's assignment is stored (or the
//! group becomes empty), and the group rebuilt from it when a coordinator
//! loads the partition.
//!
//! In: a [`Group`], or a stored value and the time of loading. Out: the
//! other. A loaded group with members is Stable in its stored generation,
//! and every member's session starts afresh, as in Kafka: members that
//! are still alive carry on heartbeating with the same generation; the
//! others expire after their session timeout.

use super::member::{Member, Protocol};
use super::records::{GroupValue, MemberValue};
use super::state::{Group, GroupState, GroupTimings};

impl Group {
    /// What is stored for this group now.
    pub fn to_value(&self) -> GroupValue {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol_name.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: self.state_timestamp,
            members: self
                .members
                .iter()
                .map(|m| MemberValue {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout: m.rebalance_timeout_ms,
                    session_timeout: m.session_timeout_ms,
                    subscription: m.metadata(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// The group a stored value describes, loaded at `now`.
    pub fn from_value(id: &str, value: GroupValue, timings: GroupTimings, now: i64) -> Group {
        let mut group = Group::new(id, timings, now);
        group.protocol_type = Some(value.protocol_type).filter(|t| !t.is_empty());
        group.generation = value.generation;
        group.protocol_name = value.protocol.clone();
        group.leader = value.leader;
        if value.current_state_timestamp >= 0 {
            group.state_timestamp = value.current_state_timestamp;
        }
        let protocol = value.protocol.unwrap_or_default();
        for m in value.members {
            if let Some(instance) = &m.group_instance_id {
                group
                    .static_members
                    .insert(instance.clone(), m.member_id.clone());
            }
            group.members.push(Member {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                rebalance_timeout_ms: m.rebalance_timeout,
                session_timeout_ms: m.session_timeout,
                protocol_type: group.protocol_type.clone().unwrap_or_default(),
                protocols: vec![Protocol {
                    name: protocol.clone(),
                    metadata: m.subscription,
                }],
                assignment: m.assignment,
                awaiting_join: None,
                awaiting_sync: None,
                is_new: false,
                session_deadline_ms: now + i64::from(m.session_timeout),
            });
        }
        group.state = if group.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        if !group.leader.as_deref().is_some_and(|l| group.has_member(l)) {
            group.leader = group.members.first().map(|m| m.member_id.clone());
        }
        group
    }
}
