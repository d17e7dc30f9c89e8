//! [`NetworkFault`]: decides whether traffic from one node to another gets
//! through. The Raft transport, the CONTROLLER listener and the brokers'
//! replica fetchers ask it before sending or accepting; tests implement it
//! to cut chosen links, production uses [`NoFaults`].

/// Decides whether traffic from one node to another gets through. Tests
/// implement it to cut links; production uses [`NoFaults`].
pub trait NetworkFault: Send + Sync {
    fn allows(&self, from: i32, to: i32) -> bool;
}

/// Every link works.
pub struct NoFaults;

impl NetworkFault for NoFaults {
    fn allows(&self, _from: i32, _to: i32) -> bool {
        true
    }
}
