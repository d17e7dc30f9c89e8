//! Finalized feature levels (`metadata.version`, ...): [`FeaturesImage`] and
//! the [`FeaturesDelta`] that `FeatureLevelRecord`s are replayed into.

use std::collections::BTreeSet;

use imbl::OrdMap;
use kraft_proto::metadata::{metadata_record::Record, FeatureLevelRecord, MetadataRecord};

use crate::{record, MetadataError};

/// Finalized feature levels by feature name. A feature that is not listed
/// is not enabled (level 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeaturesImage {
    levels: OrdMap<String, i16>,
}

impl FeaturesImage {
    /// No finalized features.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The finalized level of `name`, if the feature is enabled.
    pub fn level(&self, name: &str) -> Option<i16> {
        self.levels.get(name).copied()
    }

    /// Every finalized feature and its level, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i16)> + '_ {
        self.levels.iter().map(|(k, v)| (k.as_str(), *v))
    }

    pub fn len(&self) -> usize {
        self.levels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Appends one `FeatureLevelRecord` per finalized feature.
    pub fn write_records(&self, out: &mut Vec<MetadataRecord>) {
        out.extend(self.levels.iter().map(|(name, level)| {
            record(Record::FeatureLevel(FeatureLevelRecord {
                name: name.clone(),
                feature_level: i32::from(*level),
            }))
        }));
    }
}

/// Changes to [`FeaturesImage`]: a working copy plus the names touched.
#[derive(Debug, Clone)]
pub struct FeaturesDelta {
    image: FeaturesImage,
    changed: BTreeSet<String>,
}

impl FeaturesDelta {
    pub fn new(base: FeaturesImage) -> Self {
        Self {
            image: base,
            changed: BTreeSet::new(),
        }
    }

    /// A delta whose result is `image`, reporting `changed` (built by
    /// [`MetadataDelta::between`](crate::MetadataDelta::between)).
    pub(crate) fn from_diff(image: FeaturesImage, changed: BTreeSet<String>) -> Self {
        Self { image, changed }
    }

    /// Sets a feature's level; level 0 removes the feature.
    pub(crate) fn replay_feature_level(
        &mut self,
        r: &FeatureLevelRecord,
    ) -> Result<(), MetadataError> {
        let level = i16::try_from(r.feature_level)
            .ok()
            .filter(|l| *l >= 0)
            .ok_or_else(|| MetadataError::InvalidFeatureLevel {
                name: r.name.clone(),
                level: r.feature_level,
            })?;
        if level == 0 {
            self.image.levels.remove(&r.name);
        } else {
            self.image.levels.insert(r.name.clone(), level);
        }
        self.changed.insert(r.name.clone());
        Ok(())
    }

    /// The features this delta touched, with their new level (`None` =
    /// removed).
    pub fn changed_features(&self) -> impl Iterator<Item = (&str, Option<i16>)> + '_ {
        self.changed
            .iter()
            .map(|name| (name.as_str(), self.image.level(name)))
    }

    /// The state so far, as it will be after [`apply`](Self::apply).
    pub fn image(&self) -> &FeaturesImage {
        &self.image
    }

    pub fn apply(self) -> FeaturesImage {
        self.image
    }
}
