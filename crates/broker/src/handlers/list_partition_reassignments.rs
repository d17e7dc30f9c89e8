//! ListPartitionReassignments (key 46, v0): the reassignments in progress
//! (`kafka-reassign-partitions.sh --verify`, `kraftctl topics
//! reassignments`).
//!
//! In: the partitions to look at by topic (null: every partition) and
//! `timeout_ms`. The question goes to the active controller, which answers
//! from its committed metadata, as Kafka's does; an empty (non-null) list
//! names nothing and is answered here.
//!
//! Out: per topic, per partition being reassigned, its replicas and the
//! replicas being added and removed. Partitions that do not exist or are not
//! being reassigned are left out. When no controller answers in time, that
//! is the top-level error.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
    RequestHeader, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kraft_proto::controller::{self as pb, controller_request::Body, controller_response};
use tokio::time::Instant;

use super::support::writes::{self, client_error, ItemError};
use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Field, Kind, Shape};

/// The request layout, for [`crate::handlers::support::shape::check`].
const TOPIC: &[Field] = &[
    field(0, i16::MAX, Kind::String),
    field(0, i16::MAX, Kind::Int32Array),
];

/// Serves ListPartitionReassignments.
pub struct ListPartitionReassignmentsHandler;

impl Handler for ListPartitionReassignmentsHandler {
    const API_KEY: ApiKey = ApiKey::ListPartitionReassignments;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 0;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 0,
        fields: &[
            field(0, i16::MAX, Kind::Int32),
            field(0, i16::MAX, Kind::StructArray(TOPIC)),
        ],
    };
    type Request = ListPartitionReassignmentsRequest;
    type Response = ListPartitionReassignmentsResponse;

    async fn handle(
        ctx: &BrokerContext,
        _header: &RequestHeader,
        request: ListPartitionReassignmentsRequest,
    ) -> ListPartitionReassignmentsResponse {
        let response = ListPartitionReassignmentsResponse::default();
        let partitions: Vec<pb::TopicPartitions> = match &request.topics {
            None => Vec::new(),
            Some(topics) => {
                let named: Vec<pb::TopicPartitions> = topics
                    .iter()
                    .filter(|t| !t.partition_indexes.is_empty())
                    .map(|t| pb::TopicPartitions {
                        topic: t.name.0.to_string(),
                        partitions: t.partition_indexes.clone(),
                    })
                    .collect();
                if named.is_empty() {
                    return response;
                }
                named
            }
        };
        let deadline = writes::deadline(ctx, request.timeout_ms);
        let timeout = deadline.saturating_duration_since(Instant::now());
        let body = Body::ListReassignments(pb::ListReassignmentsRequest { partitions });
        let error = match ctx.controller.call(body, timeout).await {
            Ok(answer) => match answer.body {
                Some(controller_response::Body::ListReassignments(r)) => {
                    return response.with_topics(group(r.reassignments));
                }
                _ => ItemError::new(
                    ResponseError::UnknownServerError,
                    "the controller sent an unexpected answer",
                ),
            },
            Err(e) => client_error(&e),
        };
        response
            .with_error_code(error.code)
            .with_error_message(error.message())
    }
}

fn ids(ids: &[i32]) -> Vec<BrokerId> {
    ids.iter().copied().map(BrokerId).collect()
}

/// The controller's list (sorted by topic, then partition) as Kafka's
/// per-topic groups.
fn group(reassignments: Vec<pb::OngoingReassignment>) -> Vec<OngoingTopicReassignment> {
    let mut topics: Vec<OngoingTopicReassignment> = Vec::new();
    for r in reassignments {
        let partition = OngoingPartitionReassignment::default()
            .with_partition_index(r.partition)
            .with_replicas(ids(&r.replicas))
            .with_adding_replicas(ids(&r.adding_replicas))
            .with_removing_replicas(ids(&r.removing_replicas));
        match topics.last_mut() {
            Some(t) if t.name.0.as_str() == r.topic => t.partitions.push(partition),
            _ => topics.push(
                OngoingTopicReassignment::default()
                    .with_name(TopicName(StrBytes::from_string(r.topic)))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    topics
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
    use kafka_protocol::protocol::Encodable;

    use super::*;
    use crate::handlers::support::shape::check;

    #[test]
    fn declared_shape_matches_the_wire() {
        type H = ListPartitionReassignmentsHandler;
        for topics in [
            None,
            Some(vec![ListPartitionReassignmentsTopics::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partition_indexes(vec![0, 3])]),
        ] {
            let request = ListPartitionReassignmentsRequest::default()
                .with_timeout_ms(1000)
                .with_topics(topics);
            let mut body = BytesMut::new();
            request.encode(&mut body, 0).unwrap();
            assert_eq!(check(&H::REQUEST_SHAPE, 0, &body), Ok(()));
            assert!(check(&H::REQUEST_SHAPE, 0, &body[..body.len() - 1]).is_err());
        }
    }

    #[test]
    fn partitions_are_grouped_by_topic() {
        let ongoing = |topic: &str, partition: i32| pb::OngoingReassignment {
            topic: topic.into(),
            partition,
            replicas: vec![4, 5, 2, 3],
            adding_replicas: vec![4, 5],
            removing_replicas: vec![2, 3],
        };
        let topics = group(vec![ongoing("a", 0), ongoing("a", 2), ongoing("b", 1)]);
        assert_eq!(topics.len(), 2);
        assert_eq!(topics[0].partitions.len(), 2);
        assert_eq!(topics[1].partitions[0].adding_replicas, ids(&[4, 5]));
    }
}
