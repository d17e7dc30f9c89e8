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

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, OffsetCommitRequest, OffsetCommitResponse, RequestHeader};

use super::support::groups::{shard, CommitPlan};
use super::Handler;
use crate::context::BrokerContext;
use crate::group::MemberRef;
use crate::handlers::support::shape::{field, Field, Kind, Shape};
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
        let mut plan = CommitPlan::new(
            &image,
            request.topics.iter().map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        (
                            p.partition_index,
                            p.committed_offset,
                            p.committed_leader_epoch,
                            p.committed_metadata.as_deref(),
                        )
                    })
                    .collect();
                (&*t.name.0, partitions)
            }),
            now,
        );
        let offsets = std::mem::take(&mut plan.offsets);
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
        let codes = plan.codes_with(results);
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
