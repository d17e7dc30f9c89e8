//! OffsetDelete (key 47, v0): removes a group's committed offsets for some
//! partitions (`kafka-consumer-groups.sh --delete-offsets`).
//!
//! In: group id, topics and partitions. Partitions not in the metadata get
//! UNKNOWN_TOPIC_OR_PARTITION; the others go to the group's coordinator
//! ([`crate::group::offset_delete`]), which writes tombstones and answers
//! once they are replicated.
//!
//! Out: a top-level GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP, INVALID_GROUP_ID,
//! NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS or
//! COORDINATOR_NOT_AVAILABLE (with no topics), or per partition NONE,
//! GROUP_SUBSCRIBED_TO_TOPIC or UNKNOWN_TOPIC_OR_PARTITION.

use std::collections::HashMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{ApiKey, OffsetDeleteRequest, OffsetDeleteResponse, RequestHeader};

use super::support::groups::shard;
use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Field, Kind, Shape};
use crate::metadata_cache::CacheQueries;

const PARTITION: &[Field] = &[field(0, i16::MAX, Kind::Int32)];
const TOPIC: &[Field] = &[
    field(0, i16::MAX, Kind::String),
    field(0, i16::MAX, Kind::StructArray(PARTITION)),
];

/// Serves OffsetDelete.
pub struct OffsetDeleteHandler;

impl Handler for OffsetDeleteHandler {
    const API_KEY: ApiKey = ApiKey::OffsetDelete;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 0;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: i16::MAX,
        fields: &[
            field(0, i16::MAX, Kind::String),
            field(0, i16::MAX, Kind::StructArray(TOPIC)),
        ],
    };
    type Request = OffsetDeleteRequest;
    type Response = OffsetDeleteResponse;

    async fn handle(
        ctx: &BrokerContext,
        _header: &RequestHeader,
        request: OffsetDeleteRequest,
    ) -> OffsetDeleteResponse {
        let group = request.group_id.0.to_string();
        let shard = match shard(ctx, &group) {
            Ok(shard) => shard,
            Err(code) => return OffsetDeleteResponse::default().with_error_code(code),
        };
        let image = ctx.cache.image();
        let unknown = ResponseError::UnknownTopicOrPartition.code();
        // Per requested partition: its code, UNKNOWN_TOPIC_OR_PARTITION or
        // the coordinator's.
        let mut codes: Vec<Vec<i16>> = Vec::with_capacity(request.topics.len());
        let mut known = Vec::new();
        for topic in &request.topics {
            let partitions = image.partitions_of(&topic.name.0);
            let mut topic_codes = Vec::with_capacity(topic.partitions.len());
            let mut asked = Vec::new();
            for p in &topic.partitions {
                let exists = partitions
                    .as_ref()
                    .is_some_and(|ps| ps.iter().any(|(i, _)| *i == p.partition_index));
                topic_codes.push(if exists { 0 } else { unknown });
                if exists {
                    asked.push(p.partition_index);
                }
            }
            codes.push(topic_codes);
            if !asked.is_empty() {
                known.push((topic.name.0.to_string(), asked));
            }
        }
        let results = match shard.delete_offsets(&group, known).await {
            Ok(results) => results,
            Err(code) => return OffsetDeleteResponse::default().with_error_code(code),
        };
        let mut answered: HashMap<(String, i32), i16> = HashMap::new();
        for (topic, partitions) in results {
            for (partition, code) in partitions {
                answered.insert((topic.clone(), partition), code);
            }
        }
        let topics = request
            .topics
            .into_iter()
            .zip(codes)
            .map(|(topic, topic_codes)| {
                let name = topic.name.0.to_string();
                let partitions = topic
                    .partitions
                    .iter()
                    .zip(topic_codes)
                    .map(|(p, code)| {
                        let code = if code == 0 {
                            answered
                                .get(&(name.clone(), p.partition_index))
                                .copied()
                                .unwrap_or(0)
                        } else {
                            code
                        };
                        OffsetDeleteResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(code)
                    })
                    .collect();
                OffsetDeleteResponseTopic::default()
                    .with_name(topic.name)
                    .with_partitions(partitions)
            })
            .collect();
        OffsetDeleteResponse::default().with_topics(topics)
    }
}
