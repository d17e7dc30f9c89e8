//! [`MetadataDelta`]: records replayed over a base [`MetadataImage`].
//!
//! Records enter through [`MetadataDelta::replay`] (one record) or
//! [`MetadataDelta::replay_batch`] (one committed Raft entry); the new image
//! leaves through [`MetadataDelta::apply`], which reuses every sub-image no
//! record touched. Before applying, publishers read what changed from the
//! sub-deltas ([`MetadataDelta::topics`], ...). `replay` is the only way
//! metadata state changes; [`MetadataDelta::between`] (in [`crate::diff`])
//! describes, in the same terms, how two images differ.

use kraft_proto::metadata::{metadata_record::Record, MetadataRecord, RecordBatch};

use crate::{
    diff, ClusterDelta, ConfigResource, ConfigurationsDelta, ConfigurationsImage, FeaturesDelta,
    MetadataError, MetadataImage, ProducerIdsImage, TopicsDelta, RECORD_VERSION,
};

/// Changes on top of a base image; sub-deltas exist only for the concerns
/// a record touched.
#[derive(Debug, Clone)]
pub struct MetadataDelta {
    base: MetadataImage,
    offset: u64,
    features: Option<FeaturesDelta>,
    cluster: Option<ClusterDelta>,
    topics: Option<TopicsDelta>,
    configs: Option<ConfigurationsDelta>,
    /// The producer-id state, once a record touched it.
    producer_ids: Option<ProducerIdsImage>,
}

impl MetadataDelta {
    /// An empty delta over `base`; its offset starts at the base's.
    pub fn new(base: MetadataImage) -> Self {
        Self {
            offset: base.offset(),
            base,
            features: None,
            cluster: None,
            topics: None,
            configs: None,
            producer_ids: None,
        }
    }

    /// The delta from `base` to `target`, as if the records between them
    /// had been replayed: what a broker publishes when it loads a snapshot
    /// (`target`) over the image it has (`base`). Anything `target` no
    /// longer holds is reported deleted (a topic, a broker, a config, a
    /// feature) and a partition's replica that moved away shows in
    /// [`TopicsDelta::local_changes`]`.deletes`. Its offset is `target`'s,
    /// and [`apply`](Self::apply) gives an image equal to `target`.
    pub fn between(base: &MetadataImage, target: &MetadataImage) -> Self {
        Self {
            base: base.clone(),
            offset: target.offset(),
            features: diff::features(&base.features, &target.features),
            cluster: diff::cluster(&base.cluster, &target.cluster),
            topics: diff::topics(&base.topics, &target.topics),
            configs: diff::configs(&base.configs, &target.configs),
            producer_ids: (base.producer_ids != target.producer_ids).then_some(target.producer_ids),
        }
    }

    /// Replays one record. On error the delta is unchanged by that record.
    /// Never panics, whatever the record holds.
    pub fn replay(&mut self, record: &MetadataRecord) -> Result<(), MetadataError> {
        if record.version != RECORD_VERSION {
            return Err(MetadataError::UnsupportedRecordVersion {
                version: record.version,
            });
        }
        let Some(r) = &record.record else {
            return Err(MetadataError::MissingRecord {
                version: record.version,
            });
        };
        match r {
            Record::RegisterBroker(r) => self.cluster_mut().replay_register(r),
            Record::UnregisterBroker(r) => self.cluster_mut().replay_unregister(r),
            Record::FenceBroker(r) => self.cluster_mut().replay_fence(r),
            Record::UnfenceBroker(r) => self.cluster_mut().replay_unfence(r),
            Record::BrokerControlledShutdown(r) => self.cluster_mut().replay_controlled_shutdown(r),
            Record::Topic(r) => self.topics_mut().replay_topic(r),
            Record::Partition(r) => self.topics_mut().replay_partition(r),
            Record::PartitionChange(r) => self.topics_mut().replay_partition_change(r),
            Record::RemoveTopic(r) => {
                let removed = self.topics_mut().replay_remove_topic(r)?;
                // As in Kafka, a topic's configs go with it.
                let resource = ConfigResource::topic(removed.name());
                if self.configs_image().resource(&resource).is_some() {
                    self.configs_mut().remove_resource(&resource);
                }
                Ok(())
            }
            Record::Config(r) => self.configs_mut().replay_config(r),
            Record::FeatureLevel(r) => self.features_mut().replay_feature_level(r),
            Record::NoOp(_) => Ok(()),
            Record::ProducerIds(r) => {
                let mut ids = self.producer_ids.unwrap_or(self.base.producer_ids);
                ids.replay(r)?;
                self.producer_ids = Some(ids);
                Ok(())
            }
        }
    }

