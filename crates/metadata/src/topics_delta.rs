//! [`TopicsDelta`]: topic and partition records replayed over a
//! [`TopicsImage`], and what changed, for publishers: topics created,
//! changed and deleted, and [`LocalReplicaChanges`] for one broker.

use std::collections::{BTreeMap, BTreeSet};

use kraft_proto::metadata::{
    PartitionChangeRecord, PartitionRecord, RemoveTopicRecord, TopicRecord,
};
use uuid::Uuid;

use crate::record::parse_uuid;
use crate::{MetadataError, PartitionRegistration, TopicImage, TopicsImage};

/// Changes to [`TopicsImage`]: a working copy, plus which topics and
/// partitions were touched.
#[derive(Debug, Clone)]
pub struct TopicsDelta {
    base: TopicsImage,
    image: TopicsImage,
    /// Topics created or changed (and still present), with the partitions
    /// created or changed in them (and, in a delta between two images, the
    /// partitions the topic no longer has).
    changed: BTreeMap<Uuid, BTreeSet<i32>>,
    /// Topics created by this delta (not in the base, or deleted and then
    /// recreated with the same id).
    created: BTreeSet<Uuid>,
    /// Topics of the base image this delta removed.
    deleted: BTreeSet<Uuid>,
}

/// What a delta means for the replicas one broker hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalReplicaChanges {
    /// Created or changed partitions this broker now leads.
    pub leaders: BTreeMap<(Uuid, i32), PartitionRegistration>,
    /// Created or changed partitions this broker now follows.
    pub followers: BTreeMap<(Uuid, i32), PartitionRegistration>,
    /// Partitions this broker had a replica of and no longer has (topic
    /// deleted or replica moved away), with the topic's name.
    pub deletes: BTreeMap<(Uuid, i32), String>,
}

impl TopicsDelta {
    pub fn new(base: TopicsImage) -> Self {
        Self {
            image: base.clone(),
            base,
            changed: BTreeMap::new(),
            created: BTreeSet::new(),
            deleted: BTreeSet::new(),
        }
    }

    /// A delta from `base` to `image` with the change sets given (built by
    /// [`MetadataDelta::between`](crate::MetadataDelta::between)).
    pub(crate) fn from_diff(
        base: TopicsImage,
        image: TopicsImage,
        changed: BTreeMap<Uuid, BTreeSet<i32>>,
        created: BTreeSet<Uuid>,
        deleted: BTreeSet<Uuid>,
    ) -> Self {
        Self {
            base,
            image,
            changed,
            created,
            deleted,
        }
    }

    pub(crate) fn replay_topic(&mut self, r: &TopicRecord) -> Result<(), MetadataError> {
        let id = parse_uuid("topic_id", &r.topic_id)?;
        if r.name.is_empty() {
            return Err(MetadataError::EmptyTopicName);
        }
        if self.image.contains_name(&r.name) {
            return Err(MetadataError::DuplicateTopicName {
                name: r.name.clone(),
            });
        }
        if self.image.topic(id).is_some() {
            return Err(MetadataError::DuplicateTopicId { id });
        }
        self.image.insert(TopicImage::new(r.name.clone(), id));
        self.changed.entry(id).or_default();
        self.created.insert(id);
        Ok(())
    }

    /// Creates a partition, or replaces it if it exists.
    pub(crate) fn replay_partition(&mut self, r: &PartitionRecord) -> Result<(), MetadataError> {
        let (topic_id, topic) = self.topic_mut(&r.topic_id)?;
        if r.partition_id < 0 {
            return Err(MetadataError::InvalidPartitionId {
                topic_id,
                partition_id: r.partition_id,
            });
        }
        topic
            .partitions_mut()
            .insert(r.partition_id, PartitionRegistration::from_record(r));
        self.touch(topic_id, r.partition_id);
        Ok(())
    }

