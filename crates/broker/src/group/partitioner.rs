//! Which `__consumer_offsets` partition holds a group: Kafka's
//! `Utils.abs(groupId.hashCode()) % partitionCount`, with Java's
//! `String.hashCode` over UTF-16 code units, so a group lands on the same
//! partition as it would on a Kafka cluster.
//!
//! In: a group id and the topic's partition count. Out: a partition index.

/// Java's `String.hashCode`: `s[0]*31^(n-1) + ... + s[n-1]` over UTF-16
/// code units, wrapping at 32 bits.
pub fn java_string_hashcode(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// Kafka's `Utils.abs`: `|n|`, with `i32::MIN` mapped to 0.
pub fn kafka_abs(n: i32) -> i32 {
    if n == i32::MIN {
        0
    } else {
        n.abs()
    }
}

/// The partition of `__consumer_offsets` (with `partitions` partitions)
/// that holds `group`.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    kafka_abs(java_string_hashcode(group)) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashcodes_match_java() {
        // Values from java.lang.String#hashCode.
        assert_eq!(java_string_hashcode(""), 0);
        assert_eq!(java_string_hashcode("a"), 97);
        assert_eq!(java_string_hashcode("hello"), 99_162_322);
        assert_eq!(java_string_hashcode("my-group"), -1_906_497_762);
        // Overflow wraps as Java's int does.
        assert_eq!(
            java_string_hashcode("the quick brown fox jumps over the lazy dog"),
            -2_082_818_701
        );
        // Outside the BMP: two UTF-16 code units (a surrogate pair).
        assert_eq!(java_string_hashcode("\u{1F600}"), 1_772_899);
        assert_eq!(java_string_hashcode("é"), 233);
    }

    #[test]
    fn abs_maps_min_to_zero() {
        assert_eq!(kafka_abs(i32::MIN), 0);
        assert_eq!(kafka_abs(-5), 5);
        assert_eq!(kafka_abs(7), 7);
        // "polygenelubricants" hashes to Integer.MIN_VALUE in Java.
        assert_eq!(java_string_hashcode("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
    }

    #[test]
    fn partitions_are_in_range() {
        assert_eq!(partition_for("hello", 50), 99_162_322 % 50);
        assert_eq!(partition_for("my-group", 50), 1_906_497_762 % 50);
        for g in ["a", "b", "group-1", "consumers", "x".repeat(300).as_str()] {
            let p = partition_for(g, 50);
            assert!((0..50).contains(&p), "{g}: {p}");
        }
        assert_eq!(partition_for("anything", 0), 0);
    }
}
