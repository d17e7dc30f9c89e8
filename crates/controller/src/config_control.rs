//! ConfigControl: dynamic configs for topics and brokers, and the rules a
//! config key and value must follow.
//!
//! Data enters as `ConfigRecord` changes (an AlterConfigs request) or as a
//! new topic's config map (from CreateTopics); what leaves is the
//! `ConfigRecord`s to append, or an `INVALID_CONFIG` error naming the key
//! and value. [`alter_configs`] is pure: it checks a request against the
//! current image and changes nothing; replaying the records (in the
//! metadata crate) is the only way configs change.
//!
//! # Which keys are accepted
//!
//! - **Topic** resources are strict, as in Kafka: only the topic configs in
//!   [`TOPIC_CONFIGS`], each value parsed and range-checked the way Kafka's
//!   `LogConfig` does (`Invalid value X for configuration K: ...`).
//! - **Broker** resources (a broker id, or `""` for the cluster default)
//!   check the values of the keys in [`BROKER_CONFIGS`] but accept any other
//!   key. Kafka only takes custom broker keys from static files; we keep the
//!   dynamic resources open so tooling (and tests) can store their own keys.
//! - Deleting a key (no value) is always fine for a known key; deleting an
//!   unknown topic key is accepted only if it is set (so it can be cleaned
//!   up), otherwise it is a typo and INVALID_CONFIG.

use kraft_metadata::{record, ConfigResource, MetadataImage};
use kraft_proto::metadata::{
    metadata_record::Record, ConfigRecord, ConfigResourceType, MetadataRecord,
};

use crate::error::ControllerError;
use crate::error_codes::{INVALID_CONFIG, INVALID_REQUEST, UNKNOWN_TOPIC_OR_PARTITION};

/// How a config value is parsed and checked. Bounds are inclusive.
#[derive(Clone, Copy, Debug)]
pub enum ConfigType {
    Int {
        min: i32,
        max: i32,
    },
    Long {
        min: i64,
    },
    Double {
        min: f64,
        max: f64,
    },
    Boolean,
    /// One of these strings, exactly.
    OneOf(&'static [&'static str]),
    /// A non-empty comma-separated list of these strings.
    ListOf(&'static [&'static str]),
    /// `*`, or a comma-separated list of `partition:broker` pairs.
    ThrottledReplicas,
}

use ConfigType::*;

const COMPRESSION: ConfigType =
    OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]);
const CLEANUP_POLICY: ConfigType = ListOf(&["delete", "compact"]);
const TIMESTAMP_TYPE: ConfigType = OneOf(&["CreateTime", "LogAppendTime"]);
const RATIO: ConfigType = Double { min: 0.0, max: 1.0 };
const fn int_at_least(min: i32) -> ConfigType {
    Int { min, max: i32::MAX }
}

/// Kafka's topic-level configs (`LogConfig`), with their types and minimums.
pub const TOPIC_CONFIGS: &[(&str, ConfigType)] = &[
    ("cleanup.policy", CLEANUP_POLICY),
    ("compression.type", COMPRESSION),
    ("compression.gzip.level", Int { min: -1, max: 9 }),
    ("compression.lz4.level", Int { min: 1, max: 17 }),
    (
        "compression.zstd.level",
        Int {
            min: -131_072,
            max: 22,
        },
    ),
    ("delete.retention.ms", Long { min: 0 }),
    ("file.delete.delay.ms", Long { min: 0 }),
    ("flush.messages", Long { min: 1 }),
    ("flush.ms", Long { min: 0 }),
    ("follower.replication.throttled.replicas", ThrottledReplicas),
    ("index.interval.bytes", int_at_least(0)),
    ("leader.replication.throttled.replicas", ThrottledReplicas),
    ("local.retention.bytes", Long { min: -2 }),
    ("local.retention.ms", Long { min: -2 }),
    ("max.compaction.lag.ms", Long { min: 1 }),
    ("max.message.bytes", int_at_least(0)),
    ("message.downconversion.enable", Boolean),
    ("message.timestamp.after.max.ms", Long { min: 0 }),
    ("message.timestamp.before.max.ms", Long { min: 0 }),
    ("message.timestamp.difference.max.ms", Long { min: 0 }),
    ("message.timestamp.type", TIMESTAMP_TYPE),
    ("min.cleanable.dirty.ratio", RATIO),
    ("min.compaction.lag.ms", Long { min: 0 }),
    ("min.insync.replicas", int_at_least(1)),
    ("preallocate", Boolean),
    ("remote.storage.enable", Boolean),
    ("retention.bytes", Long { min: i64::MIN }),
    ("retention.ms", Long { min: -1 }),
    // Kafka 3.x's minimum (a legacy record header); 4.0 raised it to 1 MiB.
    ("segment.bytes", int_at_least(14)),
    ("segment.index.bytes", int_at_least(4)),
    ("segment.jitter.ms", Long { min: 0 }),
    ("segment.ms", Long { min: 1 }),
    ("unclean.leader.election.enable", Boolean),
];