    /// Merges a change into a partition; see [`crate::partition`] for the
    /// epoch rule.
    pub(crate) fn replay_partition_change(
        &mut self,
        r: &PartitionChangeRecord,
    ) -> Result<(), MetadataError> {
        let (topic_id, topic) = self.topic_mut(&r.topic_id)?;
        let current = topic
            .partition(r.partition_id)
            .ok_or(MetadataError::UnknownPartition {
                topic_id,
                partition_id: r.partition_id,
            })?;
        let next = current.merge(topic_id, r)?;
        topic.partitions_mut().insert(r.partition_id, next);
        self.touch(topic_id, r.partition_id);
        Ok(())
    }

    /// Removes a topic and its partitions; returns the removed topic.
    pub(crate) fn replay_remove_topic(
        &mut self,
        r: &RemoveTopicRecord,
    ) -> Result<TopicImage, MetadataError> {
        let id = parse_uuid("topic_id", &r.topic_id)?;
        let removed = self
            .image
            .remove(id)
            .ok_or(MetadataError::UnknownTopicId { id })?;
        self.changed.remove(&id);
        self.created.remove(&id);
        if self.base.topic(id).is_some() {
            self.deleted.insert(id);
        }
        Ok(removed)
    }

    fn topic_mut(&mut self, raw_id: &[u8]) -> Result<(Uuid, &mut TopicImage), MetadataError> {
        let id = parse_uuid("topic_id", raw_id)?;
        let topic = self
            .image
            .topic_mut(id)
            .ok_or(MetadataError::UnknownTopicId { id })?;
        Ok((id, topic))
    }

    fn touch(&mut self, topic_id: Uuid, partition_id: i32) {
        self.changed
            .entry(topic_id)
            .or_default()
            .insert(partition_id);
    }

    /// Topics created or changed by this delta, in their new state, by id.
    /// A topic deleted and recreated with the same id is both here and in
    /// [`deleted_topics`](Self::deleted_topics); act on deletes first.
    pub fn changed_topics(&self) -> impl Iterator<Item = &TopicImage> + '_ {
        self.changed.keys().filter_map(|id| self.image.topic(*id))
    }

    /// Whether this delta created topic `id` (rather than changing it).
    pub fn is_created(&self, id: Uuid) -> bool {
        self.created.contains(&id)
    }

    /// The partitions of topic `id` this delta created or changed, in their
    /// new state (a partition the topic no longer has is not listed).
    pub fn changed_partitions(
        &self,
        id: Uuid,
    ) -> impl Iterator<Item = (i32, &PartitionRegistration)> + '_ {
        let topic = self.image.topic(id);
        self.changed
            .get(&id)
            .into_iter()
            .flatten()
            .filter_map(move |p| Some((*p, topic?.partition(*p)?)))
    }

    /// Topics of the base image this delta removed, as they were in the
    /// base image.
    pub fn deleted_topics(&self) -> impl Iterator<Item = &TopicImage> + '_ {
        self.deleted.iter().filter_map(|id| self.base.topic(*id))
    }

    /// What this delta means for the replicas `broker_id` hosts.
    pub fn local_changes(&self, broker_id: i32) -> LocalReplicaChanges {
        let mut out = LocalReplicaChanges::default();
        for topic in self.deleted_topics() {
            for (p, reg) in topic.partitions() {
                if reg.has_replica(broker_id) {
                    out.deletes
                        .insert((topic.id(), *p), topic.name().to_owned());
                }
            }
        }
        for (&id, partitions) in &self.changed {
            let Some(topic) = self.image.topic(id) else {
                continue;
            };
            for &p in partitions {
                match topic.partition(p) {
                    Some(reg) if reg.has_replica(broker_id) => {
                        let side = if reg.leader == broker_id {
                            &mut out.leaders
                        } else {
                            &mut out.followers
                        };
                        side.insert((id, p), reg.clone());
                    }
                    // Moved away, or (between two images) gone from the topic.
                    _ => {
                        if !self.deleted.contains(&id)
                            && self
                                .base
                                .partition(id, p)
                                .is_some_and(|old| old.has_replica(broker_id))
                        {
                            out.deletes.insert((id, p), topic.name().to_owned());
                        }
                    }
                }
            }
        }
        out
    }

    /// The state so far, as it will be after [`apply`](Self::apply).
    pub fn image(&self) -> &TopicsImage {
        &self.image
    }

    pub fn apply(self) -> TopicsImage {
        self.image
    }
}
