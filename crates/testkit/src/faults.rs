//! Network fault injection: a set of cut links, consulted by every node's
//! Raft transport (sending side) and CONTROLLER listener (receiving side).

use std::collections::HashSet;
use std::sync::RwLock;

use kraft_raft::NetworkFault;

/// Links that are cut, both directions. Shared by all nodes of a cluster.
#[derive(Default, Debug)]
pub struct LinkCuts {
    cut: RwLock<HashSet<(i32, i32)>>,
}

impl LinkCuts {
    /// Cuts traffic between `a` and `b`, both ways.
    pub fn cut(&self, a: i32, b: i32) {
        if let Ok(mut cut) = self.cut.write() {
            cut.insert((a, b));
            cut.insert((b, a));
        }
    }

    /// Cuts `id` off from every node in `others`.
    pub fn isolate(&self, id: i32, others: &[i32]) {
        for other in others.iter().filter(|o| **o != id) {
            self.cut(id, *other);
        }
    }

    pub fn heal_all(&self) {
        if let Ok(mut cut) = self.cut.write() {
            cut.clear();
        }
    }
}

impl NetworkFault for LinkCuts {
    fn allows(&self, from: i32, to: i32) -> bool {
        self.cut
            .read()
            .map(|cut| !cut.contains(&(from, to)))
            .unwrap_or(true)
    }
}
