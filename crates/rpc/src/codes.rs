//! Kafka error codes as the controller RPCs carry them: an `i32` field on
//! the wire, a [`ResponseError`] in code (`ResponseError::NotController`),
//! never a hand-kept table.
//!
//! In: a [`ResponseError`] ([`error_code`]) or a code read off a response
//! ([`error_name`]). Out: the wire code, or Kafka's name for it
//! (`NOT_CONTROLLER`), which `kraftctl` and [`ControllerError`]'s message
//! print.
//!
//! [`ControllerError`]: crate::ControllerError

use kafka_protocol::ResponseError;

/// The wire code of a Kafka error (the controller protocol's fields are
/// `i32`).
pub fn error_code(error: ResponseError) -> i32 {
    i32::from(error.code())
}

/// Kafka's name for an error code, in Kafka's SCREAMING_SNAKE_CASE
/// (`NOT_CONTROLLER`): `NONE` for 0, `UNKNOWN_ERROR_CODE` for a code Kafka
/// does not define.
pub fn error_name(code: i32) -> String {
    match i16::try_from(code).map(ResponseError::try_from_code) {
        Ok(None) => "NONE".to_string(),
        Ok(Some(ResponseError::Unknown(_))) | Err(_) => "UNKNOWN_ERROR_CODE".to_string(),
        Ok(Some(error)) => screaming_snake(&format!("{error:?}")),
    }
}

/// `NotController` -> `NOT_CONTROLLER`.
fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code the controller RPCs use, with the name Kafka gives it
    /// (Errors.java).
    const KAFKA_NAMES: &[(i32, &str)] = &[
        (-1, "UNKNOWN_SERVER_ERROR"),
        (3, "UNKNOWN_TOPIC_OR_PARTITION"),
        (6, "NOT_LEADER_OR_FOLLOWER"),
        (7, "REQUEST_TIMED_OUT"),
        (17, "INVALID_TOPIC_EXCEPTION"),
        (36, "TOPIC_ALREADY_EXISTS"),
        (37, "INVALID_PARTITIONS"),
        (38, "INVALID_REPLICATION_FACTOR"),
        (39, "INVALID_REPLICA_ASSIGNMENT"),
        (40, "INVALID_CONFIG"),
        (41, "NOT_CONTROLLER"),
        (42, "INVALID_REQUEST"),
        (74, "FENCED_LEADER_EPOCH"),
        (77, "STALE_BROKER_EPOCH"),
        (80, "PREFERRED_LEADER_NOT_AVAILABLE"),
        (84, "ELECTION_NOT_NEEDED"),
        (85, "NO_REASSIGNMENT_IN_PROGRESS"),
        (95, "INVALID_UPDATE_VERSION"),
        (98, "SNAPSHOT_NOT_FOUND"),
        (100, "UNKNOWN_TOPIC_ID"),
        (101, "DUPLICATE_BROKER_REGISTRATION"),
        (102, "BROKER_ID_NOT_REGISTERED"),
        (104, "INCONSISTENT_CLUSTER_ID"),
        (107, "INELIGIBLE_REPLICA"),
        (108, "NEW_LEADER_ELECTED"),
    ];

    #[test]
    fn names_are_kafkas() {
        for (code, name) in KAFKA_NAMES {
            assert_eq!(error_name(*code), *name, "code {code}");
        }
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(30_000), "UNKNOWN_ERROR_CODE");
        assert_eq!(error_name(i32::MAX), "UNKNOWN_ERROR_CODE");
    }

    #[test]
    fn codes_are_kafkas() {
        assert_eq!(error_code(ResponseError::NotController), 41);
        assert_eq!(error_code(ResponseError::UnknownServerError), -1);
        assert_eq!(
            error_name(error_code(ResponseError::SnapshotNotFound)),
            "SNAPSHOT_NOT_FOUND"
        );
    }
}
