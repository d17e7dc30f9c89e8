//! Kafka's topic name rules (`org.apache.kafka.common.internals.Topic`):
//! legal names, the `.`/`_` collision rule, and the internal topics.
//!
//! In: a topic name, from a request or a record. Out: `Ok` or an
//! [`InvalidTopicName`] whose message (Kafka's own text) says which rule
//! the name breaks; the caller answers INVALID_TOPIC_EXCEPTION with it.
//! Pure string checks: no image, no records. The controller and the broker
//! both check names here, so a name is legal in one exactly when it is in
//! the other.

/// The longest legal topic name. Kafka picks 249 so that a partition
/// directory (`name-partition`) plus a `.deleted`-style suffix still fits in
/// a 255-byte file name.
pub const MAX_TOPIC_NAME_LENGTH: usize = 249;

/// The topic that holds consumer group offsets and group metadata.
pub const CONSUMER_OFFSETS: &str = "__consumer_offsets";

/// The topic that holds transaction coordinators' state.
pub const TRANSACTION_STATE: &str = "__transaction_state";

/// The metadata log itself. It is not a partition topic: it lives in the
/// controllers' Raft log and never appears in the image's topics.
pub const CLUSTER_METADATA: &str = "__cluster_metadata";

/// A topic name that breaks one of Kafka's rules; the message is Kafka's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidTopicName(pub String);

/// Checks a topic name: non-empty, not `.` or `..`, at most
/// [`MAX_TOPIC_NAME_LENGTH`] characters, and only ASCII letters, digits,
/// `.`, `_` and `-`.
pub fn validate_topic_name(name: &str) -> Result<(), InvalidTopicName> {
    let invalid = |why: String| Err(InvalidTopicName(why));
    if name.is_empty() {
        return invalid("Topic name is illegal, it can't be empty".to_string());
    }
    if name == "." || name == ".." {
        return invalid(format!("Topic name cannot be \"{name}\""));
    }
    if name.len() > MAX_TOPIC_NAME_LENGTH {
        return invalid(format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LENGTH} characters, \
             topic name: {name}"
        ));
    }
    if let Some(bad) = name.chars().find(|c| !is_legal_char(*c)) {
        return invalid(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII \
             alphanumerics, '.', '_' and '-' (found {bad:?})"
        ));
    }
    Ok(())
}

fn is_legal_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-'
}

/// Whether `name` is an internal topic (reported with `is_internal`, never
/// auto-created by a client's Metadata request).
pub fn is_internal(name: &str) -> bool {
    name == CONSUMER_OFFSETS || name == TRANSACTION_STATE
}

/// Whether two names would clash in metric names, where Kafka replaces
/// `.` with `_`: `a.b` and `a_b` collide. Equal names collide too.
pub fn collides(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| unify_period(x) == unify_period(y))
}

/// Whether a name contains a character that can collide (`.` or `_`).
/// Names without one only collide with themselves.
pub fn has_collision_chars(name: &str) -> bool {
    name.contains(['.', '_'])
}

fn unify_period(c: u8) -> u8 {
    if c == b'.' {
        b'_'
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_names_pass() {
        for name in [
            "a",
            "my-topic",
            "my_topic.v2",
            "UPPER123",
            "...",
            "orders.v1_a-b",
        ] {
            assert_eq!(validate_topic_name(name), Ok(()), "{name}");
        }
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
    }

    #[test]
    fn illegal_names_fail() {
        for name in [
            "",
            ".",
            "..",
            "a b",
            "a/b",
            "ä",
            "caf\u{e9}",
            "a:b",
            "tab\t",
            "x/y",
        ] {
            assert!(
                validate_topic_name(name).is_err(),
                "{name:?} should be invalid"
            );
        }
        let err = validate_topic_name(&"x".repeat(250)).unwrap_err();
        assert!(err.0.contains("249"), "{err}");
        let err = validate_topic_name("a b").unwrap_err();
        assert!(err.0.contains("\"a b\""), "{err}");
    }

    #[test]
    fn internal_topics() {
        assert!(is_internal(CONSUMER_OFFSETS));
        assert!(is_internal(TRANSACTION_STATE));
        assert!(!is_internal("orders"));
    }

    #[test]
    fn period_and_underscore_collide() {
        assert!(collides("a.b", "a_b"));
        assert!(collides("a_b", "a.b"));
        assert!(collides("a.b", "a.b"));
        assert!(!collides("a.b", "a-b"));
        assert!(!collides("a.b", "a.bc"));
        assert!(has_collision_chars("a.b"));
        assert!(!has_collision_chars("a-b"));
    }
}
