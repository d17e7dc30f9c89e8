//! ListOffsets (key 2, v1–v10): offsets by position or by time.
//!
//! In: per topic and partition a `timestamp`, which is either a time in ms
//! or one of the special values: -2 earliest (the log start offset), -1
//! latest (the high watermark; at `isolation_level` 1, read_committed (v2+),
//! the last stable offset), -3 the record with the largest timestamp (v7+),
//! -4 earliest local (v8+; the same as earliest: all data is local), -5
//! earliest pending tiered upload (v9+; none: -1).
//!
//! Out: per partition the offset, its timestamp (-1 for the special values
//! other than -3) and the leader epoch of that offset's batch where known;
//! for a time, the first offset whose record timestamp is at or after it,
//! or offset -1 when no record is that late. Only the leader answers
//! (NOT_LEADER_OR_FOLLOWER otherwise), and a stale `current_leader_epoch`
//! (v4+) is FENCED_LEADER_EPOCH.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse, RequestHeader};

use super::support::partitions::{hosted_partition, resolve_topic, TopicRef};
use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Field, Kind, Shape};
use crate::replica::Partition;

const EARLIEST: i64 = -2;
const LATEST: i64 = -1;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

const PARTITION: &[Field] = &[
    field(0, i16::MAX, Kind::Int32),
    field(4, i16::MAX, Kind::Int32),
    field(0, i16::MAX, Kind::Int64),
    field(0, 0, Kind::Int32),
];
const TOPIC: &[Field] = &[
    field(0, i16::MAX, Kind::String),
    field(0, i16::MAX, Kind::StructArray(PARTITION)),
];

/// Serves ListOffsets.
pub struct ListOffsetsHandler;

impl Handler for ListOffsetsHandler {
    const API_KEY: ApiKey = ApiKey::ListOffsets;
    const MIN_VERSION: i16 = 1;
    const MAX_VERSION: i16 = 10;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 6,
        fields: &[
            field(0, i16::MAX, Kind::Int32),
            field(2, i16::MAX, Kind::Int8),
            field(0, i16::MAX, Kind::StructArray(TOPIC)),
            field(10, i16::MAX, Kind::Int32),
        ],
    };
    type Request = ListOffsetsRequest;
    type Response = ListOffsetsResponse;

    async fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: ListOffsetsRequest,
    ) -> ListOffsetsResponse {
        let version = header.request_api_version;
        let image = ctx.cache.image();
        let read_committed = version >= 2 && request.isolation_level == 1;
        let topics = request
            .topics
            .into_iter()
            .map(|topic| {
                let resolved =
                    resolve_topic(&image, TopicRef::Name(&topic.name.0)).map(|(id, _)| id);
                let partitions = topic
                    .partitions
                    .iter()
                    .map(|p| {
                        let epoch = if version >= 4 {
                            p.current_leader_epoch
                        } else {
                            -1
                        };
                        let answer = resolved
                            .and_then(|id| hosted_partition(ctx, &image, id, p.partition_index))
                            .and_then(|partition| {
                                offset_for(&partition, epoch, p.timestamp, read_committed)
                            });
                        let response = ListOffsetsPartitionResponse::default()
                            .with_partition_index(p.partition_index);
                        match answer {
                            Ok((offset, timestamp, leader_epoch)) => response
                                .with_offset(offset)
                                .with_timestamp(timestamp)
                                .with_leader_epoch(leader_epoch),
                            Err(code) => response
                                .with_error_code(code)
                                .with_offset(-1)
                                .with_timestamp(-1)
                                .with_leader_epoch(-1),
                        }
                    })
                    .collect();
                ListOffsetsTopicResponse::default()
                    .with_name(topic.name)
                    .with_partitions(partitions)
            })
            .collect();
        fit_to_version(ListOffsetsResponse::default().with_topics(topics), version)
    }
}

/// Clears what `version` cannot carry: the leader epoch before v4.
fn fit_to_version(mut response: ListOffsetsResponse, version: i16) -> ListOffsetsResponse {
    if version < 4 {
        for p in response.topics.iter_mut().flat_map(|t| &mut t.partitions) {
            p.leader_epoch = -1;
        }
    }
    response
}

/// `(offset, timestamp, leader epoch)` for one partition, or an error code.
fn offset_for(
    partition: &Partition,
    current_leader_epoch: i32,
    timestamp: i64,
    read_committed: bool,
) -> Result<(i64, i64, i32), i16> {
    partition
        .check_leader(current_leader_epoch)
        .map_err(|e| e.code())?;
    let log = partition.log();
    let found = match timestamp {
        EARLIEST | EARLIEST_LOCAL => {
            let start = log.log_start_offset();
            (start, -1, epoch_of(partition, start))
        }
        LATEST if read_committed => {
            let stable = log.last_stable_offset();
            (stable, -1, epoch_of(partition, stable))
        }
        LATEST => (partition.high_watermark(), -1, partition.epoch_at_end()),
        MAX_TIMESTAMP => match log
            .max_timestamp_offset()
            .map_err(|e| e.kafka_error_code())?
        {
            Some(t) => (t.offset, t.timestamp, t.leader_epoch),
            None => (-1, -1, -1),
        },
        t if t >= 0 => match partition.offset_for_timestamp(t).map_err(|e| e.code())? {
            Some(t) => (t.offset, t.timestamp, t.leader_epoch),
            None => (-1, -1, -1),
        },
        _ => (-1, -1, -1),
    };
    Ok(found)
}

/// The leader epoch of the batch holding `offset`: the last epoch that
/// started at or before it, from the log's epoch cache (-1 if unknown).
fn epoch_of(partition: &Partition, offset: i64) -> i32 {
    partition
        .log()
        .epoch_entries()
        .into_iter()
        .take_while(|(_, start)| *start <= offset)
        .last()
        .map_or(-1, |(epoch, _)| epoch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn a_full_response_encodes_at_every_served_version() {
        for version in ListOffsetsHandler::MIN_VERSION..=ListOffsetsHandler::MAX_VERSION {
            let partition = ListOffsetsPartitionResponse::default()
                .with_offset(7)
                .with_timestamp(1000)
                .with_leader_epoch(2);
            let response = ListOffsetsResponse::default().with_topics(vec![
                ListOffsetsTopicResponse::default()
                    .with_name(TopicName(StrBytes::from_static_str("t")))
                    .with_partitions(vec![partition]),
            ]);
            let mut buf = bytes::BytesMut::new();
            fit_to_version(response, version)
                .encode(&mut buf, version)
                .unwrap_or_else(|e| panic!("ListOffsets v{version}: {e}"));
        }
    }
}
