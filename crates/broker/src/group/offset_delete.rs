//! OffsetDelete on a loaded shard, by Kafka's rules: a group that does not
//! exist gets GROUP_ID_NOT_FOUND; an Empty group loses every offset asked
//! for; a group with members of the consumer protocol keeps the offsets
//! of topics its members subscribe to (GROUP_SUBSCRIBED_TO_TOPIC) and
//! loses the others; a group with members of another protocol gets
//! NON_EMPTY_GROUP. Tombstones are written for the committed offsets that
//! go, and the answer waits until they are replicated (acks=all); a
//! failed write fails the whole request with its coordinator error.
//!
//! In: the group id and (topic, partitions) the handler found in the
//! metadata. Out: a group error, or an error code per partition, and
//! offset tombstones appended to `__consumer_offsets`.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;

use super::records::CoordinatorRecord;
use super::shard::Shard;
use super::state::{Group, GroupState};

/// Per topic, (partition, error code).
pub type DeleteResults = Vec<(String, Vec<(i32, i16)>)>;

/// The protocol type of groups of Kafka's consumer.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// The topics a consumer subscription (consumer protocol metadata, any
/// version) names; `None` if it does not decode.
pub fn subscribed_topics(metadata: &Bytes) -> Option<Vec<String>> {
    let mut buf = metadata.clone();
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16();
    if version < 0 {
        return None;
    }
    // Newer versions only add fields at the end: read what version 3 has.
    let subscription = ConsumerProtocolSubscription::decode(&mut buf, version.min(3)).ok()?;
    Some(subscription.topics.iter().map(|t| t.to_string()).collect())
}

/// The topics the members of a consumer-protocol group subscribe to, or
/// `None` where a member's subscription does not decode (then every topic
/// counts as subscribed: nothing a member may use is deleted).
fn group_subscriptions(group: &Group) -> Option<BTreeSet<String>> {
    let mut topics = BTreeSet::new();
    for member in group.members() {
        let protocols: Vec<&Bytes> = match group.protocol_name() {
            Some(name) => vec![&member.protocols.iter().find(|p| p.name == name)?.metadata],
            // Before the first protocol is chosen: whatever they offered.
            None => member.protocols.iter().map(|p| &p.metadata).collect(),
        };
        for metadata in protocols {
            topics.extend(subscribed_topics(metadata)?);
        }
    }
    Some(topics)
}

/// What OffsetDelete must leave in a group.
enum Kept {
    /// Nothing: the group is Empty.
    Nothing,
    /// The offsets of these topics, which members subscribe to.
    Topics(BTreeSet<String>),
    /// Every offset: a member's subscription does not decode.
    Everything,
}

/// What OffsetDelete must leave in `group`, or the group's error.
fn kept(group: &Group) -> Result<Kept, i16> {
    match group.state() {
        GroupState::Dead => Err(ResponseError::GroupIdNotFound.code()),
        GroupState::Empty if group.members().is_empty() => Ok(Kept::Nothing),
        _ if group.protocol_type() == Some(CONSUMER_PROTOCOL_TYPE) => {
            Ok(group_subscriptions(group).map_or(Kept::Everything, Kept::Topics))
        }
        _ => Err(ResponseError::NonEmptyGroup.code()),
    }
}

impl Shard {
    /// OffsetDelete: deletes the committed offsets of `topics` in
    /// `group_id` that the group does not use, answering once the
    /// tombstones are replicated.
    pub async fn delete_offsets(
        self: &Arc<Self>,
        group_id: &str,
        topics: Vec<(String, Vec<i32>)>,
    ) -> Result<DeleteResults, i16> {
        let (appended, results) = {
            let mut inner = self.lock();
            let Some(entry) = inner.data.groups.get_mut(group_id).filter(|e| e.exists()) else {
                return Err(ResponseError::GroupIdNotFound.code());
            };
            let kept = kept(&entry.group)?;
            let mut results: DeleteResults = Vec::with_capacity(topics.len());
            let mut records = Vec::new();
            let mut deleted = Vec::new();
            for (topic, partitions) in topics {
                let subscribed = match &kept {
                    Kept::Nothing => false,
                    Kept::Everything => true,
                    Kept::Topics(subscribed) => subscribed.contains(&topic),
                };
                let mut codes = Vec::with_capacity(partitions.len());
                for partition in partitions {
                    if subscribed {
                        codes.push((partition, ResponseError::GroupSubscribedToTopic.code()));
                        continue;
                    }
                    codes.push((partition, 0));
                    let key = (topic.clone(), partition);
                    if entry.offsets.contains_key(&key) {
                        records.push(CoordinatorRecord::Offset {
                            group: group_id.to_string(),
                            topic: topic.clone(),
                            partition,
                            value: None,
                        });
                        deleted.push(key);
                    }
                }
                results.push((topic, codes));
            }
            if records.is_empty() {
                return Ok(results);
            }
            let appended = self.append(&records);
            if let Ok(appended) = &appended {
                for key in &deleted {
                    entry.offsets.remove(key);
                }
                for (k, (topic, partition)) in deleted.iter().enumerate() {
                    let at = appended.first_offset + k as i64;
                    inner.data.supersede(group_id, topic, *partition, at);
                }
            }
            (appended, results)
        };
        // A write that fails fails the request, as in Kafka.
        self.replicated(appended?).await?;
        Ok(results)
    }
}

#[cfg(test)]
mod tests;
