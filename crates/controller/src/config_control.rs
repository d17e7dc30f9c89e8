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
//!   [`kraft_metadata::TOPIC_CONFIGS`], each value parsed and range-checked
//!   the way Kafka's `LogConfig` does (`Invalid value X for configuration K:
//!   ...`); the table and its checks live in kraft-metadata.
//! - **Broker** resources (a broker id, or `""` for the cluster default)
//!   check the values of the keys in [`BROKER_CONFIGS`] but accept any other
//!   key. Kafka only takes custom broker keys from static files; we keep the
//!   dynamic resources open so tooling (and tests) can store their own keys.
//! - Deleting a key (no value) is always fine for a known key; deleting an
//!   unknown topic key is accepted only if it is set (so it can be cleaned
//!   up), otherwise it is a typo and INVALID_CONFIG.

use kafka_protocol::error::ResponseError;
use kraft_metadata::config_kind::ConfigKind::{self, Boolean, Long};
use kraft_metadata::topic_config::{CLEANUP_POLICY, COMPRESSION, RATIO, TIMESTAMP_TYPE};
use kraft_metadata::{record, topic_config, validate_topic_config, ConfigResource, MetadataImage};
use kraft_proto::metadata::{
    metadata_record::Record, ConfigRecord, ConfigResourceType, MetadataRecord,
};

use crate::error::{invalid_config, ControllerError};

// The controller's RPCs carry Kafka error codes as i32.
const INVALID_CONFIG: i32 = ResponseError::InvalidConfig.code() as i32;
const INVALID_REQUEST: i32 = ResponseError::InvalidRequest.code() as i32;
const UNKNOWN_TOPIC_OR_PARTITION: i32 = ResponseError::UnknownTopicOrPartition.code() as i32;

fn error(code: i32, message: impl Into<String>) -> ControllerError {
    ControllerError::new(code, message)
}

const fn int_at_least(min: i32) -> ConfigKind {
    ConfigKind::int_at_least(min)
}

/// Broker configs whose dynamic values are checked (others pass; see the
/// module docs).
pub const BROKER_CONFIGS: &[(&str, ConfigKind)] = &[
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

/// The kind of broker config `key`, if its values are checked.
fn broker_config(key: &str) -> Option<ConfigKind> {
    BROKER_CONFIGS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, kind)| *kind)
}

fn unknown_topic_config(key: &str) -> ControllerError {
    error(INVALID_CONFIG, format!("Unknown topic config name: {key}"))
}

/// Checks a new topic's configs: every key a known topic config, every
/// value valid for it.
pub fn validate_topic_configs<'a>(
    configs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), ControllerError> {
    for (key, value) in configs {
        validate_topic_config(key, value).map_err(invalid_config)?;
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
            return Err(error(INVALID_CONFIG, "a config key must not be empty"));
        }
        let resource = ConfigResource {
            resource_type,
            name: change.resource_name.clone(),
        };
        let current = image.configs().get(&resource, &change.name);
        let is_topic = resource_type == ConfigResourceType::ConfigResourceTopic;
        let kind = if is_topic {
            topic_config(&change.name).map(|d| d.kind)
        } else {
            broker_config(&change.name)
        };
        match (change.value.as_deref(), kind) {
            (Some(value), Some(kind)) => kind
                .check(&change.name, value)
                .map_err(|e| error(INVALID_CONFIG, e.to_string()))?,
            (Some(_), None) if is_topic => return Err(unknown_topic_config(&change.name)),
            (None, None) if is_topic && current.is_none() => {
                return Err(unknown_topic_config(&change.name))
            }
            _ => {}
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
                return Err(error(
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
                Err(error(
                    INVALID_REQUEST,
                    format!("broker config resource '{name}' is neither a broker id nor '' (the cluster default)"),
                ))
            }
        }
        _ => Err(error(
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
    fn new_topic_configs_are_checked_with_kafkas_messages() {
        let ok = [("cleanup.policy", "compact,delete"), ("retention.ms", "-1")];
        assert_eq!(validate_topic_configs(ok), Ok(()));
        let err = validate_topic_configs([("retention.ms", "soon")]).unwrap_err();
        assert_eq!(err.code, INVALID_CONFIG);
        assert_eq!(
            err.message,
            "Invalid value soon for configuration retention.ms: Not a number of type LONG"
        );
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
