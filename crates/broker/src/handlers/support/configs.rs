//! Effective configs as DescribeConfigs and CreateTopics (v5+) report them:
//! each key's value with its source, highest precedence first, built from
//! kraft-metadata's topic-config table and the dynamic values in the image.
//!
//! In: the metadata image and a topic name, or a topic's dynamic keys. Out:
//! [`ConfigEntry`]s sorted by name.

use kraft_metadata::{ConfigResource, ConfigType, MetadataImage, TOPIC_CONFIGS};

/// `config_source` codes of DescribeConfigs / CreateTopics.
pub mod source {
    pub const DYNAMIC_TOPIC_CONFIG: i8 = 1;
    pub const DYNAMIC_BROKER_CONFIG: i8 = 2;
    pub const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    pub const DEFAULT_CONFIG: i8 = 5;
}

/// `resource_type` codes.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// One config key's effective value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub kind: ConfigType,
    pub read_only: bool,
    /// Every `(value, source)` that sets the key, highest precedence first;
    /// the first is the effective one.
    pub values: Vec<(String, i8)>,
}

impl ConfigEntry {
    pub fn new(name: &str, kind: ConfigType, value: &str, source: i8) -> ConfigEntry {
        ConfigEntry {
            name: name.to_string(),
            kind,
            read_only: false,
            values: vec![(value.to_string(), source)],
        }
    }

    /// Puts a higher-precedence value in front.
    pub fn override_with(&mut self, value: &str, source: i8) {
        self.values.insert(0, (value.to_string(), source));
    }

    /// The effective `(value, source)`.
    pub fn effective(&self) -> (&str, i8) {
        self.values
            .first()
            .map_or(("", source::DEFAULT_CONFIG), |(v, s)| (v.as_str(), *s))
    }
}

/// The effective configs of topic `name` (defaults under dynamic values).
pub fn topic_configs(image: &MetadataImage, name: &str) -> Vec<ConfigEntry> {
    let resource = ConfigResource::topic(name);
    let dynamic = image.configs().resource(&resource);
    topic_configs_with(
        dynamic
            .into_iter()
            .flat_map(|keys| keys.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    )
}

/// The effective configs of a topic whose dynamic keys are `dynamic`.
pub fn topic_configs_with<'a>(
    dynamic: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<ConfigEntry> {
    let mut entries: Vec<ConfigEntry> = TOPIC_CONFIGS
        .iter()
        .map(|d| {
            ConfigEntry::new(
                d.name,
                d.kind.config_type(),
                d.default,
                source::DEFAULT_CONFIG,
            )
        })
        .collect();
    for (key, value) in dynamic {
        let src = source::DYNAMIC_TOPIC_CONFIG;
        match entries.iter_mut().find(|e| e.name == key) {
            Some(entry) => entry.override_with(value, src),
            None => entries.push(ConfigEntry::new(key, ConfigType::Unknown, value, src)),
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}
