//! Dynamic configs: [`ConfigurationsImage`] maps a resource (a topic, a
//! broker, or the cluster-wide broker default) to its config keys, and
//! [`ConfigurationsDelta`] is what `ConfigRecord`s are replayed into.
//! A resource with no keys left disappears.

use std::collections::BTreeSet;

use imbl::OrdMap;
use kraft_proto::metadata::{
    metadata_record::Record, ConfigRecord, ConfigResourceType, MetadataRecord,
};

use crate::{record, MetadataError};

/// A config resource: `(type, name)`. For brokers the name is the broker id
/// in decimal, or `""` for the cluster-wide default.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigResource {
    pub resource_type: ConfigResourceType,
    pub name: String,
}

impl ConfigResource {
    pub fn topic(name: impl Into<String>) -> Self {
        Self {
            resource_type: ConfigResourceType::ConfigResourceTopic,
            name: name.into(),
        }
    }

    /// A broker's resource; `""` is the cluster-wide broker default.
    pub fn broker(name: impl Into<String>) -> Self {
        Self {
            resource_type: ConfigResourceType::ConfigResourceBroker,
            name: name.into(),
        }
    }
}

/// The config keys set on one resource, by key.
pub type ResourceConfigs = OrdMap<String, String>;

/// Dynamic configs by resource. No resource maps to an empty key set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigurationsImage {
    resources: OrdMap<ConfigResource, ResourceConfigs>,
}

impl ConfigurationsImage {
    /// No configs.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The keys set on `resource` (`None` if there are none).
    pub fn resource(&self, resource: &ConfigResource) -> Option<&ResourceConfigs> {
        self.resources.get(resource)
    }

    /// One key of one resource.
    pub fn get(&self, resource: &ConfigResource, key: &str) -> Option<&str> {
        self.resource(resource)?.get(key).map(String::as_str)
    }

    /// Every resource with configs, ordered by (type, name).
    pub fn resources(&self) -> impl Iterator<Item = (&ConfigResource, &ResourceConfigs)> + '_ {
        self.resources.iter()
    }

    pub fn len(&self) -> usize {
        self.resources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// Appends one `ConfigRecord` (with a value) per key.
    pub fn write_records(&self, out: &mut Vec<MetadataRecord>) {
        for (resource, configs) in &self.resources {
            out.extend(configs.iter().map(|(key, value)| {
                record(Record::Config(ConfigRecord {
                    resource_type: resource.resource_type as i32,
                    resource_name: resource.name.clone(),
                    name: key.clone(),
                    value: Some(value.clone()),
                }))
            }));
        }
    }
}

/// Changes to [`ConfigurationsImage`]: a working copy plus the resources
/// touched.
#[derive(Debug, Clone)]
pub struct ConfigurationsDelta {
    image: ConfigurationsImage,
    changed: BTreeSet<ConfigResource>,
}

impl ConfigurationsDelta {
    pub fn new(base: ConfigurationsImage) -> Self {
        Self {
            image: base,
            changed: BTreeSet::new(),
        }
    }

    /// A delta whose result is `image`, reporting `changed` (built by
    /// [`MetadataDelta::between`](crate::MetadataDelta::between)).
    pub(crate) fn from_diff(image: ConfigurationsImage, changed: BTreeSet<ConfigResource>) -> Self {
        Self { image, changed }
    }

    /// Sets (value present) or deletes (value absent) one key. Deleting a
    /// key that is not set changes nothing but still counts as a touch.
    pub(crate) fn replay_config(&mut self, r: &ConfigRecord) -> Result<(), MetadataError> {
        let resource_type = ConfigResourceType::try_from(r.resource_type)
            .ok()
            .filter(|t| *t != ConfigResourceType::ConfigResourceUnknown)
            .ok_or(MetadataError::InvalidConfigResourceType {
                value: r.resource_type,
            })?;
        let resource = ConfigResource {
            resource_type,
            name: r.resource_name.clone(),
        };
        let mut configs = self
            .image
            .resources
            .get(&resource)
            .cloned()
            .unwrap_or_default();
        match &r.value {
            Some(value) => {
                configs.insert(r.name.clone(), value.clone());
            }
            None => {
                configs.remove(&r.name);
            }
        }
        if configs.is_empty() {
            self.image.resources.remove(&resource);
        } else {
            self.image.resources.insert(resource.clone(), configs);
        }
        self.changed.insert(resource);
        Ok(())
    }

    /// Drops every key of `resource` (a removed topic's configs go with it).
    pub(crate) fn remove_resource(&mut self, resource: &ConfigResource) {
        if self.image.resources.remove(resource).is_some() {
            self.changed.insert(resource.clone());
        }
    }

    /// The resources this delta touched, with their keys now (`None` = no
    /// keys left).
    pub fn changed_resources(
        &self,
    ) -> impl Iterator<Item = (&ConfigResource, Option<&ResourceConfigs>)> + '_ {
        self.changed.iter().map(|r| (r, self.image.resource(r)))
    }

    /// The state so far, as it will be after [`apply`](Self::apply).
    pub fn image(&self) -> &ConfigurationsImage {
        &self.image
    }

    pub fn apply(self) -> ConfigurationsImage {
        self.image
    }
}
