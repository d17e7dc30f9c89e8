//! The group state machine driven by hand: requests at chosen times, the
//! clock moved by the test, every answer checked.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

use crate::group::member::{JoinRequest, JoinResult, MemberRef, Protocol, SyncRequest, SyncResult};
use crate::group::records::CoordinatorRecord;
use crate::group::state::{Effects, Group, GroupState, GroupTimings, Persist, Reply};

const TIMINGS: GroupTimings = GroupTimings {
    initial_rebalance_delay_ms: 100,
    new_member_join_timeout_ms: 300_000,
};
const SESSION: i32 = 1_000;
const REBALANCE: i32 = 5_000;

/// A group, a clock and waiter ids.
struct Sim {
    group: Group,
    now: i64,
    waiter: u64,
}

impl Sim {
    fn new() -> Sim {
        Sim {
            group: Group::new("g", TIMINGS, 0),
            now: 0,
            waiter: 0,
        }
    }

    fn next_waiter(&mut self) -> u64 {
        self.waiter += 1;
        self.waiter
    }

    /// A JoinGroup; returns its waiter and the effects.
    fn join_with(&mut self, req: JoinRequest, new_id: &str) -> (u64, Effects) {
        let w = self.next_waiter();
        let effects = self.group.join(req, w, new_id, self.now);
        (w, effects)
    }

    fn join(&mut self, member_id: &str, new_id: &str) -> (u64, Effects) {
        self.join_with(request(member_id, None), new_id)
    }

    /// A new dynamic member: MEMBER_ID_REQUIRED, then a join with the id.
    fn join_new(&mut self, id: &str) -> (u64, Effects) {
        let (w, effects) = self.join("", id);
        let required = join_reply(&effects, w).expect("answered at once");
        assert_eq!(required.error, ResponseError::MemberIdRequired.code());
        assert_eq!(required.member_id, id);
        self.join(id, "unused")
    }

    fn sync(&mut self, member_id: &str, assignments: &[(&str, &str)]) -> (u64, Effects) {
        let w = self.next_waiter();
        let req = SyncRequest {
            member_id: member_id.into(),
            group_instance_id: None,
            generation_id: self.group.generation(),
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments: assignments
                .iter()
                .map(|(m, a)| (m.to_string(), Bytes::from(a.to_string())))
                .collect(),
        };
        let effects = self.group.sync(req, w, self.now);
        (w, effects)
    }

    fn heartbeat(&mut self, member_id: &str) -> i16 {
        let who = member(member_id, self.group.generation());
        self.group.heartbeat(&who, self.now)
    }

    fn tick_at(&mut self, now: i64) -> Effects {
        self.now = now;
        self.group.tick(now)
    }

    /// The initial delay runs twice (a second member arrived during the
    /// first), ending at 200.
    fn initial_rebalance(&mut self) -> Effects {
        assert!(self.tick_at(100).replies.is_empty());
        self.tick_at(200)
    }

    /// A and B join and sync into a Stable generation 1 (A leads).
    fn stable_pair(&mut self) {
        let (wa, _) = self.join_new("a");
        let (wb, _) = self.join_new("b");
        let done = self.initial_rebalance();
        assert!(join_reply(&done, wa).is_some() && join_reply(&done, wb).is_some());
        let (sb, _) = self.sync("b", &[]);
        let (sa, effects) = self.sync("a", &[("a", "A"), ("b", "B")]);
        let persist = effects.persist[0].clone();
        let done = self.group.persisted(&persist, Ok(()), self.now);
        assert_eq!(
            sync_reply(&done, sa).map(|r| r.assignment.clone()),
            Some(Bytes::from("A"))
        );
        assert_eq!(
            sync_reply(&done, sb).map(|r| r.assignment.clone()),
            Some(Bytes::from("B"))
        );
        assert_eq!(self.group.state(), GroupState::Stable);
    }
}

fn request(member_id: &str, instance: Option<&str>) -> JoinRequest {
    JoinRequest {
        member_id: member_id.into(),
        group_instance_id: instance.map(str::to_string),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: SESSION,
        rebalance_timeout_ms: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: vec![Protocol {
            name: "range".into(),
            metadata: Bytes::from_static(b"subscription"),
        }],
        require_known_member_id: true,
    }
}

fn member(member_id: &str, generation_id: i32) -> MemberRef {
    MemberRef {
        member_id: member_id.into(),
        group_instance_id: None,
        generation_id,
    }
}

fn join_reply(effects: &Effects, waiter: u64) -> Option<&JoinResult> {
    effects.replies.iter().find_map(|r| match r {
        Reply::Join(w, result) if *w == waiter => Some(result),
        _ => None,
    })
}