    /// Replays the records of the batch committed at Raft index `offset`,
    /// then sets the delta's offset to it. `offset` must be above the
    /// delta's current offset. On error, the records before the failing one
    /// stay applied, the offset is not set, and the error names the record.
    pub fn replay_batch(&mut self, offset: u64, batch: &RecordBatch) -> Result<(), MetadataError> {
        if offset <= self.offset {
            return Err(MetadataError::NonIncreasingOffset {
                offset,
                current: self.offset,
            });
        }
        for (index, record) in batch.records.iter().enumerate() {
            self.replay(record)
                .map_err(|source| MetadataError::InBatch {
                    offset,
                    index,
                    source: Box::new(source),
                })?;
        }
        self.offset = offset;
        Ok(())
    }

    /// Sets the offset the applied image will have (e.g. a snapshot's).
    pub fn set_offset(&mut self, offset: u64) {
        self.offset = offset;
    }

    /// The offset the applied image will have.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The image this delta started from.
    pub fn base(&self) -> &MetadataImage {
        &self.base
    }

    /// Whether no record has touched any concern yet (NoOps touch nothing).
    pub fn is_empty(&self) -> bool {
        self.features.is_none()
            && self.cluster.is_none()
            && self.topics.is_none()
            && self.configs.is_none()
            && self.producer_ids.is_none()
    }

    pub fn features(&self) -> Option<&FeaturesDelta> {
        self.features.as_ref()
    }

    pub fn cluster(&self) -> Option<&ClusterDelta> {
        self.cluster.as_ref()
    }

    pub fn topics(&self) -> Option<&TopicsDelta> {
        self.topics.as_ref()
    }

    pub fn configs(&self) -> Option<&ConfigurationsDelta> {
        self.configs.as_ref()
    }

    /// The producer-id state, if a record changed it.
    pub fn producer_ids(&self) -> Option<&ProducerIdsImage> {
        self.producer_ids.as_ref()
    }

    /// The new image: touched sub-images are the sub-deltas' results, the
    /// others are the base's, shared.
    pub fn apply(self) -> MetadataImage {
        let base = self.base;
        MetadataImage {
            offset: self.offset,
            features: self.features.map_or(base.features, FeaturesDelta::apply),
            cluster: self.cluster.map_or(base.cluster, ClusterDelta::apply),
            topics: self.topics.map_or(base.topics, TopicsDelta::apply),
            configs: self
                .configs
                .map_or(base.configs, ConfigurationsDelta::apply),
            producer_ids: self.producer_ids.unwrap_or(base.producer_ids),
        }
    }

    fn features_mut(&mut self) -> &mut FeaturesDelta {
        self.features
            .get_or_insert_with(|| FeaturesDelta::new(self.base.features.clone()))
    }

    fn cluster_mut(&mut self) -> &mut ClusterDelta {
        self.cluster
            .get_or_insert_with(|| ClusterDelta::new(self.base.cluster.clone()))
    }

    fn topics_mut(&mut self) -> &mut TopicsDelta {
        self.topics
            .get_or_insert_with(|| TopicsDelta::new(self.base.topics.clone()))
    }

    fn configs_mut(&mut self) -> &mut ConfigurationsDelta {
        self.configs
            .get_or_insert_with(|| ConfigurationsDelta::new(self.base.configs.clone()))
    }

    fn configs_image(&self) -> &ConfigurationsImage {
        self.configs
            .as_ref()
            .map_or(&self.base.configs, ConfigurationsDelta::image)
    }
}
