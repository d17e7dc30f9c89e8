//! Fetch's request, resolved: each requested partition once (Kafka's rule
//! for a partition listed twice), its topic found by name or id and its
//! hosted partition looked up.
//!
//! In: the decoded request's topics and the image. Out: [`WantedTopic`]s in
//! request order, each partition with its fetch position, limit and either
//! the hosted [`Partition`] or the error code to answer.

use std::collections::hash_map::{Entry, HashMap};
use std::sync::Arc;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::TopicName;
use kraft_metadata::MetadataImage;
use uuid::Uuid;

use crate::context::BrokerContext;
use crate::handlers::support::partitions::{hosted_partition, resolve_topic, TopicRef};
use crate::replica::Partition;

/// One requested partition, resolved once per request.
pub(super) struct Wanted {
    pub(super) index: i32,
    pub(super) fetch_offset: i64,
    pub(super) leader_epoch: i32,
    pub(super) last_fetched_epoch: i32,
    pub(super) max_bytes: usize,
    pub(super) target: Result<Arc<Partition>, i16>,
}

/// One requested topic.
pub(super) struct WantedTopic {
    /// The topic's place among the request's distinct topics.
    pub(super) slot: usize,
    pub(super) name: TopicName,
    pub(super) topic_id: Uuid,
    /// The topic's id in the image, however the request named it.
    pub(super) resolved_id: Option<Uuid>,
    pub(super) partitions: Vec<Wanted>,
}

/// Finds every requested partition, each once.
///
/// Kafka keys a fetch by partition (`FetchRequest.fetchData`, an ordered
/// map from topic-partition to its fetch state): a partition listed twice,
/// in one topic entry or in two, is fetched once, at the place it was first
/// listed, with what its last listing asks for. So does this broker, which
/// also bounds the work of a request that lists one partition many times.
pub(super) fn resolve(
    ctx: &BrokerContext,
    image: &MetadataImage,
    version: i16,
    topics: Vec<FetchTopic>,
) -> Vec<WantedTopic> {
    // (topic, partition) -> its slot in `order`; the last listing wins.
    let mut slots: HashMap<(TopicKey, i32), usize> = HashMap::new();
    let mut order: Vec<(usize, FetchPartition)> = Vec::new();
    let mut listed: Vec<(TopicName, Uuid)> = Vec::with_capacity(topics.len());
    for topic in topics {
        let key = topic_key(version, &topic.topic, topic.topic_id);
        let topic_slot = match listed
            .iter()
            .position(|(n, id)| topic_key(version, n, *id) == key)
        {
            Some(i) => i,
            None => {
                listed.push((topic.topic.clone(), topic.topic_id));
                listed.len() - 1
            }
        };
        for p in topic.partitions {
            match slots.entry((key.clone(), p.partition)) {
                Entry::Occupied(e) => order[*e.get()].1 = p,
                Entry::Vacant(e) => {
                    e.insert(order.len());
                    order.push((topic_slot, p));
                }
            }
        }
    }
    let resolved: Vec<Result<Uuid, i16>> = listed
        .iter()
        .map(|(name, id)| {
            let topic_ref = if version >= 13 {
                TopicRef::Id(*id)
            } else {
                TopicRef::Name(&name.0)
            };
            resolve_topic(image, topic_ref).map(|(id, _)| id)
        })
        .collect();
    let mut out: Vec<WantedTopic> = Vec::new();
    for (topic_slot, p) in order {
        let (name, topic_id) = &listed[topic_slot];
        let resolved = resolved[topic_slot];
        let wanted = Wanted {
            index: p.partition,
            fetch_offset: p.fetch_offset,
            leader_epoch: if version >= 9 {
                p.current_leader_epoch
            } else {
                -1
            },
            last_fetched_epoch: if version >= 12 {
                p.last_fetched_epoch
            } else {
                -1
            },
            max_bytes: p.partition_max_bytes.max(0) as usize,
            target: resolved.and_then(|id| hosted_partition(ctx, image, id, p.partition)),
        };
        // Consecutive partitions of one topic share its entry, as in
        // Kafka's answer built from the ordered map.
        match out.last_mut() {
            Some(last) if last.slot == topic_slot => last.partitions.push(wanted),
            _ => out.push(WantedTopic {
                slot: topic_slot,
                name: name.clone(),
                topic_id: *topic_id,
                resolved_id: resolved.ok(),
                partitions: vec![wanted],
            }),
        }
    }
    out
}

/// How a request names a topic: by id from v13, else by name.
#[derive(Clone, PartialEq, Eq, Hash)]
enum TopicKey {
    Name(TopicName),
    Id(Uuid),
}

fn topic_key(version: i16, name: &TopicName, id: Uuid) -> TopicKey {
    if version >= 13 {
        TopicKey::Id(id)
    } else {
        TopicKey::Name(name.clone())
    }
}