fn sync_reply(effects: &Effects, waiter: u64) -> Option<&SyncResult> {
    effects.replies.iter().find_map(|r| match r {
        Reply::Sync(w, result) if *w == waiter => Some(result),
        _ => None,
    })
}

#[test]
fn the_first_rebalance_waits_the_initial_delay() {
    let mut sim = Sim::new();
    let (w, effects) = sim.join_new("a");
    assert!(effects.replies.is_empty(), "parked: {effects:?}");
    assert_eq!(sim.group.state(), GroupState::PreparingRebalance);
    assert_eq!(sim.group.next_deadline(), Some(100));
    assert!(sim.tick_at(99).replies.is_empty());
    let done = sim.tick_at(100);
    let result = join_reply(&done, w).expect("answered at the deadline");
    assert_eq!(result.error, 0);
    assert_eq!(result.generation_id, 1);
    assert_eq!(result.leader, "a");
    assert_eq!(result.protocol_name.as_deref(), Some("range"));
    assert_eq!(result.members.len(), 1, "the leader gets every member");
    assert_eq!(sim.group.state(), GroupState::CompletingRebalance);
}

#[test]
fn members_arriving_during_the_initial_delay_extend_it() {
    let mut sim = Sim::new();
    let (wa, _) = sim.join_new("a");
    sim.now = 50;
    let (wb, _) = sim.join_new("b");
    assert!(
        sim.tick_at(100).replies.is_empty(),
        "b arrived: wait once more"
    );
    assert_eq!(sim.group.next_deadline(), Some(200));
    let done = sim.tick_at(200);
    let a = join_reply(&done, wa).expect("a answered");
    let b = join_reply(&done, wb).expect("b answered");
    assert_eq!((a.generation_id, b.generation_id), (1, 1));
    assert_eq!(a.members.len(), 2);
    assert!(b.members.is_empty(), "only the leader gets the members");
    assert_eq!(b.leader, "a");
}

#[test]
fn syncs_are_answered_once_the_leaders_assignment_is_stored() {
    let mut sim = Sim::new();
    let (wa, _) = sim.join_new("a");
    let (wb, _) = sim.join_new("b");
    let done = sim.initial_rebalance();
    assert!(join_reply(&done, wa).is_some() && join_reply(&done, wb).is_some());
    let (sb, effects) = sim.sync("b", &[]);
    assert!(effects.replies.is_empty() && effects.persist.is_empty());
    let (sa, effects) = sim.sync("a", &[("a", "A"), ("b", "B")]);
    assert!(effects.replies.is_empty(), "nothing before the write");
    assert_eq!(
        effects.persist,
        vec![Persist::Assignments { generation: 1 }]
    );
    let stored = sim.group.to_value();
    assert_eq!(stored.members.len(), 2);
    assert_eq!(stored.members[1].assignment, Bytes::from("B"));
    let done = sim.group.persisted(&effects.persist[0], Ok(()), sim.now);
    assert_eq!(sync_reply(&done, sa).map(|r| r.error), Some(0));
    assert_eq!(
        sync_reply(&done, sb).map(|r| r.assignment.clone()),
        Some(Bytes::from("B"))
    );
    assert_eq!(sim.group.state(), GroupState::Stable);
    // A late sync in Stable gets the stored assignment straight away.
    let (again, effects) = sim.sync("b", &[]);
    assert_eq!(
        sync_reply(&effects, again).map(|r| r.assignment.clone()),
        Some(Bytes::from("B"))
    );
}

#[test]
fn a_failed_write_fails_the_syncs_and_rebalances() {
    let mut sim = Sim::new();
    let (_, _) = sim.join_new("a");
    sim.tick_at(100);
    let (sa, effects) = sim.sync("a", &[("a", "A")]);
    let done = sim.group.persisted(
        &effects.persist[0],
        Err(ResponseError::NotCoordinator.code()),
        sim.now,
    );
    assert_eq!(
        sync_reply(&done, sa).map(|r| r.error),
        Some(ResponseError::NotCoordinator.code())
    );
    assert_eq!(sim.group.state(), GroupState::PreparingRebalance);
}

#[test]
fn heartbeats_check_member_and_generation() {
    let mut sim = Sim::new();
    sim.stable_pair();
    assert_eq!(sim.heartbeat("a"), 0);
    assert_eq!(
        sim.heartbeat("nobody"),
        ResponseError::UnknownMemberId.code()
    );
    let stale = member("a", 0);
    assert_eq!(
        sim.group.heartbeat(&stale, sim.now),
        ResponseError::IllegalGeneration.code()
    );
}

