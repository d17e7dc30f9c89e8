//! Kafka's topic name rules (`org.apache.kafka.common.internals.Topic`),
//! checked by the broker before a name goes to the controller, so a bad
//! name costs no round trip and gets INVALID_TOPIC_EXCEPTION per topic.

/// The longest legal topic name.
pub const MAX_NAME_LENGTH: usize = 249;

/// The topic that holds consumer group offsets; the only internal topic.
pub const CONSUMER_OFFSETS: &str = "__consumer_offsets";

/// Why `name` is not a legal topic name, or `None` if it is.
pub fn invalid_reason(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("topic name is empty".to_string());
    }
    if name == "." || name == ".." {
        return Some(format!("topic name cannot be '{name}'"));
    }
    if name.len() > MAX_NAME_LENGTH {
        return Some(format!(
            "topic name is {} characters long; the limit is {MAX_NAME_LENGTH}",
            name.len()
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Some(format!(
            "topic name '{name}' contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    None
}

/// Whether `name` is an internal topic (reported with `is_internal`).
pub fn is_internal(name: &str) -> bool {
    name == CONSUMER_OFFSETS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_rules() {
        assert!(invalid_reason("orders.v1_a-b").is_none());
        assert!(invalid_reason(&"a".repeat(249)).is_none());
        for bad in ["", ".", "..", "a b", "caf\u{e9}", "x/y"] {
            assert!(invalid_reason(bad).is_some(), "{bad:?} should be invalid");
        }
        assert!(invalid_reason(&"a".repeat(250)).is_some());
    }
}
