//! OffsetCommit (key 8, v2–v9): a group stores the offsets its members
//! have consumed up to.
//!
//! In: group id, generation (-1 for a group that only stores offsets),
//! member id, `group.instance.id` (v7+) and per topic and partition the
//! offset, leader epoch (v6+) and metadata. A member of the group commits
//! with its generation; an empty group takes commits with generation -1.
//! The offsets are written to `__consumer_offsets` and the answer waits
//! until they are replicated (`offsets.commit.timeout.ms`).
//!
//! Out: one error code per partition: NONE, UNKNOWN_TOPIC_OR_PARTITION
//! (not in the metadata), OFFSET_METADATA_TOO_LARGE
//! (`offset.metadata.max.bytes`), or the group's: ILLEGAL_GENERATION,
//! UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID,
//! NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, OffsetCommitRequest, OffsetCommitResponse, RequestHeader};

use super::support::groups::shard;
use super::Handler;
use crate::context::BrokerContext;
use crate::group::records::OffsetValue;
use crate::group::{MemberRef, OffsetCommit};
use crate::handlers::support::shape::{field, Field, Kind, Shape};
use crate::metadata_cache::CacheQueries;
use crate::replica::now_ms;

const PARTITION: &[Field] = &[
    field(0, i16::MAX, Kind::Int32),
    field(0, i16::MAX, Kind::Int64),
    field(6, i16::MAX, Kind::Int32),
    field(0, i16::MAX, Kind::String),
];
const TOPIC: &[Field] = &[
    field(0, i16::MAX, Kind::String),
    field(0, i16::MAX, Kind::StructArray(PARTITION)),
];

/// Serves OffsetCommit.
pub struct OffsetCommitHandler;

impl Handler for OffsetCommitHandler {
    const API_KEY: ApiKey = ApiKey::OffsetCommit;
    const MIN_VERSION: i16 = 2;
    const MAX_VERSION: i16 = 9;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 8,
        fields: &[
            field(0, i16::MAX, Kind::String),
            field(1, i16::MAX, Kind::Int32),
            field(1, i16::MAX, Kind::String),
            field(7, i16::MAX, Kind::String),
            field(2, 4, Kind::Int64),
            field(0, i16::MAX, Kind::StructArray(TOPIC)),
        ],
    };
    type Request = OffsetCommitRequest;
    type Response = OffsetCommitResponse;

    async fn handle(
        ctx: &BrokerContext,
        _header: &RequestHeader,
        request: OffsetCommitRequest,
    ) -> OffsetCommitResponse {
        let group = request.group_id.0.to_string();
        let image = ctx.cache.image();
        let now = now_ms();
        // Per requested partition: its code so far, and the offsets to store.
        let mut codes: Vec<Vec<i16>> = Vec::with_capacity(request.topics.len());
        let mut offsets = Vec::new();
        let mut slots = Vec::new();
        for (t, topic) in request.topics.iter().enumerate() {
            let known = image.partitions_of(&topic.name.0);
            let mut topic_codes = Vec::with_capacity(topic.partitions.len());
            for (p, partition) in topic.partitions.iter().enumerate() {
                let exists = known
                    .as_ref()
                    .is_some_and(|ps| ps.iter().any(|(i, _)| *i == partition.partition_index));
                if !exists {
                    topic_codes.push(ResponseError::UnknownTopicOrPartition.code());
                    continue;
                }
                topic_codes.push(0);
                slots.push((t, p));
                offsets.push(OffsetCommit {
                    topic: topic.name.0.to_string(),
                    partition: partition.partition_index,
                    value: OffsetValue {
                        offset: partition.committed_offset,
                        leader_epoch: partition.committed_leader_epoch,
                        metadata: partition
                            .committed_metadata
                            .as_ref()
                            .map(|m| m.to_string())
                            .unwrap_or_default(),
                        commit_timestamp: now,
                    },
                });
            }
            codes.push(topic_codes);
        }
        let results = match shard(ctx, &group) {
            Err(code) => vec![code; offsets.len()],
            Ok(_) if offsets.is_empty() => Vec::new(),
            Ok(shard) => {
                let who = MemberRef {
                    member_id: request.member_id.to_string(),
                    group_instance_id: request.group_instance_id.as_ref().map(|i| i.to_string()),
                    generation_id: request.generation_id_or_member_epoch,
                };
                let max = ctx.groups.config().offset_metadata_max_bytes;
                shard.commit(&group, &who, offsets, max).await
            }
        };
        for ((t, p), code) in slots.into_iter().zip(results) {
            codes[t][p] = code;
        }
        let topics = request
            .topics
            .into_iter()
            .zip(codes)
            .map(|(topic, topic_codes)| {
                let partitions = topic
                    .partitions
                    .iter()
                    .zip(topic_codes)
                    .map(|(p, code)| {
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(code)
                    })
                    .collect();
                OffsetCommitResponseTopic::default()
                    .with_name(topic.name)
                    .with_partitions(partitions)
            })
            .collect();
        OffsetCommitResponse::default().with_topics(topics)
    }
}
