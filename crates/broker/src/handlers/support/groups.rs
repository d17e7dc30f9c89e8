//! What the group API handlers share: finding the shard that coordinates a
//! group (or the error the client gets), creating `__consumer_offsets` on
//! first need, and small conversions.
//!
//! In: a group id, or the broker context for topic creation, or an offset
//! commit's topics. Out: the [`Shard`], or a Kafka error code
//! (INVALID_GROUP_ID, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
//! COORDINATOR_NOT_AVAILABLE) and message; a [`CommitPlan`].

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::protocol::StrBytes;

use super::internal_topics::{ensure_internal_topic, InternalTopic};
use crate::context::BrokerContext;
use crate::group::records::OffsetValue;
use crate::group::{OffsetCommit, Shard};
use crate::metadata_cache::CacheQueries;
use kraft_metadata::MetadataImage;
use kraft_metadata::CONSUMER_OFFSETS;

/// The loaded shard coordinating `group`, or the error code.
pub fn shard(ctx: &BrokerContext, group: &str) -> Result<Arc<Shard>, i16> {
    if group.is_empty() {
        return Err(ResponseError::InvalidGroupId.code());
    }
    ctx.groups.shard_for(group)
}

/// A string as a response field.
pub fn strb(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// The client id of a request (empty if none).
pub fn client_id(header: &kafka_protocol::messages::RequestHeader) -> String {
    header
        .client_id
        .as_ref()
        .map(|c| c.to_string())
        .unwrap_or_default()
}

/// Makes sure `__consumer_offsets` exists, creating it through the active
/// controller with `offsets.topic.num.partitions` partitions and
/// `offsets.topic.replication.factor` replicas, compacted. Until enough
/// brokers are alive for that replication factor the answer is
/// COORDINATOR_NOT_AVAILABLE, as in Kafka.
///
/// The log cleaner compacts it (`replica/cleaner.rs`), so it stays bounded
/// by its groups and their offsets, and expired offsets go as tombstones
/// (`group/expiry.rs`).
pub async fn ensure_offsets_topic(ctx: &BrokerContext) -> Result<(), (i16, String)> {
    let config = ctx.groups.config();
    let topic = InternalTopic {
        name: CONSUMER_OFFSETS,
        partitions: config.offsets_topic_num_partitions,
        replication_factor: config.offsets_topic_replication_factor,
        replication_factor_key: "offsets.topic.replication.factor",
        configs: vec![
            ("cleanup.policy", "compact".to_string()),
            (
                "segment.bytes",
                config.offsets_topic_segment_bytes.to_string(),
            ),
        ],
    };
    ensure_internal_topic(ctx, topic).await
}

/// One requested partition of an offset commit: index, offset, leader
/// epoch and metadata.
pub type RequestedOffset<'a> = (i32, i64, i32, Option<&'a str>);

/// What OffsetCommit and TxnOffsetCommit store, planned from a request:
/// per requested partition its code so far (UNKNOWN_TOPIC_OR_PARTITION
/// where the metadata has no such partition), and the offsets to store
/// with the (topic, partition) slot each one's code goes back to.
pub struct CommitPlan {
    pub codes: Vec<Vec<i16>>,
    pub slots: Vec<(usize, usize)>,
    pub offsets: Vec<OffsetCommit>,
}

impl CommitPlan {
    /// Plans the commit of `topics` (name and partitions) at time `now`.
    pub fn new<'a>(
        image: &MetadataImage,
        topics: impl Iterator<Item = (&'a str, Vec<RequestedOffset<'a>>)>,
        now: i64,
    ) -> CommitPlan {
        let mut plan = CommitPlan {
            codes: Vec::new(),
            slots: Vec::new(),
            offsets: Vec::new(),
        };
        for (t, (topic, partitions)) in topics.enumerate() {
            let known = image.partitions_of(topic);
            let mut topic_codes = Vec::with_capacity(partitions.len());
            for (p, (index, offset, leader_epoch, metadata)) in partitions.into_iter().enumerate() {
                let exists = known
                    .as_ref()
                    .is_some_and(|ps| ps.iter().any(|(i, _)| *i == index));
                if !exists {
                    topic_codes.push(ResponseError::UnknownTopicOrPartition.code());
                    continue;
                }
                topic_codes.push(0);
                plan.slots.push((t, p));
                plan.offsets.push(OffsetCommit {
                    topic: topic.to_string(),
                    partition: index,
                    value: OffsetValue {
                        offset,
                        leader_epoch,
                        metadata: metadata.unwrap_or_default().to_string(),
                        commit_timestamp: now,
                    },
                });
            }
            plan.codes.push(topic_codes);
        }
        plan
    }

    /// Each stored offset's code (in the order of `offsets`) into its
    /// slot; the codes by topic and partition, as requested.
    pub fn codes_with(mut self, results: Vec<i16>) -> Vec<Vec<i16>> {
        for ((t, p), code) in self.slots.into_iter().zip(results) {
            self.codes[t][p] = code;
        }
        self.codes
    }
}
