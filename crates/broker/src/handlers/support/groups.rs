//! What the group API handlers share: finding the shard that coordinates a
//! group (or the error the client gets), creating `__consumer_offsets` on
//! first need, and small conversions.
//!
//! In: a group id, or the broker context for topic creation. Out: the
//! [`Shard`], or a Kafka error code (INVALID_GROUP_ID, NOT_COORDINATOR,
//! COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE) and message.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::protocol::StrBytes;

use super::internal_topics::{ensure_internal_topic, InternalTopic};
use crate::context::BrokerContext;
use crate::group::Shard;
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
/// Kraft's log does not compact yet, so the topic also gets
/// `retention.ms=-1`: offsets and group metadata are never deleted by age
/// (the topic grows with every commit).
pub async fn ensure_offsets_topic(ctx: &BrokerContext) -> Result<(), (i16, String)> {
    let config = ctx.groups.config();
    let topic = InternalTopic {
        name: CONSUMER_OFFSETS,
        partitions: config.offsets_topic_num_partitions,
        replication_factor: config.offsets_topic_replication_factor,
        replication_factor_key: "offsets.topic.replication.factor",
        configs: vec![
            ("cleanup.policy", "compact".to_string()),
            ("retention.ms", "-1".to_string()),
            (
                "segment.bytes",
                config.offsets_topic_segment_bytes.to_string(),
            ),
        ],
    };
    ensure_internal_topic(ctx, topic).await
}
