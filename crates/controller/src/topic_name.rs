//! Topic name rules, exactly as Kafka's `Topic.validate` and
//! `Topic.hasCollision` have them.
//!
//! Data enters as a name from a CreateTopics request; what leaves is `Ok`
//! or an `INVALID_TOPIC_EXCEPTION` [`ControllerError`] whose message says
//! which rule the name breaks. Pure string checks: no image, no records.

use crate::error::ControllerError;
use crate::error_codes::INVALID_TOPIC_EXCEPTION;

/// The longest legal topic name. Kafka picks 249 so that a partition
/// directory (`name-partition`) plus a `.deleted`-style suffix still fits in
/// a 255-byte file name.
pub const MAX_TOPIC_NAME_LENGTH: usize = 249;

/// Checks a topic name: non-empty, not `.` or `..`, at most
/// [`MAX_TOPIC_NAME_LENGTH`] characters, and only ASCII letters, digits,
/// `.`, `_` and `-`.
pub fn validate_topic_name(name: &str) -> Result<(), ControllerError> {
    let invalid = |why: String| Err(ControllerError::new(INVALID_TOPIC_EXCEPTION, why));
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
        for name in ["a", "my-topic", "my_topic.v2", "UPPER123", "..."] {
            assert_eq!(validate_topic_name(name), Ok(()), "{name}");
        }
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
    }

    #[test]
    fn illegal_names_fail_with_invalid_topic() {
        for name in ["", ".", "..", "a b", "a/b", "ä", "a:b", "tab\t"] {
            let err = validate_topic_name(name).unwrap_err();
            assert_eq!(err.code, INVALID_TOPIC_EXCEPTION, "{name}");
        }
        let err = validate_topic_name(&"x".repeat(250)).unwrap_err();
        assert!(err.message.contains("249"), "{}", err.message);
        let err = validate_topic_name("a b").unwrap_err();
        assert!(err.message.contains("\"a b\""), "{}", err.message);
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
