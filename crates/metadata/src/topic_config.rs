//! Kafka's topic-level configs (`LogConfig`): the one table of every topic
//! key Kraft knows, with its Kafka default, its [`ConfigKind`] (type and
//! validation) and the broker key (`server.properties`) that sets its
//! default, where there is one.
//!
//! In: a key name. Out: its [`TopicConfigDef`], from which the controller
//! validates topic configs ([`validate_topic_config`]), the broker answers
//! DescribeConfigs (defaults and `config_type`) and IncrementalAlterConfigs
//! (APPEND/SUBTRACT only on list keys), the replica manager finds the value
//! of a key no layer sets, and the server maps `log.segment.bytes` to
//! `segment.bytes`.

use crate::config_kind::{ConfigKind, InvalidConfig};

/// One topic config key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TopicConfigDef {
    /// The topic key, e.g. `segment.bytes`.
    pub name: &'static str,
    /// Kafka's default value (what DescribeConfigs reports as
    /// DEFAULT_CONFIG).
    pub default: &'static str,
    /// How values are typed and checked.
    pub kind: ConfigKind,
    /// The broker key whose value in `server.properties` defaults this key
    /// for every topic (`log.segment.bytes`), if Kraft reads one.
    pub broker_key: Option<&'static str>,
}

impl TopicConfigDef {
    /// Checks `value` for this key; the error is Kafka's text.
    pub fn check(&self, value: &str) -> Result<(), InvalidConfig> {
        self.kind.check(self.name, value)
    }
}

use ConfigKind::{Boolean, Double, Int, ListOf, Long, OneOf, ThrottledReplicas};

/// `compression.type` (topic and broker).
pub const COMPRESSION: ConfigKind =
    OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]);
/// `cleanup.policy` (topic and broker).
pub const CLEANUP_POLICY: ConfigKind = ListOf(&["delete", "compact"]);
/// `message.timestamp.type` (topic and broker).
pub const TIMESTAMP_TYPE: ConfigKind = OneOf(&["CreateTime", "LogAppendTime"]);
/// A ratio between 0 and 1.
pub const RATIO: ConfigKind = Double { min: 0.0, max: 1.0 };

const MAX_LONG: &str = "9223372036854775807";

const fn def(name: &'static str, default: &'static str, kind: ConfigKind) -> TopicConfigDef {
    TopicConfigDef {
        name,
        default,
        kind,
        broker_key: None,
    }
}

const fn with_broker_key(
    name: &'static str,
    default: &'static str,
    kind: ConfigKind,
    broker_key: &'static str,
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        default,
        kind,
        broker_key: Some(broker_key),
    }
}

/// Kafka's topic configs, by name, with their defaults, types, minimums and
/// broker keys.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    def("cleanup.policy", "delete", CLEANUP_POLICY),
    def("compression.type", "producer", COMPRESSION),
    def("compression.gzip.level", "-1", Int { min: -1, max: 9 }),
    def("compression.lz4.level", "9", Int { min: 1, max: 17 }),
    def(
        "compression.zstd.level",
        "3",
        Int {
            min: -131_072,
            max: 22,
        },
    ),
    def("delete.retention.ms", "86400000", Long { min: 0 }),
    def("file.delete.delay.ms", "60000", Long { min: 0 }),
    with_broker_key(
        "flush.messages",
        MAX_LONG,
        Long { min: 1 },
        "log.flush.interval.messages",
    ),
    with_broker_key(
        "flush.ms",
        MAX_LONG,
        Long { min: 0 },
        "log.flush.interval.ms",
    ),
    def(
        "follower.replication.throttled.replicas",
        "",
        ThrottledReplicas,
    ),
    with_broker_key(
        "index.interval.bytes",
        "4096",
        ConfigKind::int_at_least(0),
        "log.index.interval.bytes",
    ),
    def(
        "leader.replication.throttled.replicas",
        "",
        ThrottledReplicas,
    ),
    def("local.retention.bytes", "-2", Long { min: -2 }),
    def("local.retention.ms", "-2", Long { min: -2 }),
    def("max.compaction.lag.ms", MAX_LONG, Long { min: 1 }),
    with_broker_key(
        "max.message.bytes",
        "1048588",
        ConfigKind::int_at_least(0),
        "message.max.bytes",
    ),
    def("message.downconversion.enable", "true", Boolean),
    with_broker_key(
        "message.timestamp.after.max.ms",
        "3600000",
        Long { min: 0 },
        "log.message.timestamp.after.max.ms",
    ),
    def("message.timestamp.before.max.ms", MAX_LONG, Long { min: 0 }),
    def(
        "message.timestamp.difference.max.ms",
        MAX_LONG,
        Long { min: 0 },
    ),
    with_broker_key(
        "message.timestamp.type",
        "CreateTime",
        TIMESTAMP_TYPE,
        "log.message.timestamp.type",
    ),
    def("min.cleanable.dirty.ratio", "0.5", RATIO),
    def("min.compaction.lag.ms", "0", Long { min: 0 }),
    with_broker_key(
        "min.insync.replicas",
        "1",
        ConfigKind::int_at_least(1),
        "min.insync.replicas",
    ),
    def("preallocate", "false", Boolean),
    def("remote.storage.enable", "false", Boolean),
    with_broker_key(
        "retention.bytes",
        "-1",
        Long { min: i64::MIN },
        "log.retention.bytes",
    ),
    with_broker_key(
        "retention.ms",
        "604800000",
        Long { min: -1 },
        "log.retention.ms",
    ),
    // Kafka 3.x's minimum (a legacy record header); 4.0 raised it to 1 MiB.
    with_broker_key(
        "segment.bytes",
        "1073741824",
        ConfigKind::int_at_least(14),
        "log.segment.bytes",
    ),
    with_broker_key(
        "segment.index.bytes",
        "10485760",
        ConfigKind::int_at_least(4),
        "log.index.size.max.bytes",
    ),
    def("segment.jitter.ms", "0", Long { min: 0 }),
    with_broker_key("segment.ms", "604800000", Long { min: 1 }, "log.roll.ms"),
    def("unclean.leader.election.enable", "false", Boolean),
];

