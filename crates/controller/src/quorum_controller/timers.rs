//! The [`QuorumController`]'s periodic work, on its own timers: the idle
//! no-op record (`metadata.max.idle.interval.ms`), the leader imbalance
//! check (`auto.leader.rebalance.enable`), and fencing brokers whose
//! sessions ran out (`broker.session.timeout.ms`).
//!
//! Each tick reads the `latest` image and, on the active controller only,
//! writes records through [`QuorumController::write`] with no reply.

use std::time::{Duration, Instant};

use kraft_metadata::record;
use kraft_proto::metadata::{metadata_record::Record, NoOpRecord};
use kraft_raft::RaftRole;

use super::{Atomicity, QuorumController};
use crate::leader_election;

impl QuorumController {
    /// The periodic leader imbalance check: preferred-leader elections for
    /// imbalanced brokers (`auto.leader.rebalance.enable`).
    pub(super) fn balance_leaders(&mut self) {
        let balance = self.settings.leader_balance;
        if !self.active || !balance.enabled {
            return;
        }
        let records =
            leader_election::rebalance_leaders(&self.latest, balance.imbalance_percentage);
        if !records.is_empty() {
            tracing::info!(
                node = self.settings.node_id,
                partitions = records.len(),
                "moving leadership back to preferred replicas"
            );
            self.write(records, None, Atomicity::Divisible);
        }
    }

    /// When the next broker session runs out (far away when none can).
    pub(super) fn next_session_expiry(&self) -> tokio::time::Instant {
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        if !self.active {
            return far;
        }
        match self.cluster.next_expiry(&self.latest) {
            // Expiry is "strictly more than the timeout ago": check just after.
            Some(at) => tokio::time::Instant::from_std(at) + Duration::from_millis(1),
            None => far,
        }
    }

    /// Fences brokers whose sessions expired, moving their leaderships.
    pub(super) fn expire_sessions(&mut self) {
        if !self.active {
            return;
        }
        let records = self.cluster.expire_sessions(&self.latest, Instant::now());
        if !records.is_empty() {
            tracing::info!(
                node = self.settings.node_id,
                records = records.len(),
                "fencing brokers whose sessions expired"
            );
            self.write(records, None, Atomicity::Divisible);
        }
    }

    pub(super) async fn on_idle_tick(&mut self) {
        if self.role != RaftRole::Leader {
            return;
        }
        if self.active_from.is_none() {
            // Leadership survived a dropped proposal: re-arm from the
            // current log end, which will commit in this term.
            if let Some(status) = self.raft.status().await {
                if status.role == RaftRole::Leader && status.term == self.term {
                    self.active_from = Some(status.last_index);
                    self.maybe_activate();
                }
            }
            return;
        }
        if self.active && !self.settings.max_idle_interval.is_zero() {
            self.write(
                vec![record(Record::NoOp(NoOpRecord {}))],
                None,
                Atomicity::Atomic,
            );
        }
    }
}
