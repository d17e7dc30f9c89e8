//! What a partition leader knows of its followers: how far each has
//! fetched and when it was last caught up. From that come the high
//! watermark and the ISR changes the leader asks the controller for.
//!
//! In: each follower fetch ([`Followers::record_fetch`]: the follower's
//! fetch offset is its log end offset) and leadership changes
//! ([`Followers::reset`]). Out: the high watermark the ISR allows
//! ([`Followers::high_watermark`]), the followers that fell out of sync
//! ([`Followers::lagging`]) and whether one may rejoin the ISR
//! ([`Followers::may_join_isr`]). Pure: no I/O, no clock of its own.
//!
//! "Caught up" follows Kafka's rule: a fetch at or past the leader's log end
//! means caught up now; a fetch at or past the log end of the previous
//! fetch means caught up as of that previous fetch.

use std::collections::BTreeMap;

/// One follower, as the leader sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The follower's log end offset (its last fetch offset); -1: unknown.
    pub log_end_offset: i64,
    /// When it was last caught up with the leader, in ms.
    pub last_caught_up_ms: i64,
    /// The leader's log end offset at the follower's previous fetch, and
    /// when that fetch was.
    previous_fetch_leader_end: i64,
    previous_fetch_ms: i64,
}

/// Every follower of one partition this broker leads.
#[derive(Clone, Debug, Default)]
pub struct Followers {
    followers: BTreeMap<i32, FollowerProgress>,
}

impl Followers {
    /// Starts tracking `replicas` (other than `leader`) anew: as Kafka does
    /// when a leader is elected, an ISR member counts as caught up now and
    /// its log end is unknown until it fetches.
    pub fn reset(&mut self, leader: i32, replicas: &[i32], isr: &[i32], now_ms: i64) {
        self.followers = replicas
            .iter()
            .filter(|r| **r != leader)
            .map(|r| {
                let caught_up = if isr.contains(r) { now_ms } else { 0 };
                (
                    *r,
                    FollowerProgress {
                        log_end_offset: -1,
                        last_caught_up_ms: caught_up,
                        previous_fetch_leader_end: -1,
                        previous_fetch_ms: 0,
                    },
                )
            })
            .collect();
    }

    /// Follows a replica-set change without forgetting known followers.
    pub fn retain_replicas(&mut self, leader: i32, replicas: &[i32], now_ms: i64) {
        self.followers.retain(|id, _| replicas.contains(id));
        for r in replicas.iter().filter(|r| **r != leader) {
            self.followers.entry(*r).or_insert(FollowerProgress {
                log_end_offset: -1,
                last_caught_up_ms: 0,
                previous_fetch_leader_end: -1,
                previous_fetch_ms: now_ms,
            });
        }
    }

    /// Records a fetch by `follower` at `fetch_offset` while the leader's log
    /// ends at `leader_end`. Returns false for a broker that is not a
    /// follower of this partition.
    pub fn record_fetch(
        &mut self,
        follower: i32,
        fetch_offset: i64,
        leader_end: i64,
        now_ms: i64,
    ) -> bool {
        let Some(p) = self.followers.get_mut(&follower) else {
            return false;
        };
        if fetch_offset >= leader_end {
            p.last_caught_up_ms = now_ms;
        } else if p.previous_fetch_leader_end >= 0 && fetch_offset >= p.previous_fetch_leader_end {
            p.last_caught_up_ms = p.last_caught_up_ms.max(p.previous_fetch_ms);
        }
        p.log_end_offset = fetch_offset;
        p.previous_fetch_leader_end = leader_end;
        p.previous_fetch_ms = now_ms;
        true
    }

    pub fn get(&self, follower: i32) -> Option<&FollowerProgress> {
        self.followers.get(&follower)
    }

