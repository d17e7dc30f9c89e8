//! OffsetFetch (key 9, v1–v9): the offsets a group has committed.
//!
//! In: one group (v1–v7) or a batch of groups (v8+), each with the topics
//! and partitions wanted, or none for every committed offset (null topics,
//! v2+). Out: per partition the committed offset, leader epoch (v5+) and
//! metadata, or -1 when nothing is committed; per group (top-level before
//! v8) NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS or INVALID_GROUP_ID
//! when this broker cannot answer for it. With `require_stable` (v7+, what
//! read_committed consumers send), a partition an open transaction wrote
//! an offset for (TxnOffsetCommit) answers UNSTABLE_OFFSET_COMMIT, which
//! clients retry, as Kafka does.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    ApiKey, GroupId, OffsetFetchRequest, OffsetFetchResponse, RequestHeader, TopicName,
};

use super::support::groups::{shard, strb};
use super::Handler;
use crate::context::BrokerContext;
use crate::group::records::OffsetValue;
use crate::handlers::support::shape::{field, Field, Kind, Shape};

const TOPIC: &[Field] = &[
    field(0, i16::MAX, Kind::String),
    field(0, i16::MAX, Kind::Int32Array),
];
const GROUP: &[Field] = &[
    field(8, i16::MAX, Kind::String),
    field(9, i16::MAX, Kind::String),
    field(9, i16::MAX, Kind::Int32),
    field(8, i16::MAX, Kind::StructArray(TOPIC)),
];

/// Serves OffsetFetch.
pub struct OffsetFetchHandler;

/// One partition's answer: (index, committed offset if any, error code).
type PartitionAnswer = (i32, Option<OffsetValue>, i16);

/// One group's answer: a group-level error code and its topics.
struct GroupAnswer {
    error: i16,
    topics: Vec<(String, Vec<PartitionAnswer>)>,
}

/// Looks one group's offsets up.
fn fetch(
    ctx: &BrokerContext,
    group: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> GroupAnswer {
    match shard(ctx, group) {
        Ok(shard) => GroupAnswer {
            error: 0,
            topics: shard
                .fetch_offsets(group, wanted)
                .into_iter()
                .map(|(t, ps)| {
                    let answers = ps
                        .into_iter()
                        .map(|(p, v)| {
                            if require_stable && shard.unstable(group, &t, p) {
                                (p, None, ResponseError::UnstableOffsetCommit.code())
                            } else {
                                (p, v, 0)
                            }
                        })
                        .collect();
                    (t, answers)
                })
                .collect(),
        },
        Err(code) => GroupAnswer {
            error: code,
            topics: wanted
                .unwrap_or_default()
                .into_iter()
                .map(|(t, ps)| (t, ps.into_iter().map(|p| (p, None, code)).collect()))
                .collect(),
        },
    }
}

impl Handler for OffsetFetchHandler {
    const API_KEY: ApiKey = ApiKey::OffsetFetch;
    const MIN_VERSION: i16 = 1;
    const MAX_VERSION: i16 = 9;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 6,
        fields: &[
            field(0, 7, Kind::String),
            field(0, 7, Kind::StructArray(TOPIC)),
            field(8, i16::MAX, Kind::StructArray(GROUP)),
            field(7, i16::MAX, Kind::Bool),
        ],
    };
    type Request = OffsetFetchRequest;
    type Response = OffsetFetchResponse;

    async fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: OffsetFetchRequest,
    ) -> OffsetFetchResponse {
        let version = header.request_api_version;
        if version >= 8 {
            let groups = request
                .groups
                .into_iter()
                .map(|g| {
                    let wanted = g.topics.map(|ts| {
                        ts.into_iter()
                            .map(|t| (t.name.0.to_string(), t.partition_indexes))
                            .collect()
                    });
                    let answer = fetch(ctx, &g.group_id.0, wanted, request.require_stable);
                    let topics = if answer.error != 0 {
                        Vec::new()
                    } else {
                        answer
                            .topics
                            .into_iter()
                            .map(|(t, ps)| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(TopicName(strb(t)))
                                    .with_partitions(ps.into_iter().map(partition_v8).collect())
                            })
                            .collect()
                    };
                    OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id)
                        .with_error_code(answer.error)
                        .with_topics(topics)
                })
                .collect();
            return OffsetFetchResponse::default().with_groups(groups);
        }
        let wanted = request.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes))
                .collect()
        });
        let GroupId(group) = request.group_id;
        let answer = fetch(ctx, &group, wanted, request.require_stable);
        let topics = answer
            .topics
            .into_iter()
            .map(|(t, ps)| {
                OffsetFetchResponseTopic::default()
                    .with_name(TopicName(strb(t)))
                    .with_partitions(ps.into_iter().map(|p| partition(p, version)).collect())
            })
            .collect();
        let response = OffsetFetchResponse::default().with_topics(topics);
        if version >= 2 {
            response.with_error_code(answer.error)
        } else {
            response
        }
    }
}

fn partition((index, value, error): PartitionAnswer, version: i16) -> OffsetFetchResponsePartition {
    let value = value.unwrap_or(OffsetValue {
        offset: -1,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp: -1,
    });
    OffsetFetchResponsePartition::default()
        .with_partition_index(index)
        .with_committed_offset(value.offset)
        .with_committed_leader_epoch(if version >= 5 { value.leader_epoch } else { -1 })
        .with_metadata(Some(strb(value.metadata)))
        .with_error_code(error)
}

fn partition_v8((index, value, error): PartitionAnswer) -> OffsetFetchResponsePartitions {
    let value = value.unwrap_or(OffsetValue {
        offset: -1,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp: -1,
    });
    OffsetFetchResponsePartitions::default()
        .with_partition_index(index)
        .with_committed_offset(value.offset)
        .with_committed_leader_epoch(value.leader_epoch)
        .with_metadata(Some(strb(value.metadata)))
        .with_error_code(error)
}
