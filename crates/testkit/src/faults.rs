//! Network fault injection: a set of cut links and a set of paused nodes,
//! consulted by every node's Raft transport (sending side), CONTROLLER
//! listener (receiving side) and replica fetchers.
//!
//! In: `cut`, `isolate`, `pause` and `heal_*` calls from a test. Out: the
//! [`NetworkFault`] answer, "may `from` talk to `to`", for every message.

use std::collections::HashSet;
use std::sync::RwLock;

use kraft_raft::NetworkFault;

/// Links that are cut, both directions, and nodes that are paused (cut from
/// everyone until resumed). Shared by all nodes of a cluster.
#[derive(Default, Debug)]
pub struct LinkCuts {
    cut: RwLock<HashSet<(i32, i32)>>,
    paused: RwLock<HashSet<i32>>,
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

    /// Cuts `id` off from every other node until [`resume`](Self::resume),
    /// whatever links are cut or healed meanwhile.
    pub fn pause(&self, id: i32) {
        if let Ok(mut paused) = self.paused.write() {
            paused.insert(id);
        }
    }

    /// Undoes [`pause`](Self::pause); links cut with `cut` stay cut.
    pub fn resume(&self, id: i32) {
        if let Ok(mut paused) = self.paused.write() {
            paused.remove(&id);
        }
    }

    /// Whether `id` is paused.
    pub fn is_paused(&self, id: i32) -> bool {
        self.paused.read().is_ok_and(|p| p.contains(&id))
    }

    /// Heals every cut link and resumes every paused node.
    pub fn heal_all(&self) {
        if let Ok(mut cut) = self.cut.write() {
            cut.clear();
        }
        if let Ok(mut paused) = self.paused.write() {
            paused.clear();
        }
    }
}

impl NetworkFault for LinkCuts {
    fn allows(&self, from: i32, to: i32) -> bool {
        let paused = self
            .paused
            .read()
            .is_ok_and(|p| p.contains(&from) || p.contains(&to));
        !paused
            && self
                .cut
                .read()
                .map(|cut| !cut.contains(&(from, to)))
                .unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paused_node_is_cut_from_everyone_until_resumed() {
        let cuts = LinkCuts::default();
        cuts.cut(1, 2);
        cuts.pause(3);
        assert!(!cuts.allows(3, 1) && !cuts.allows(4, 3));
        assert!(!cuts.allows(2, 1) && cuts.allows(1, 4));
        cuts.resume(3);
        assert!(cuts.allows(3, 1) && cuts.allows(4, 3));
        assert!(!cuts.allows(1, 2), "resuming leaves other cuts alone");
        cuts.pause(3);
        cuts.heal_all();
        assert!(cuts.allows(3, 1) && cuts.allows(1, 2));
    }
}
