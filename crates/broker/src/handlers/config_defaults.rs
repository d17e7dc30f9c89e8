//! The config keys the broker knows: Kafka's topic configs with their
//! defaults and types, the config source and type codes of the protocol,
//! and value checks for typed keys.
//!
//! Used by DescribeConfigs (a topic's effective configs = dynamic values
//! from the metadata image over these defaults), CreateTopics v5+ (the
//! configs of a new topic) and IncrementalAlterConfigs (type checks,
//! APPEND/SUBTRACT only on list keys). Keys not listed here are accepted and
//! reported as they are, typed UNKNOWN.

/// `config_source` codes of DescribeConfigs / CreateTopics.
pub mod source {
    pub const DYNAMIC_TOPIC_CONFIG: i8 = 1;
    pub const DYNAMIC_BROKER_CONFIG: i8 = 2;
    pub const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    pub const DEFAULT_CONFIG: i8 = 5;
}

/// A config value's type (`config_type` in DescribeConfigs v3+).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    Unknown = 0,
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    Double = 6,
    List = 7,
}

/// One known key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigDef {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: ConfigType,
}

const fn def(name: &'static str, default: &'static str, kind: ConfigType) -> ConfigDef {
    ConfigDef {
        name,
        default,
        kind,
    }
}

const MAX_LONG: &str = "9223372036854775807";

/// Kafka's topic configs (`LogConfig`) with their defaults, by name.
pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    def("cleanup.policy", "delete", ConfigType::List),
    def("compression.type", "producer", ConfigType::String),
    def("delete.retention.ms", "86400000", ConfigType::Long),
    def("file.delete.delay.ms", "60000", ConfigType::Long),
    def("flush.messages", MAX_LONG, ConfigType::Long),
    def("flush.ms", MAX_LONG, ConfigType::Long),
    def(
        "follower.replication.throttled.replicas",
        "",
        ConfigType::List,
    ),
    def("index.interval.bytes", "4096", ConfigType::Int),
    def(
        "leader.replication.throttled.replicas",
        "",
        ConfigType::List,
    ),
    def("max.compaction.lag.ms", MAX_LONG, ConfigType::Long),
    def("max.message.bytes", "1048588", ConfigType::Int),
    def(
        "message.timestamp.after.max.ms",
        "3600000",
        ConfigType::Long,
    ),
    def(
        "message.timestamp.before.max.ms",
        MAX_LONG,
        ConfigType::Long,
    ),
    def("message.timestamp.type", "CreateTime", ConfigType::String),
    def("min.cleanable.dirty.ratio", "0.5", ConfigType::Double),
    def("min.compaction.lag.ms", "0", ConfigType::Long),
    def("min.insync.replicas", "1", ConfigType::Int),
    def("preallocate", "false", ConfigType::Boolean),
    def("retention.bytes", "-1", ConfigType::Long),
    def("retention.ms", "604800000", ConfigType::Long),
    def("segment.bytes", "1073741824", ConfigType::Int),
    def("segment.index.bytes", "10485760", ConfigType::Int),
    def("segment.jitter.ms", "0", ConfigType::Long),
    def("segment.ms", "604800000", ConfigType::Long),
    def(
        "unclean.leader.election.enable",
        "false",
        ConfigType::Boolean,
    ),
];

/// The definition of topic config `name`, if known.
pub fn topic_config(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Checks `value` against `kind`; the error says what was expected.
pub fn check_value(name: &str, kind: ConfigType, value: &str) -> Result<(), String> {
    let ok = match kind {
        ConfigType::Boolean => {
            value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")
        }
        ConfigType::Int => value.trim().parse::<i32>().is_ok(),
        ConfigType::Long => value.trim().parse::<i64>().is_ok(),
        ConfigType::Double => value.trim().parse::<f64>().is_ok(),
        ConfigType::String | ConfigType::List | ConfigType::Unknown => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid value '{value}' for config '{name}': expected {kind:?}"
        ))
    }
}

/// The items of a list value (`a,b , c` -> `[a, b, c]`; `""` -> `[]`).
pub fn list_items(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values() {
        assert!(check_value("k", ConfigType::Long, "86400000").is_ok());
        assert!(check_value("k", ConfigType::Int, "99999999999").is_err());
        assert!(check_value("k", ConfigType::Boolean, "TRUE").is_ok());
        assert!(check_value("k", ConfigType::Double, "x").is_err());
        assert_eq!(list_items("a, b,,c"), vec!["a", "b", "c"]);
        assert!(list_items("").is_empty());
    }
}
