//! In-process Kraft clusters for tests, with fault injection.
//!
//! [`TestCluster`] formats a temp dir per node, binds every CONTROLLER
//! listener on 127.0.0.1 port 0, and starts each node through the same code
//! `kraftd` uses (`server.properties` keys included). Tests can then stop
//! ("kill") and restart nodes, cut links between chosen nodes ([`LinkCuts`]),
//! and wait on conditions — never on fixed sleeps. Timeouts are short
//! (election 300 ms, no-op every 100 ms) so failures show up fast.
//!
//! The cluster lives in `cluster`, link cuts and paused nodes in `faults`
//! (with `pause` adding [`TestCluster::pause`] and finding the active
//! controller), the polling helpers in `wait` and the seeded generator of
//! randomized tests in `rng`; everything is re-exported here. [`process`] runs real
//! `kraftd` processes instead, and [`bench_support`] holds what benchmarks
//! share.

#![forbid(unsafe_code)]

pub mod bench_support;
mod cluster;
mod faults;
mod pause;
pub mod process;
mod rng;
mod wait;

pub use cluster::{set_broker_config, ClusterBuilder, TestCluster};
pub use faults::LinkCuts;
pub use rng::SplitMix;
pub use wait::{wait_for, DEADLINE};