#[test]
fn a_silent_member_expires_and_the_group_rebalances_without_it() {
    let mut sim = Sim::new();
    sim.stable_pair();
    // a heartbeats every 500 ms; b says nothing after the sync at 200.
    for t in [500, 1000] {
        sim.now = t;
        assert_eq!(sim.heartbeat("a"), 0);
    }
    assert!(sim.tick_at(1199).replies.is_empty());
    assert_eq!(sim.group.state(), GroupState::Stable);
    sim.tick_at(1200);
    assert_eq!(sim.group.state(), GroupState::PreparingRebalance);
    assert_eq!(
        sim.heartbeat("a"),
        ResponseError::RebalanceInProgress.code()
    );
    // a rejoins: everyone left has joined, so the rebalance completes.
    let (w, effects) = sim.join("a", "unused");
    let result = join_reply(&effects, w).expect("completes at once");
    assert_eq!(result.generation_id, 2);
    assert_eq!(result.members.len(), 1);
    assert_eq!(sim.group.members().len(), 1);
}

#[test]
fn members_that_do_not_rejoin_in_the_rebalance_timeout_are_dropped() {
    let mut sim = Sim::new();
    sim.stable_pair();
    // The leader rejoins: a rebalance starts; b keeps heartbeating but never
    // rejoins.
    let (w, effects) = sim.join("a", "unused");
    assert!(effects.replies.is_empty());
    for t in (500..5_000).step_by(500) {
        sim.now = t;
        assert_eq!(
            sim.heartbeat("b"),
            ResponseError::RebalanceInProgress.code()
        );
        assert!(sim.tick_at(t).replies.is_empty());
    }
    let done = sim.tick_at(200 + i64::from(REBALANCE));
    let result = join_reply(&done, w).expect("completed at the rebalance timeout");
    assert_eq!(result.generation_id, 2);
    assert_eq!(result.members.len(), 1, "b was dropped");
}

#[test]
fn the_last_member_leaving_empties_the_group_durably() {
    let mut sim = Sim::new();
    sim.stable_pair();
    let mut effects = Effects::default();
    assert_eq!(sim.group.leave(&member("b", -1), sim.now, &mut effects), 0);
    assert_eq!(sim.group.state(), GroupState::PreparingRebalance);
    assert_eq!(
        sim.group
            .leave(&member("nobody", -1), sim.now, &mut effects),
        ResponseError::UnknownMemberId.code()
    );
    // a never rejoined: at the rebalance timeout the group empties.
    let done = sim.tick_at(sim.now + i64::from(REBALANCE));
    assert_eq!(sim.group.state(), GroupState::Empty);
    assert_eq!(done.persist, vec![Persist::Empty { generation: 2 }]);
    assert_eq!(sim.group.protocol_type(), Some("consumer"));
}

#[test]
fn a_member_that_never_syncs_is_dropped_after_the_rebalance_timeout() {
    let mut sim = Sim::new();
    let (_, _) = sim.join_new("a");
    let (_, _) = sim.join_new("b");
    sim.initial_rebalance();
    let (_, effects) = sim.sync("a", &[("a", "A"), ("b", "B")]);
    sim.group.persisted(&effects.persist[0], Ok(()), sim.now);
    for t in (500..5_200).step_by(500) {
        sim.now = t;
        sim.heartbeat("a");
        sim.heartbeat("b");
        sim.tick_at(t);
    }
    assert_eq!(sim.group.state(), GroupState::Stable);
    sim.tick_at(5_200);
    assert_eq!(
        sim.group.state(),
        GroupState::PreparingRebalance,
        "b never synced"
    );
    assert!(sim.group.members().iter().all(|m| m.member_id == "a"));
}

#[test]
fn pending_member_ids_lapse_after_the_session_timeout() {
    let mut sim = Sim::new();
    let (w, effects) = sim.join("", "p");
    assert_eq!(
        join_reply(&effects, w).map(|r| r.error),
        Some(ResponseError::MemberIdRequired.code())
    );
    assert_eq!(sim.group.next_deadline(), Some(i64::from(SESSION)));
    sim.tick_at(i64::from(SESSION));
    let (w, effects) = sim.join("p", "unused");
    assert_eq!(
        join_reply(&effects, w).map(|r| r.error),
        Some(ResponseError::UnknownMemberId.code())
    );
}

