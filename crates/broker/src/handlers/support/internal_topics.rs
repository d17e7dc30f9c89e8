//! Creating an internal topic (`__consumer_offsets`, `__transaction_state`)
//! on the first request that needs it, as Kafka's coordinators do.
//!
//! In: the broker context and the topic's settings ([`InternalTopic`]).
//! Out: `Ok` once the active controller has created the topic (or it
//! already exists), or COORDINATOR_NOT_AVAILABLE and why: too few brokers
//! alive for its replication factor, or the controller refused or did not
//! answer. Clients retry that code.

use std::collections::HashMap;

use kafka_protocol::error::ResponseError;
use kraft_proto::controller::{
    controller_request::Body, controller_response, CreatableTopic, CreateTopicsRequest,
};

use super::writes;
use crate::context::BrokerContext;
use crate::metadata_cache::CacheQueries;
use kraft_metadata::TRANSACTION_STATE;

const TOPIC_ALREADY_EXISTS: i32 = 36;

/// What an internal topic is created with.
pub struct InternalTopic<'a> {
    pub name: &'a str,
    pub partitions: i32,
    pub replication_factor: i16,
    /// The broker key that sets the factor, for the error message.
    pub replication_factor_key: &'a str,
    /// Topic configs besides the defaults.
    pub configs: Vec<(&'a str, String)>,
}

/// Makes sure `topic` exists, creating it through the active controller.
/// Until as many brokers are alive as its replication factor the answer is
/// COORDINATOR_NOT_AVAILABLE, as in Kafka.
pub async fn ensure_internal_topic(
    ctx: &BrokerContext,
    topic: InternalTopic<'_>,
) -> Result<(), (i16, String)> {
    let name = topic.name;
    let image = ctx.cache.image();
    if image.topic_named(name).is_some() {
        return Ok(());
    }
    let wanted = i32::from(topic.replication_factor);
    let alive = image.alive_brokers().len();
    if (alive as i32) < wanted {
        return Err((
            ResponseError::CoordinatorNotAvailable.code(),
            format!(
                "{name} needs {wanted} brokers ({}) but {alive} are alive",
                topic.replication_factor_key
            ),
        ));
    }
    let configs: HashMap<String, String> = topic
        .configs
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let body = Body::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.to_string(),
            num_partitions: topic.partitions,
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
        .map_err(|e| unavailable(format!("creating {name}: {}", e.message)))?;
    if let Some(controller_response::Body::CreateTopics(r)) = response.body {
        for t in r.topics {
            if t.error_code != 0 && t.error_code != TOPIC_ALREADY_EXISTS {
                return Err(unavailable(format!("creating {name}: {}", t.error_message)));
            }
        }
    }
    tracing::info!(
        partitions = topic.partitions,
        replication_factor = wanted,
        "created {name}"
    );
    Ok(())
}

/// Makes sure `__transaction_state` exists: `transaction.state.log.*`
/// partitions and replicas, compacted, with `transaction.state.log.min.isr`
/// as its `min.insync.replicas`. The log cleaner compacts it, like
/// `__consumer_offsets`.
pub async fn ensure_transaction_state_topic(ctx: &BrokerContext) -> Result<(), (i16, String)> {
    let config = ctx.transactions.config();
    let topic = InternalTopic {
        name: TRANSACTION_STATE,
        partitions: config.state_log_num_partitions,
        replication_factor: config.state_log_replication_factor,
        replication_factor_key: "transaction.state.log.replication.factor",
        configs: vec![
            ("cleanup.policy", "compact".to_string()),
            ("min.insync.replicas", config.state_log_min_isr.to_string()),
            ("segment.bytes", config.state_log_segment_bytes.to_string()),
        ],
    };
    ensure_internal_topic(ctx, topic).await
}
