//! [`MetadataImage`]: the whole cluster metadata at one offset, made of the
//! per-concern sub-images. Immutable; a clone is cheap (persistent maps), so
//! publishers share it as `Arc<MetadataImage>`. New images come only from
//! [`MetadataDelta::apply`](crate::MetadataDelta::apply).

use kraft_proto::metadata::MetadataRecord;

use crate::{ClusterImage, ConfigurationsImage, FeaturesImage, ProducerIdsImage, TopicsImage};

/// The cluster metadata after applying every record up to [`offset`](Self::offset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataImage {
    pub(crate) offset: u64,
    pub(crate) features: FeaturesImage,
    pub(crate) cluster: ClusterImage,
    pub(crate) topics: TopicsImage,
    pub(crate) configs: ConfigurationsImage,
    pub(crate) producer_ids: ProducerIdsImage,
}

impl MetadataImage {
    /// The image before any record: offset 0, nothing in it.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The metadata offset: the Raft index of the last batch applied (0 for
    /// the empty image).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn features(&self) -> &FeaturesImage {
        &self.features
    }

    pub fn cluster(&self) -> &ClusterImage {
        &self.cluster
    }

    pub fn topics(&self) -> &TopicsImage {
        &self.topics
    }

    pub fn configs(&self) -> &ConfigurationsImage {
        &self.configs
    }

    pub fn producer_ids(&self) -> &ProducerIdsImage {
        &self.producer_ids
    }

    /// Whether the image holds no metadata (its offset may still be > 0).
    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
            && self.cluster.is_empty()
            && self.topics.is_empty()
            && self.configs.is_empty()
            && self.producer_ids.is_empty()
    }

    /// The image written back as records, in an order that replays cleanly
    /// into an empty image: features, brokers, topics each followed by its
    /// partitions, configs, the next producer id. This is what a snapshot holds. The offset is not
    /// a record; a snapshot carries it in its header.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut out = Vec::new();
        self.features.write_records(&mut out);
        self.cluster.write_records(&mut out);
        self.topics.write_records(&mut out);
        self.configs.write_records(&mut out);
        self.producer_ids.write_records(&mut out);
        out
    }
}
