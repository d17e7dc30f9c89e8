//! What the group API handlers share: finding the shard that coordinates a
//! group (or the error the client gets), creating `__consumer_offsets` on
//! first need, and small conversions.
//!
//! In: a group id, or the broker context for topic creation. Out: the
//! [`Shard`], or a Kafka error code (INVALID_GROUP_ID, NOT_COORDINATOR,
//! COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE) and message.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::protocol::StrBytes;
use kraft_proto::controller::{
    controller_request::Body, controller_response, CreatableTopic, CreateTopicsRequest,
};

use super::writes;
use crate::context::BrokerContext;
use crate::group::Shard;
use crate::metadata_cache::CacheQueries;
use kraft_metadata::CONSUMER_OFFSETS;

const TOPIC_ALREADY_EXISTS: i32 = 36;

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
    let image = ctx.cache.image();
    if image.topic_named(CONSUMER_OFFSETS).is_some() {
        return Ok(());
    }
    let config = ctx.groups.config();
    let wanted = i32::from(config.offsets_topic_replication_factor);
    let alive = image.alive_brokers().len();
    if (alive as i32) < wanted {
        return Err((
            ResponseError::CoordinatorNotAvailable.code(),
            format!(
                "{CONSUMER_OFFSETS} needs {wanted} brokers (offsets.topic.replication.factor) \
                 but {alive} are alive"
            ),
        ));
    }
    let configs: HashMap<String, String> = [
        ("cleanup.policy", "compact".to_string()),
        ("retention.ms", "-1".to_string()),
        (
            "segment.bytes",
            config.offsets_topic_segment_bytes.to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let body = Body::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: CONSUMER_OFFSETS.to_string(),
            num_partitions: config.offsets_topic_num_partitions,
            replication_factor: wanted,
            assignments: Vec::new(),
            configs,
        }],
        validate_only: false,
    });
    let deadline = writes::deadline(ctx, 0);
    let unavailable = |message: String| (ResponseError::CoordinatorNotAvailable.code(), message);
    let response = writes::write(ctx, body, deadline)
        .await
        .map_err(|e| unavailable(format!("creating {CONSUMER_OFFSETS}: {}", e.message)))?;
    if let Some(controller_response::Body::CreateTopics(r)) = response.body {
        for t in r.topics {
            if t.error_code != 0 && t.error_code != TOPIC_ALREADY_EXISTS {
                return Err(unavailable(format!(
                    "creating {CONSUMER_OFFSETS}: {}",
                    t.error_message
                )));
            }
        }
    }
    tracing::info!(
        partitions = config.offsets_topic_num_partitions,
        replication_factor = wanted,
        "created {CONSUMER_OFFSETS}"
    );
    Ok(())
}