/// Broker configs whose dynamic values are checked (others pass; see the
/// module docs).
pub const BROKER_CONFIGS: &[(&str, ConfigType)] = &[
    ("auto.create.topics.enable", Boolean),
    ("compression.type", COMPRESSION),
    ("default.replication.factor", int_at_least(1)),
    ("log.cleaner.delete.retention.ms", Long { min: 0 }),
    ("log.cleaner.min.cleanable.ratio", RATIO),
    ("log.cleanup.policy", CLEANUP_POLICY),
    ("log.flush.interval.messages", Long { min: 1 }),
    ("log.flush.interval.ms", Long { min: 0 }),
    ("log.index.interval.bytes", int_at_least(0)),
    ("log.message.timestamp.type", TIMESTAMP_TYPE),
    ("log.preallocate", Boolean),
    ("log.retention.bytes", Long { min: i64::MIN }),
    ("log.retention.ms", Long { min: -1 }),
    ("log.roll.ms", Long { min: 1 }),
    ("log.segment.bytes", int_at_least(14)),
    ("log.segment.delete.delay.ms", Long { min: 0 }),
    ("message.max.bytes", int_at_least(0)),
    ("min.insync.replicas", int_at_least(1)),
    ("num.partitions", int_at_least(1)),
    ("unclean.leader.election.enable", Boolean),
];

/// Checks `value` against the type of `key` in `table`; `Ok(false)` if the
/// key is not in the table.
fn check_value(
    table: &[(&str, ConfigType)],
    key: &str,
    value: &str,
) -> Result<bool, ControllerError> {
    let Some((_, ty)) = table.iter().find(|(k, _)| *k == key) else {
        return Ok(false);
    };
    let bad = |why: String| {
        Err(ControllerError::new(
            INVALID_CONFIG,
            format!("Invalid value {value} for configuration {key}: {why}"),
        ))
    };
    let v = value.trim();
    match *ty {
        Int { min, max } => match v.parse::<i32>() {
            Err(_) => return bad("Not a number of type INT".into()),
            Ok(n) if n < min || n > max => return bad(range(min, max, i32::MAX)),
            Ok(_) => {}
        },
        Long { min } => match v.parse::<i64>() {
            Err(_) => return bad("Not a number of type LONG".into()),
            Ok(n) if n < min => return bad(format!("Value must be at least {min}")),
            Ok(_) => {}
        },
        Double { min, max } => match v.parse::<f64>() {
            Ok(n) if n.is_finite() && (min..=max).contains(&n) => {}
            Ok(_) => return bad(format!("Value must be between {min} and {max}")),
            Err(_) => return bad("Not a number of type DOUBLE".into()),
        },
        Boolean => {
            if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                return bad("Expected value to be either true or false".into());
            }
        }
        OneOf(allowed) => {
            if !allowed.contains(&v) {
                return bad(format!("String must be one of: {}", allowed.join(", ")));
            }
        }
        ListOf(allowed) => {
            let items: Vec<&str> = v.split(',').map(str::trim).collect();
            if items.iter().any(|i| !allowed.contains(i)) {
                return bad(format!("Each item must be one of: {}", allowed.join(", ")));
            }
        }
        ThrottledReplicas => {
            let pair = |p: &str| {
                p.trim()
                    .split_once(':')
                    .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok())
            };
            if v != "*" && !v.split(',').all(pair) {
                return bad("Expected '*' or a list of partition:broker pairs".into());
            }
        }
    }
    Ok(true)
}

fn range<T: std::fmt::Display + PartialEq>(min: T, max: T, top: T) -> String {
    if max == top {
        format!("Value must be at least {min}")
    } else {
        format!("Value must be between {min} and {max}")
    }
}

fn unknown_topic_config(key: &str) -> ControllerError {
    ControllerError::new(INVALID_CONFIG, format!("Unknown topic config name: {key}"))
}

/// Checks a new topic's configs: every key a known topic config, every
/// value valid for it.
pub fn validate_topic_configs<'a>(
    configs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), ControllerError> {
    for (key, value) in configs {
        if !check_value(TOPIC_CONFIGS, key, value)? {
            return Err(unknown_topic_config(key));
        }
    }
    Ok(())
}

/// Validates `changes` and returns the records that apply them, skipping
/// changes that would leave a value as it is.
pub fn alter_configs(
    image: &MetadataImage,
    changes: &[ConfigRecord],
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let mut records = Vec::with_capacity(changes.len());
    for change in changes {
        let resource_type = validate_resource(image, change)?;
        if change.name.is_empty() {
            return Err(ControllerError::new(
                INVALID_CONFIG,
                "a config key must not be empty",
            ));
        }
        let resource = ConfigResource {
            resource_type,
            name: change.resource_name.clone(),
        };
        let current = image.configs().get(&resource, &change.name);
        let is_topic = resource_type == ConfigResourceType::ConfigResourceTopic;
        let table = if is_topic {
            TOPIC_CONFIGS
        } else {
            BROKER_CONFIGS
        };
        match change.value.as_deref() {
            Some(value) => {
                if !check_value(table, &change.name, value)? && is_topic {
                    return Err(unknown_topic_config(&change.name));
                }
            }
            None => {
                let known = table.iter().any(|(k, _)| *k == change.name);
                if is_topic && !known && current.is_none() {
                    return Err(unknown_topic_config(&change.name));
                }
            }
        }
        if current == change.value.as_deref() {
            continue;
        }
        records.push(record(Record::Config(change.clone())));
    }
    Ok(records)
}