    /// The high watermark the ISR allows: the smallest log end offset among
    /// the ISR (the leader's own is `leader_end`). An ISR member whose
    /// position is unknown holds it back (`None`).
    pub fn high_watermark(&self, leader: i32, isr: &[i32], leader_end: i64) -> Option<i64> {
        let mut hw = leader_end;
        for id in isr.iter().filter(|id| **id != leader) {
            let end = self.followers.get(id).map_or(-1, |p| p.log_end_offset);
            if end < 0 {
                return None;
            }
            hw = hw.min(end);
        }
        Some(hw)
    }

    /// ISR members (other than the leader) not caught up for `lag_ms`.
    pub fn lagging(&self, leader: i32, isr: &[i32], now_ms: i64, lag_ms: i64) -> Vec<i32> {
        isr.iter()
            .copied()
            .filter(|id| *id != leader)
            .filter(|id| {
                self.followers
                    .get(id)
                    .is_none_or(|p| now_ms - p.last_caught_up_ms > lag_ms)
            })
            .collect()
    }

    /// Whether `follower`, out of the ISR, may rejoin it: it has everything
    /// up to the high watermark and everything written in this leader's
    /// epoch so far (`epoch_start`), as Kafka requires, and it is fetching:
    /// it was caught up within the last half of `lag_ms` (a dead follower
    /// whose last position happens to be current must not rejoin).
    pub fn may_join_isr(
        &self,
        follower: i32,
        high_watermark: i64,
        epoch_start: i64,
        now_ms: i64,
        lag_ms: i64,
    ) -> bool {
        self.followers.get(&follower).is_some_and(|p| {
            p.log_end_offset >= high_watermark
                && p.log_end_offset >= epoch_start
                && now_ms - p.last_caught_up_ms <= lag_ms / 2
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_high_watermark_is_the_slowest_isr_member() {
        let mut f = Followers::default();
        f.reset(1, &[1, 2, 3], &[1, 2, 3], 0);
        assert_eq!(
            f.high_watermark(1, &[1, 2, 3], 10),
            None,
            "positions unknown"
        );
        assert!(f.record_fetch(2, 10, 10, 5));
        assert!(f.record_fetch(3, 7, 10, 5));
        assert_eq!(f.high_watermark(1, &[1, 2, 3], 10), Some(7));
        // Out of the ISR, a slow follower no longer holds it back.
        assert_eq!(f.high_watermark(1, &[1, 2], 10), Some(10));
        assert!(!f.record_fetch(9, 1, 10, 5), "not a follower");
    }

    #[test]
    fn a_follower_that_stops_catching_up_lags() {
        let mut f = Followers::default();
        f.reset(1, &[1, 2, 3], &[1, 2, 3], 0);
        f.record_fetch(2, 10, 10, 1000);
        f.record_fetch(3, 4, 10, 1000);
        assert_eq!(f.lagging(1, &[1, 2, 3], 20_000, 30_000), Vec::<i32>::new());
        assert_eq!(f.lagging(1, &[1, 2, 3], 30_500, 30_000), vec![3]);
        // Reaching the log end of its previous fetch counts as caught up as of
        // that fetch.
        f.record_fetch(3, 10, 15, 31_000);
        assert_eq!(f.get(3).map(|p| p.last_caught_up_ms), Some(1000));
        f.record_fetch(3, 15, 20, 32_000);
        assert_eq!(f.get(3).map(|p| p.last_caught_up_ms), Some(31_000));
    }

    #[test]
    fn rejoining_needs_the_high_watermark_and_the_epoch_start() {
        let mut f = Followers::default();
        f.reset(1, &[1, 2], &[1], 0);
        assert!(!f.may_join_isr(2, 0, 0, 1, 1000), "position unknown");
        f.record_fetch(2, 8, 8, 1);
        assert!(!f.may_join_isr(2, 9, 0, 1, 1000));
        assert!(f.may_join_isr(2, 8, 5, 1, 1000));
        assert!(
            !f.may_join_isr(2, 8, 9, 1, 1000),
            "not yet at this epoch's start"
        );
        assert!(!f.may_join_isr(2, 8, 5, 600, 1000), "not fetching lately");
    }
}
