//! Topics and their partitions: [`TopicsImage`] (by id, with a by-name
//! index) and [`TopicImage`]. The delta they change through is in
//! [`crate::topics_delta`].

use imbl::OrdMap;
use kraft_proto::metadata::{metadata_record::Record, MetadataRecord, TopicRecord};
use uuid::Uuid;

use crate::record::uuid_bytes;
use crate::{record, PartitionRegistration};

/// One topic: its name, id and partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    name: String,
    id: Uuid,
    partitions: OrdMap<i32, PartitionRegistration>,
}

impl TopicImage {
    /// A topic with no partitions yet.
    pub fn new(name: String, id: Uuid) -> Self {
        Self {
            name,
            id,
            partitions: OrdMap::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn id(&self) -> Uuid {
        self.id
    }

    pub fn partition(&self, partition_id: i32) -> Option<&PartitionRegistration> {
        self.partitions.get(&partition_id)
    }

    /// Partitions by id.
    pub fn partitions(&self) -> &OrdMap<i32, PartitionRegistration> {
        &self.partitions
    }

    pub(crate) fn partitions_mut(&mut self) -> &mut OrdMap<i32, PartitionRegistration> {
        &mut self.partitions
    }

    /// Appends the `TopicRecord` and then one `PartitionRecord` per
    /// partition.
    pub fn write_records(&self, out: &mut Vec<MetadataRecord>) {
        out.push(record(Record::Topic(TopicRecord {
            name: self.name.clone(),
            topic_id: uuid_bytes(self.id),
        })));
        out.extend(
            self.partitions
                .iter()
                .map(|(p, reg)| reg.to_record(self.id, *p)),
        );
    }
}

/// Every topic, by id, with an index by name. Names and ids are both
/// unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicsImage {
    by_id: OrdMap<Uuid, TopicImage>,
    by_name: OrdMap<String, Uuid>,
}

impl TopicsImage {
    /// No topics.
    pub fn empty() -> Self {
        Self::default()
    }

    pub fn topic(&self, id: Uuid) -> Option<&TopicImage> {
        self.by_id.get(&id)
    }

    pub fn topic_by_name(&self, name: &str) -> Option<&TopicImage> {
        self.by_name.get(name).and_then(|id| self.by_id.get(id))
    }

    /// The id of the topic called `name`.
    pub fn topic_id(&self, name: &str) -> Option<Uuid> {
        self.by_name.get(name).copied()
    }

    /// One partition of one topic.
    pub fn partition(&self, topic_id: Uuid, partition_id: i32) -> Option<&PartitionRegistration> {
        self.topic(topic_id)?.partition(partition_id)
    }

    /// Every topic, by id.
    pub fn topics(&self) -> impl Iterator<Item = &TopicImage> + '_ {
        self.by_id.values()
    }

    /// Every topic name with its id, by name.
    pub fn names(&self) -> impl Iterator<Item = (&str, Uuid)> + '_ {
        self.by_name.iter().map(|(n, id)| (n.as_str(), *id))
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Appends every topic's records (see [`TopicImage::write_records`]),
    /// topics by id.
    pub fn write_records(&self, out: &mut Vec<MetadataRecord>) {
        for topic in self.by_id.values() {
            topic.write_records(out);
        }
    }

    pub(crate) fn contains_name(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    pub(crate) fn topic_mut(&mut self, id: Uuid) -> Option<&mut TopicImage> {
        self.by_id.get_mut(&id)
    }

    /// Adds a topic; the caller has checked its name and id are free.
    pub(crate) fn insert(&mut self, topic: TopicImage) {
        self.by_name.insert(topic.name.clone(), topic.id);
        self.by_id.insert(topic.id, topic);
    }

    pub(crate) fn remove(&mut self, id: Uuid) -> Option<TopicImage> {
        let topic = self.by_id.remove(&id)?;
        self.by_name.remove(&topic.name);
        Some(topic)
    }
}