fn validate_resource(
    image: &MetadataImage,
    change: &ConfigRecord,
) -> Result<ConfigResourceType, ControllerError> {
    match ConfigResourceType::try_from(change.resource_type) {
        Ok(t @ ConfigResourceType::ConfigResourceTopic) => {
            if image
                .topics()
                .topic_by_name(&change.resource_name)
                .is_none()
            {
                return Err(ControllerError::new(
                    UNKNOWN_TOPIC_OR_PARTITION,
                    format!("topic '{}' does not exist", change.resource_name),
                ));
            }
            Ok(t)
        }
        Ok(t @ ConfigResourceType::ConfigResourceBroker) => {
            let name = &change.resource_name;
            if name.is_empty() || name.parse::<i32>().is_ok_and(|id| id >= 0) {
                Ok(t)
            } else {
                Err(ControllerError::new(
                    INVALID_REQUEST,
                    format!("broker config resource '{name}' is neither a broker id nor '' (the cluster default)"),
                ))
            }
        }
        _ => Err(ControllerError::new(
            INVALID_REQUEST,
            format!("unsupported config resource type {}", change.resource_type),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition_change::test_image::{image, topic};
    use uuid::Uuid;

    fn set(
        resource_type: ConfigResourceType,
        name: &str,
        key: &str,
        value: Option<&str>,
    ) -> ConfigRecord {
        ConfigRecord {
            resource_type: resource_type as i32,
            resource_name: name.into(),
            name: key.into(),
            value: value.map(str::to_string),
        }
    }

    fn topic_change(key: &str, value: Option<&str>) -> ConfigRecord {
        set(ConfigResourceType::ConfigResourceTopic, "t", key, value)
    }

    fn broker_change(key: &str, value: Option<&str>) -> ConfigRecord {
        set(ConfigResourceType::ConfigResourceBroker, "", key, value)
    }

    #[test]
    fn valid_topic_configs_pass() {
        let ok = [
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
        ];
        assert_eq!(validate_topic_configs(ok), Ok(()));
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
            let err = validate_topic_configs([(key, value)]).unwrap_err();
            assert_eq!(err.code, INVALID_CONFIG);
            assert!(
                err.message.contains(key) && err.message.contains(value),
                "{}",
                err.message
            );
        }
        let err = validate_topic_configs([("retention.mss", "1")]).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (INVALID_CONFIG, "Unknown topic config name: retention.mss")
        );
    }

    #[test]
    fn alter_configs_checks_topic_keys_strictly() {
        let img = image(vec![topic("t", Uuid::from_u128(1))]);
        let records = alter_configs(&img, &[topic_change("retention.ms", Some("1000"))]).unwrap();
        assert_eq!(records.len(), 1);
        let after = crate::partition_change::test_image::apply(&img, &records);
        assert!(
            alter_configs(&after, &[topic_change("retention.ms", Some("1000"))])
                .unwrap()
                .is_empty()
        );
        for bad in [
            topic_change("retention.ms", Some("x")),
            topic_change("nope", Some("1")),
            topic_change("nope", None),
        ] {
            assert_eq!(
                alter_configs(&img, &[bad]).unwrap_err().code,
                INVALID_CONFIG
            );
        }
        // Deleting a known key is fine (and a no-op when it is not set).
        assert!(alter_configs(&img, &[topic_change("retention.ms", None)])
            .unwrap()
            .is_empty());
        let missing = set(
            ConfigResourceType::ConfigResourceTopic,
            "gone",
            "retention.ms",
            Some("1"),
        );
        assert_eq!(
            alter_configs(&img, &[missing]).unwrap_err().code,
            UNKNOWN_TOPIC_OR_PARTITION
        );
    }

    #[test]
    fn broker_configs_check_known_values_and_accept_other_keys() {
        let img = image(vec![]);
        for ok in [
            broker_change("a", Some("anything")),
            broker_change("key.7", Some("x")),
            broker_change("log.retention.ms", Some("60000")),
            broker_change("num.partitions", Some("3")),
            broker_change("num.partitions", None),
        ] {
            assert!(alter_configs(&img, &[ok]).is_ok());
        }
        for bad in [
            broker_change("log.retention.ms", Some("1h")),
            broker_change("num.partitions", Some("0")),
            broker_change("auto.create.topics.enable", Some("maybe")),
        ] {
            let err = alter_configs(&img, &[bad]).unwrap_err();
            assert_eq!(err.code, INVALID_CONFIG, "{}", err.message);
        }
        let bad_resource = set(
            ConfigResourceType::ConfigResourceBroker,
            "x",
            "a",
            Some("1"),
        );
        assert_eq!(
            alter_configs(&img, &[bad_resource]).unwrap_err().code,
            INVALID_REQUEST
        );
    }
}
