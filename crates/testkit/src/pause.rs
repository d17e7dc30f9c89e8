//! Pausing a node, the in-process stand-in for a process that stops
//! (SIGSTOP, a long GC pause, a VM migration) and later wakes up, and
//! finding the active controller to kill it.
//!
//! A paused node is cut off from every other node through [`LinkCuts`]
//! (Raft, heartbeats, replica fetching) while its tasks keep running and
//! its Kafka listener keeps answering clients: a paused partition leader is
//! a zombie that still believes it leads until it learns otherwise (its own
//! session check, or the metadata it reads once resumed). In: node ids.
//! Out: changed link state; the controller's Raft role.
//!
//! [`LinkCuts`]: crate::LinkCuts

use kraft_raft::RaftRole;

use crate::cluster::TestCluster;

impl TestCluster {
    /// Cuts node `id` off from every other node until [`resume`](Self::resume)
    /// or [`heal`](Self::heal); links cut meanwhile stay cut after resuming.
    pub fn pause(&self, id: i32) {
        tracing::info!(node = id, "testkit: pausing");
        self.faults().pause(id);
    }

    /// Lets node `id` talk to the others again.
    pub fn resume(&self, id: i32) {
        tracing::info!(node = id, "testkit: resuming");
        self.faults().resume(id);
    }

    /// The running controller that is Raft leader now, if one says so.
    pub async fn active_controller(&self) -> Option<i32> {
        for id in self.voter_ids() {
            if let Some(status) = self.status(id).await {
                if status.role == RaftRole::Leader {
                    return Some(id);
                }
            }
        }
        None
    }
}
