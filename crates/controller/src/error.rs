//! The error a controller operation answers with: a Kafka error code, a
//! sentence, and (for NOT_CONTROLLER) where the leader is. It is part of the
//! CONTROLLER wire, so it lives in `kraft-rpc`; re-exported here so the
//! controller's modules name it `crate::error::ControllerError`.

pub use kraft_rpc::ControllerError;
