//! ConfigControl: dynamic configs for topics and brokers.
//!
//! `alter_configs` is pure: it validates a request against the current image
//! and returns the `ConfigRecord`s to append; replaying them (in the
//! metadata crate) is the only way configs change.

use kraft_metadata::{record, ConfigResource, MetadataImage};
use kraft_proto::metadata::{
    metadata_record::Record, ConfigRecord, ConfigResourceType, MetadataRecord,
};

use crate::error::ControllerError;
use crate::error_codes::{INVALID_CONFIG, INVALID_REQUEST, UNKNOWN_TOPIC_OR_PARTITION};

/// Validates `changes` and returns the records that apply them, skipping
/// changes that would leave a value as it is.
pub fn alter_configs(
    image: &MetadataImage,
    changes: &[ConfigRecord],
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let mut records = Vec::with_capacity(changes.len());
    for change in changes {
        validate_resource(image, change)?;
        if change.name.is_empty() {
            return Err(ControllerError::new(
                INVALID_CONFIG,
                "a config key must not be empty",
            ));
        }
        let resource = ConfigResource {
            resource_type: change.resource_type(),
            name: change.resource_name.clone(),
        };
        let current = image.configs().get(&resource, &change.name);
        if current == change.value.as_deref() {
            continue;
        }
        records.push(record(Record::Config(change.clone())));
    }
    Ok(records)
}

fn validate_resource(image: &MetadataImage, change: &ConfigRecord) -> Result<(), ControllerError> {
    match ConfigResourceType::try_from(change.resource_type) {
        Ok(ConfigResourceType::ConfigResourceTopic) => {
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
            Ok(())
        }
        Ok(ConfigResourceType::ConfigResourceBroker) => {
            let name = &change.resource_name;
            if name.is_empty() || name.parse::<i32>().is_ok_and(|id| id >= 0) {
                Ok(())
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
