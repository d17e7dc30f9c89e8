//! Kafka's error codes, as the controller RPCs use them, with their names
//! for messages (`kraftctl` prints the name, then a sentence).

pub const NONE: i32 = 0;
pub const UNKNOWN_SERVER_ERROR: i32 = -1;
pub const UNKNOWN_TOPIC_OR_PARTITION: i32 = 3;
pub const REQUEST_TIMED_OUT: i32 = 7;
pub const INVALID_CONFIG: i32 = 40;
pub const NOT_CONTROLLER: i32 = 41;
pub const INVALID_REQUEST: i32 = 42;
pub const SNAPSHOT_NOT_FOUND: i32 = 98;
pub const INCONSISTENT_CLUSTER_ID: i32 = 104;

/// Kafka's name for an error code this crate uses.
pub fn error_name(code: i32) -> &'static str {
    match code {
        NONE => "NONE",
        UNKNOWN_SERVER_ERROR => "UNKNOWN_SERVER_ERROR",
        UNKNOWN_TOPIC_OR_PARTITION => "UNKNOWN_TOPIC_OR_PARTITION",
        REQUEST_TIMED_OUT => "REQUEST_TIMED_OUT",
        INVALID_CONFIG => "INVALID_CONFIG",
        NOT_CONTROLLER => "NOT_CONTROLLER",
        INVALID_REQUEST => "INVALID_REQUEST",
        SNAPSHOT_NOT_FOUND => "SNAPSHOT_NOT_FOUND",
        INCONSISTENT_CLUSTER_ID => "INCONSISTENT_CLUSTER_ID",
        _ => "UNKNOWN_ERROR_CODE",
    }
}