/// The definition of topic config `name`, if known.
pub fn topic_config(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// The topic key that broker key `broker_key` defaults, if any.
pub fn topic_config_for_broker_key(broker_key: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS
        .iter()
        .find(|d| d.broker_key == Some(broker_key))
}

/// An unknown topic key, as INVALID_CONFIG says it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TopicConfigError {
    #[error("Unknown topic config name: {0}")]
    Unknown(String),
    #[error(transparent)]
    Invalid(#[from] InvalidConfig),
}

/// Checks one topic config: a known key, and a value valid for it.
pub fn validate_topic_config(key: &str, value: &str) -> Result<(), TopicConfigError> {
    let def = topic_config(key).ok_or_else(|| TopicConfigError::Unknown(key.to_string()))?;
    Ok(def.check(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_passes_its_own_validation() {
        for def in TOPIC_CONFIGS {
            assert_eq!(def.check(def.default), Ok(()), "{}", def.name);
        }
    }

    #[test]
    fn names_are_unique_and_sorted_lookups_work() {
        for (i, def) in TOPIC_CONFIGS.iter().enumerate() {
            assert_eq!(topic_config(def.name), Some(def));
            assert!(TOPIC_CONFIGS[..i].iter().all(|d| d.name != def.name));
        }
        assert_eq!(topic_config("retention.mss"), None);
        let segment = topic_config_for_broker_key("log.segment.bytes").unwrap();
        assert_eq!(segment.name, "segment.bytes");
        assert_eq!(
            topic_config_for_broker_key("log.index.size.max.bytes").map(|d| d.name),
            Some("segment.index.bytes")
        );
        assert_eq!(topic_config_for_broker_key("segment.bytes"), None);
        let broker_keys = TOPIC_CONFIGS.iter().filter(|d| d.broker_key.is_some());
        assert_eq!(broker_keys.count(), 12);
    }

    #[test]
    fn lists_are_the_list_keys() {
        let lists: Vec<&str> = TOPIC_CONFIGS
            .iter()
            .filter(|d| d.kind.is_list())
            .map(|d| d.name)
            .collect();
        assert_eq!(
            lists,
            [
                "cleanup.policy",
                "follower.replication.throttled.replicas",
                "leader.replication.throttled.replicas"
            ]
        );
    }

    #[test]
    fn valid_topic_configs_pass() {
        for (key, value) in [
            ("cleanup.policy", "compact,delete"),
            ("cleanup.policy", "delete"),
            ("compression.type", "zstd"),
            ("retention.ms", "-1"),
            ("retention.bytes", "-1"),
            ("segment.bytes", " 1048576 "),
            ("min.cleanable.dirty.ratio", "0.5"),
            ("preallocate", "TRUE"),
            ("message.timestamp.type", "LogAppendTime"),
            ("leader.replication.throttled.replicas", "0:1,1:2"),
            ("follower.replication.throttled.replicas", "*"),
        ] {
            assert_eq!(validate_topic_config(key, value), Ok(()), "{key}={value}");
        }
    }

    #[test]
    fn bad_topic_configs_name_key_and_value() {
        for (key, value) in [
            ("retention.ms", "soon"),
            ("retention.ms", "-2"),
            ("segment.bytes", "3"),
            ("segment.bytes", "9999999999"),
            ("min.insync.replicas", "0"),
            ("min.cleanable.dirty.ratio", "1.5"),
            ("min.cleanable.dirty.ratio", "NaN"),
            ("cleanup.policy", "forever"),
            ("cleanup.policy", ""),
            ("compression.type", "brotli"),
            ("preallocate", "yes"),
            ("leader.replication.throttled.replicas", "0-1"),
        ] {
            let err = validate_topic_config(key, value).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains(value), "{err}");
            assert!(err.starts_with("Invalid value "), "{err}");
        }
        let err = validate_topic_config("retention.mss", "1").unwrap_err();
        assert_eq!(err.to_string(), "Unknown topic config name: retention.mss");
    }
}
