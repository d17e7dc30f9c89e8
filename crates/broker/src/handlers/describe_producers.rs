//! DescribeProducers (key 61, v0): the producers a partition's log keeps
//! state for (KIP-664, `kafka-transactions.sh describe-producers`), to find
//! the producer of a transaction that holds the last stable offset back.
//!
//! In: topics by name and partition indexes. Out: per partition every
//! producer id the replica's log knows (`kraft_log::producer_state`), with
//! its epoch, the last sequence it wrote (-1 if its retained batches hold
//! none), the timestamp of its last batch, the coordinator epoch of its
//! last marker (-1 if none) and the first offset of its open transaction
//! (-1 if none); or an error code: UNKNOWN_TOPIC_OR_PARTITION (no such
//! topic or partition), NOT_LEADER_OR_FOLLOWER (this broker holds no
//! replica of it), KAFKA_STORAGE_ERROR (its log is offline). As Kafka's,
//! any replica answers from its own log; the admin client asks the leader.
//! Read from memory; nothing is written.

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{
    ApiKey, DescribeProducersRequest, DescribeProducersResponse, ProducerId, RequestHeader,
};
use kraft_log::producer_state::ProducerEntry;

use super::support::partitions::{hosted_partition, resolve_topic, TopicRef};
use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Field, Kind, Shape};

const TOPIC: &[Field] = &[
    field(0, i16::MAX, Kind::String),
    field(0, i16::MAX, Kind::Int32Array),
];

/// Serves DescribeProducers.
pub struct DescribeProducersHandler;

impl Handler for DescribeProducersHandler {
    const API_KEY: ApiKey = ApiKey::DescribeProducers;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 0;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 0,
        fields: &[field(0, i16::MAX, Kind::StructArray(TOPIC))],
    };
    type Request = DescribeProducersRequest;
    type Response = DescribeProducersResponse;

    async fn handle(
        ctx: &BrokerContext,
        _header: &RequestHeader,
        request: DescribeProducersRequest,
    ) -> DescribeProducersResponse {
        let image = ctx.cache.image();
        let topics = request
            .topics
            .into_iter()
            .map(|topic| {
                let resolved =
                    resolve_topic(&image, TopicRef::Name(&topic.name.0)).map(|(id, _)| id);
                let partitions = topic
                    .partition_indexes
                    .iter()
                    .map(|&index| {
                        let response = PartitionResponse::default().with_partition_index(index);
                        match resolved.and_then(|id| hosted_partition(ctx, &image, id, index)) {
                            Ok(partition) => response.with_active_producers(
                                partition
                                    .log()
                                    .active_producers()
                                    .iter()
                                    .map(|(id, entry)| producer_state(*id, entry))
                                    .collect(),
                            ),
                            Err(code) => response.with_error_code(code),
                        }
                    })
                    .collect();
                TopicResponse::default()
                    .with_name(topic.name)
                    .with_partitions(partitions)
            })
            .collect();
        DescribeProducersResponse::default().with_topics(topics)
    }
}

/// One producer as DescribeProducers reports it.
fn producer_state(producer_id: i64, entry: &ProducerEntry) -> ProducerState {
    ProducerState::default()
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(i32::from(entry.epoch))
        .with_last_sequence(entry.last_seq().unwrap_or(-1))
        .with_last_timestamp(entry.last_timestamp)
        .with_coordinator_epoch(entry.coordinator_epoch)
        .with_current_txn_start_offset(entry.current_txn_first_offset.unwrap_or(-1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use crate::handlers::support::shape::check;

    #[test]
    fn requests_and_responses_fit_the_wire() {
        let request = DescribeProducersRequest::default()
            .with_topics(vec![TopicRequest::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partition_indexes(vec![0, 3])]);
        let mut body = bytes::BytesMut::new();
        request.encode(&mut body, 0).unwrap();
        let shape = DescribeProducersHandler::REQUEST_SHAPE;
        assert_eq!(check(&shape, 0, &body), Ok(()));
        assert!(check(&shape, 0, &body[..body.len() - 1]).is_err());

        let entry = ProducerEntry {
            epoch: 3,
            batches: Default::default(),
            last_timestamp: 1_000,
            current_txn_first_offset: Some(42),
            coordinator_epoch: 7,
        };
        let state = producer_state(9, &entry);
        assert_eq!(state.producer_id, ProducerId(9));
        assert_eq!(state.producer_epoch, 3);
        assert_eq!(state.last_sequence, -1);
        assert_eq!(state.current_txn_start_offset, 42);
        let response =
            DescribeProducersResponse::default().with_topics(vec![TopicResponse::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![PartitionResponse::default()
                    .with_partition_index(0)
                    .with_active_producers(vec![state])])]);
        let mut buf = bytes::BytesMut::new();
        response.encode(&mut buf, 0).unwrap();
    }
}
