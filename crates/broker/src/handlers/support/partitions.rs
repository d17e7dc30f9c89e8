//! What Produce, Fetch and ListOffsets share: finding the partition a
//! request names, or the error code the client gets instead.
//!
//! In: a topic (by name, or by id in the versions that use ids) and a
//! partition index, the request's metadata image and the replica manager.
//! Out: the hosted [`Partition`], or UNKNOWN_TOPIC_OR_PARTITION /
//! UNKNOWN_TOPIC_ID (no such topic or partition), NOT_LEADER_OR_FOLLOWER
//! (it exists but this broker holds no replica), KAFKA_STORAGE_ERROR (its
//! log is offline).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kraft_metadata::MetadataImage;
use uuid::Uuid;

use crate::context::BrokerContext;
use crate::replica::{Partition, PartitionLookup};

/// A topic as a request names it.
#[derive(Clone, Copy, Debug)]
pub enum TopicRef<'a> {
    Name(&'a str),
    Id(Uuid),
}

/// The topic's id and name in `image`, or the error code for an unknown
/// topic (UNKNOWN_TOPIC_ID when it was named by id).
pub fn resolve_topic<'i>(
    image: &'i MetadataImage,
    topic: TopicRef<'_>,
) -> Result<(Uuid, &'i str), i16> {
    let found = match topic {
        TopicRef::Name(name) => image.topics().topic_by_name(name),
        TopicRef::Id(id) => image.topics().topic(id),
    };
    match (found, topic) {
        (Some(t), _) => Ok((t.id(), t.name())),
        (None, TopicRef::Name(_)) => Err(ResponseError::UnknownTopicOrPartition.code()),
        (None, TopicRef::Id(_)) => Err(ResponseError::UnknownTopicId.code()),
    }
}

/// The hosted partition `index` of topic `topic_id`, or the error code.
pub fn hosted_partition(
    ctx: &BrokerContext,
    image: &MetadataImage,
    topic_id: Uuid,
    index: i32,
) -> Result<Arc<Partition>, i16> {
    match ctx.replicas.lookup(topic_id, index) {
        PartitionLookup::Hosted(p) => Ok(p),
        PartitionLookup::Offline(_) => Err(ResponseError::KafkaStorageError.code()),
        PartitionLookup::NotHosted => {
            if image.topics().partition(topic_id, index).is_some() {
                Err(ResponseError::NotLeaderOrFollower.code())
            } else {
                Err(ResponseError::UnknownTopicOrPartition.code())
            }
        }
    }
}
