//! ElectLeaders (key 43, v0–v2): preferred-leader election on request
//! (`kafka-leader-election.sh`, `kraftctl topics elect-leaders`).
//!
//! In: the election type (v1+; v0 is always PREFERRED), the partitions by
//! topic (null: every partition) and `timeout_ms`. The request goes to the
//! active controller as it is; the controller elects the first replica of
//! each partition where it can (see the controller's `leader_election`),
//! refuses UNCLEAN elections with INVALID_REQUEST, and the answer waits for
//! this broker's cache to reach the election's offset, so a Metadata call
//! right after shows the new leaders.
//!
//! Out: per topic, per partition an error code (NONE,
//! ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE,
//! UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST) and message. When every
//! partition was asked for, those already led by their preferred replica
//! are left out, as in Kafka. A failure of the whole request (no controller
//! in time) is the top-level error (v1+) and every named partition's.

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{
    ApiKey, ElectLeadersRequest, ElectLeadersResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use kraft_proto::controller::{self as pb, controller_request::Body, controller_response};

use super::support::writes::{self, kafka_code, ItemError};
use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Field, Kind, Shape};

/// The request layout, for [`crate::handlers::support::shape::check`].
const TOPIC: &[Field] = &[
    field(0, i16::MAX, Kind::String),
    field(0, i16::MAX, Kind::Int32Array),
];

/// Serves ElectLeaders.
pub struct ElectLeadersHandler;

impl Handler for ElectLeadersHandler {
    const API_KEY: ApiKey = ApiKey::ElectLeaders;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 2;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 2,
        fields: &[
            field(1, i16::MAX, Kind::Int8),
            field(0, i16::MAX, Kind::StructArray(TOPIC)),
            field(0, i16::MAX, Kind::Int32),
        ],
    };
    type Request = ElectLeadersRequest;
    type Response = ElectLeadersResponse;

    async fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: ElectLeadersRequest,
    ) -> ElectLeadersResponse {
        let deadline = writes::deadline(ctx, request.timeout_ms);
        let election_type = if header.request_api_version >= 1 {
            i32::from(request.election_type)
        } else {
            0
        };
        let named: Option<Vec<pb::TopicPartitions>> =
            request.topic_partitions.as_ref().map(|topics| {
                topics
                    .iter()
                    .map(|t| pb::TopicPartitions {
                        topic: t.topic.0.to_string(),
                        partitions: t.partitions.clone(),
                    })
                    .collect()
            });
        let body = Body::ElectLeaders(pb::ElectLeadersRequest {
            election_type,
            all_partitions: named.is_none(),
            partitions: named.clone().unwrap_or_default(),
        });
        let mut response = ElectLeadersResponse::default();
        let results = match writes::write(ctx, body, deadline).await {
            Ok(answer) => match answer.body {
                Some(controller_response::Body::ElectLeaders(r)) => r.results,
                _ => {
                    let e = ItemError {
                        code: ResponseError::UnknownServerError.code(),
                        message: "the controller sent an unexpected answer".to_string(),
                    };
                    return failed(response, header, named.as_deref(), &e);
                }
            },
            Err(e) => return failed(response, header, named.as_deref(), &e),
        };
        response.replica_election_results = group(
            results
                .into_iter()
                .map(|r| (r.topic, r.partition, r.error_code, r.error_message)),
        );
        response
    }
}

/// Results grouped by topic, topics in order of first appearance.
fn group(results: impl Iterator<Item = (String, i32, i32, String)>) -> Vec<ReplicaElectionResult> {
    let mut grouped: Vec<ReplicaElectionResult> = Vec::new();
    for (topic, partition, code, message) in results {
        let item = PartitionResult::default()
            .with_partition_id(partition)
            .with_error_code(kafka_code(code))
            .with_error_message((code != 0).then(|| StrBytes::from_string(message)));
        match grouped.iter_mut().find(|g| g.topic.0.as_str() == topic) {
            Some(g) => g.partition_result.push(item),
            None => grouped.push(
                ReplicaElectionResult::default()
                    .with_topic(TopicName(StrBytes::from_string(topic)))
                    .with_partition_result(vec![item]),
            ),
        }
    }
    grouped
}

/// The whole request failed: the top-level error (v1+) and each named
/// partition's.
fn failed(
    mut response: ElectLeadersResponse,
    header: &RequestHeader,
    named: Option<&[pb::TopicPartitions]>,
    error: &ItemError,
) -> ElectLeadersResponse {
    if header.request_api_version >= 1 {
        response.error_code = error.code;
    }
    let items = named.unwrap_or_default().iter().flat_map(|t| {
        t.partitions.iter().map(|p| {
            (
                t.topic.clone(),
                *p,
                i32::from(error.code),
                error.message.clone(),
            )
        })
    });
    response.replica_election_results = group(items);
    response
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    use kafka_protocol::protocol::Encodable;

    use super::*;
    use crate::handlers::support::shape::check;

    #[test]
    fn declared_shape_matches_the_wire() {
        for version in ElectLeadersHandler::MIN_VERSION..=ElectLeadersHandler::MAX_VERSION {
            for topics in [
                None,
                Some(vec![TopicPartitions::default()
                    .with_topic(TopicName(StrBytes::from_static_str("t")))
                    .with_partitions(vec![0, 1])]),
            ] {
                let request = ElectLeadersRequest::default()
                    .with_election_type(if version >= 1 { 1 } else { 0 })
                    .with_topic_partitions(topics)
                    .with_timeout_ms(1000);
                let mut body = BytesMut::new();
                request.encode(&mut body, version).unwrap();
                let shape = &ElectLeadersHandler::REQUEST_SHAPE;
                assert_eq!(check(shape, version, &body), Ok(()), "v{version}");
                assert!(check(shape, version, &body[..body.len() - 1]).is_err());
            }
        }
    }

    #[test]
    fn results_are_grouped_by_topic_in_order() {
        let grouped = group(
            [
                ("b".to_string(), 0, 0, String::new()),
                ("a".to_string(), 1, 84, "x".to_string()),
                ("b".to_string(), 2, 0, String::new()),
            ]
            .into_iter(),
        );
        let view: Vec<(String, Vec<(i32, i16)>)> = grouped
            .iter()
            .map(|g| {
                (
                    g.topic.0.to_string(),
                    g.partition_result
                        .iter()
                        .map(|p| (p.partition_id, p.error_code))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            view,
            vec![
                ("b".to_string(), vec![(0, 0), (2, 0)]),
                ("a".to_string(), vec![(1, 84)]),
            ]
        );
        assert!(grouped[0].partition_result[0].error_message.is_none());
    }
}