#[test]
fn a_static_member_rejoining_keeps_its_assignment_and_fences_its_old_id() {
    let mut sim = Sim::new();
    let (w, effects) = sim.join_with(request("", Some("i1")), "s1");
    assert!(
        effects.replies.is_empty(),
        "static members need no member-id round trip"
    );
    let done = sim.tick_at(100);
    assert_eq!(
        join_reply(&done, w).map(|r| r.member_id.as_str()),
        Some("s1")
    );
    let (_, effects) = sim.sync("s1", &[("s1", "A")]);
    sim.group.persisted(&effects.persist[0], Ok(()), sim.now);
    // The process restarts and joins without its member id.
    let (w, effects) = sim.join_with(request("", Some("i1")), "s2");
    assert!(
        effects.replies.is_empty(),
        "answered once the new id is stored"
    );
    assert!(matches!(
        effects.persist[..],
        [Persist::StaticRejoin { generation: 1, .. }]
    ));
    let done = sim.group.persisted(&effects.persist[0], Ok(()), sim.now);
    let result = join_reply(&done, w).expect("answered");
    assert_eq!((result.member_id.as_str(), result.generation_id), ("s2", 1));
    assert_eq!(sim.group.state(), GroupState::Stable, "no rebalance");
    assert_eq!(sim.group.members()[0].assignment, Bytes::from("A"));
    let old = MemberRef {
        member_id: "s1".into(),
        group_instance_id: Some("i1".into()),
        generation_id: 1,
    };
    assert_eq!(
        sim.group.heartbeat(&old, sim.now),
        ResponseError::FencedInstanceId.code()
    );
}

#[test]
fn commits_follow_kafkas_membership_rules() {
    let mut sim = Sim::new();
    assert_eq!(
        sim.group.check_commit(&member("", -1), 0),
        Ok(()),
        "offsets-only group"
    );
    let (_, _) = sim.join_new("a");
    sim.tick_at(100);
    assert_eq!(
        sim.group.check_commit(&member("a", 1), sim.now),
        Err(ResponseError::RebalanceInProgress.code())
    );
    let (_, effects) = sim.sync("a", &[("a", "A")]);
    sim.group.persisted(&effects.persist[0], Ok(()), sim.now);
    assert_eq!(sim.group.check_commit(&member("a", 1), sim.now), Ok(()));
    assert_eq!(
        sim.group.check_commit(&member("a", 0), sim.now),
        Err(ResponseError::IllegalGeneration.code())
    );
    assert_eq!(
        sim.group.check_commit(&member("x", 1), sim.now),
        Err(ResponseError::UnknownMemberId.code())
    );
    assert_eq!(
        sim.group.check_commit(&member("", -1), sim.now),
        Err(ResponseError::UnknownMemberId.code()),
        "a group with members takes commits only from them"
    );
}

#[test]
fn inconsistent_protocols_are_refused() {
    let mut sim = Sim::new();
    let (_, _) = sim.join_new("a");
    let mut other = request("", None);
    other.protocols[0].name = "roundrobin".into();
    let (w, effects) = sim.join_with(other, "b");
    assert_eq!(
        join_reply(&effects, w).map(|r| r.error),
        Some(ResponseError::InconsistentGroupProtocol.code())
    );
}

#[test]
fn a_stored_group_loads_back_stable_with_its_members() {
    let mut sim = Sim::new();
    sim.stable_pair();
    let value = sim.group.to_value();
    let record = CoordinatorRecord::Group {
        group: "g".into(),
        value: Some(value),
    };
    let (key, bytes) = record.encode();
    let CoordinatorRecord::Group {
        value: Some(decoded),
        ..
    } = CoordinatorRecord::decode(&key, bytes.as_deref()).expect("decodes")
    else {
        panic!("not a group record");
    };
    let loaded = Group::from_value("g", decoded, TIMINGS, 10_000);
    assert_eq!(loaded.state(), GroupState::Stable);
    assert_eq!(loaded.generation(), 1);
    assert_eq!(loaded.leader(), Some("a"));
    assert_eq!(loaded.members().len(), 2);
    assert_eq!(loaded.members()[1].assignment, Bytes::from("B"));
    // Members keep their generation, with a fresh session from the load.
    let mut loaded = loaded;
    assert_eq!(loaded.heartbeat(&member("b", 1), 10_500), 0);
    assert_eq!(loaded.next_deadline(), Some(11_000));
}

#[test]
fn every_generation_stores_the_leaders_new_assignment() {
    let mut sim = Sim::new();
    sim.stable_pair();
    let mut effects = Effects::default();
    assert_eq!(sim.group.leave(&member("b", -1), sim.now, &mut effects), 0);
    let (w, effects) = sim.join("a", "unused");
    assert_eq!(join_reply(&effects, w).map(|r| r.generation_id), Some(2));
    let (s, effects) = sim.sync("a", &[("a", "AB")]);
    assert_eq!(
        effects.persist,
        vec![Persist::Assignments { generation: 2 }]
    );
    let done = sim.group.persisted(&effects.persist[0], Ok(()), sim.now);
    assert_eq!(
        sync_reply(&done, s).map(|r| r.assignment.clone()),
        Some(Bytes::from("AB"))
    );
}
