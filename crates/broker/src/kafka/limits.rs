//! [`ConnectionLimits`]: Kafka's `max.connections` and
//! `max.connections.per.ip` for one listener.
//!
//! In: the peer address of each accepted connection ([`admit`]). Out: an
//! [`Admitted`] guard that counts the connection until it is dropped, or
//! `None` when the connection would pass a limit; the listener then closes
//! it (Kafka closes a connection over the per-IP limit at once; Kraft
//! does the same over the broker-wide limit, so a flood is refused instead
//! of piling up in the accept backlog).
//!
//! Followers are never starved: Kafka exempts the inter-broker listener
//! from `max.connections` only when it is a listener of its own, and
//! Kraft's brokers replicate over the one client listener. So a connection
//! over a limit is not closed at once: it may prove to be a follower with
//! its first request (a Fetch v15+ quoting a registered broker's current
//! epoch, see [`crate::kafka::server`]), and is then served outside the
//! limits, counted with [`ConnectionLimits::admit_follower`] (at most
//! [`FOLLOWER_CONNECTIONS_PER_BROKER`] per registered broker).
//!
//! [`admit`]: ConnectionLimits::admit

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Connections one registered broker may hold outside the limits (one
/// fetcher per leader, plus reconnects whose old socket has not closed).
pub const FOLLOWER_CONNECTIONS_PER_BROKER: usize = 4;

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    followers: HashMap<i32, usize>,
}

/// The open connections of one listener, by IP.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    max: usize,
    max_per_ip: usize,
    counts: Arc<Mutex<Counts>>,
}

/// One counted connection; dropping it uncounts it.
#[derive(Debug)]
pub struct Admitted {
    counts: Arc<Mutex<Counts>>,
    slot: Slot,
}

#[derive(Debug)]
enum Slot {
    Client(IpAddr),
    Follower(i32),
}

impl ConnectionLimits {
    pub fn new(max: usize, max_per_ip: usize) -> ConnectionLimits {
        ConnectionLimits {
            max: max.max(1),
            max_per_ip: max_per_ip.max(1),
            counts: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a new client connection from `ip`, unless that passes
    /// `max.connections` or `max.connections.per.ip`.
    pub fn admit(&self, ip: IpAddr) -> Option<Admitted> {
        let mut counts = self.lock();
        let from_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if counts.total >= self.max || from_ip >= self.max_per_ip {
            return None;
        }
        counts.total += 1;
        *counts.per_ip.entry(ip).or_default() += 1;
        Some(Admitted {
            counts: self.counts.clone(),
            slot: Slot::Client(ip),
        })
    }

    /// Counts a connection over the limits that proved to be broker
    /// `broker`'s follower, unless it has [`FOLLOWER_CONNECTIONS_PER_BROKER`]
    /// already.
    pub fn admit_follower(&self, broker: i32) -> Option<Admitted> {
        let mut counts = self.lock();
        let held = counts.followers.entry(broker).or_default();
        if *held >= FOLLOWER_CONNECTIONS_PER_BROKER {
            return None;
        }
        *held += 1;
        Some(Admitted {
            counts: self.counts.clone(),
            slot: Slot::Follower(broker),
        })
    }

    /// Client connections open now.
    pub fn open(&self) -> usize {
        self.lock().total
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        match self.slot {
            Slot::Client(ip) => {
                counts.total = counts.total.saturating_sub(1);
                if let Some(n) = counts.per_ip.get_mut(&ip) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        counts.per_ip.remove(&ip);
                    }
                }
            }
            Slot::Follower(broker) => {
                if let Some(n) = counts.followers.get_mut(&broker) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        counts.followers.remove(&broker);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_per_ip_and_in_total_and_forget_closed_connections() {
        let limits = ConnectionLimits::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let a1 = limits.admit(a).expect("first from a");
        let _a2 = limits.admit(a).expect("second from a");
        assert!(limits.admit(a).is_none(), "per-IP limit");
        let _b1 = limits.admit(b).expect("first from b");
        assert!(limits.admit(b).is_none(), "broker-wide limit");
        drop(a1);
        assert!(
            limits.admit(b).is_some(),
            "a closed connection frees its place"
        );
        let followers: Vec<_> = (0..FOLLOWER_CONNECTIONS_PER_BROKER)
            .map(|_| limits.admit_follower(7).expect("follower"))
            .collect();
        assert!(limits.admit_follower(7).is_none());
        assert!(limits.admit_follower(8).is_some());
        drop(followers);
        assert!(limits.admit_follower(7).is_some());
    }
}
