//! A Kraft node as `kraftd` runs it: `server.properties` ([`config`]),
//! the `meta.properties` identity of its directories ([`meta_properties`]),
//! and the roles it starts ([`node`]). The testkit starts nodes through the
//! same code, so tests exercise the real start-up path.

#![forbid(unsafe_code)]

pub mod config;
pub mod meta_properties;
pub mod node;

pub use config::{KraftConfig, Listener, Roles};
pub use node::{KraftNode, NodeError, NodeOptions};
