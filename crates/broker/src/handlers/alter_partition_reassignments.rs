//! AlterPartitionReassignments (key 45, v0–v1): start, replace or cancel
//! partition reassignments (`kafka-reassign-partitions.sh --execute`,
//! `kraftctl topics reassign`).
//!
//! In: per topic, per partition the target replicas (null cancels) and
//! `timeout_ms`; v1's `allow_replication_factor_change` (false: a target of
//! another size is INVALID_REPLICATION_FACTOR). An empty (non-null) target
//! is INVALID_REPLICA_ASSIGNMENT here; the rest go to the active controller
//! in one request, which validates each partition and writes the changes
//! (see the controller's `reassignment`). The answer waits for this
//! broker's cache to reach the write's offset.
//!
//! Out: per topic, per partition an error code and message; v1 echoes
//! `allow_replication_factor_change`. When the controller cannot be reached
//! in time, that error is the top-level one and every partition's.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey, RequestHeader,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kraft_proto::controller::{self as pb, controller_request::Body, controller_response};

use super::support::writes::{self, kafka_code, ItemError};
use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Field, Kind, Shape};

/// The request layout, for [`crate::handlers::support::shape::check`].
const PARTITION: &[Field] = &[
    field(0, i16::MAX, Kind::Int32),
    field(0, i16::MAX, Kind::Int32Array),
];
const TOPIC: &[Field] = &[
    field(0, i16::MAX, Kind::String),
    field(0, i16::MAX, Kind::StructArray(PARTITION)),
];

/// Serves AlterPartitionReassignments.
pub struct AlterPartitionReassignmentsHandler;

impl Handler for AlterPartitionReassignmentsHandler {
    const API_KEY: ApiKey = ApiKey::AlterPartitionReassignments;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 1;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 0,
        fields: &[
            field(0, i16::MAX, Kind::Int32),
            field(1, i16::MAX, Kind::Bool),
            field(0, i16::MAX, Kind::StructArray(TOPIC)),
        ],
    };
    type Request = AlterPartitionReassignmentsRequest;
    type Response = AlterPartitionReassignmentsResponse;

    async fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: AlterPartitionReassignmentsRequest,
    ) -> AlterPartitionReassignmentsResponse {
        let deadline = writes::deadline(ctx, request.timeout_ms);
        // Every partition in request order, with its local error if any.
        let mut items: Vec<(String, i32, Option<ItemError>)> = Vec::new();
        let mut targets = Vec::new();
        for topic in &request.topics {
            for p in &topic.partitions {
                let name = topic.name.0.to_string();
                let replicas: Vec<i32> = match &p.replicas {
                    None => Vec::new(),
                    Some(ids) if ids.is_empty() => {
                        let e = ItemError::new(
                            ResponseError::InvalidReplicaAssignment,
                            "The manual partition assignment includes an empty replica list.",
                        );
                        items.push((name, p.partition_index, Some(e)));
                        continue;
                    }
                    Some(ids) => ids.iter().map(|b| b.0).collect(),
                };
                targets.push(pb::ReassignmentTarget {
                    topic: name.clone(),
                    partition: p.partition_index,
                    replicas,
                });
                items.push((name, p.partition_index, None));
            }
        }
        let allow_rf_change =
            header.request_api_version < 1 || request.allow_replication_factor_change;
        let mut response = AlterPartitionReassignmentsResponse::default()
            .with_allow_replication_factor_change(
                header.request_api_version >= 1 && request.allow_replication_factor_change,
            );
        let mut answers: Vec<pb::ReassignmentResult> = Vec::new();
        let mut whole: Option<ItemError> = None;
        if !targets.is_empty() {
            let body = Body::AlterReassignments(pb::AlterReassignmentsRequest {
                targets,
                keep_replication_factor: !allow_rf_change,
            });
            match writes::write(ctx, body, deadline).await {
                Ok(answer) => match answer.body {
                    Some(controller_response::Body::AlterReassignments(r)) => answers = r.results,
                    _ => {
                        whole = Some(ItemError::new(
                            ResponseError::UnknownServerError,
                            "the controller sent an unexpected answer",
                        ))
                    }
                },
                Err(e) => whole = Some(e),
            }
        }
        if let Some(e) = &whole {
            response.error_code = e.code;
            response.error_message = e.message();
        }
        let mut answers = answers.into_iter();
        let mut topics: Vec<ReassignableTopicResponse> = Vec::new();
        for (name, partition, local) in items {
            let error = match (local, &whole) {
                (Some(e), _) => Some(e),
                (None, Some(e)) => Some(e.clone()),
                // The controller answers in request order, one per target.
                (None, None) => match answers.next() {
                    Some(a) if a.topic == name && a.partition == partition => (a.error_code != 0)
                        .then(|| ItemError {
                            code: kafka_code(a.error_code),
                            message: a.error_message,
                        }),
                    _ => Some(ItemError::new(
                        ResponseError::UnknownServerError,
                        "the controller did not answer for this partition",
                    )),
                },
            };
            let result = ReassignablePartitionResponse::default()
                .with_partition_index(partition)
                .with_error_code(error.as_ref().map_or(0, |e| e.code))
                .with_error_message(error.as_ref().and_then(ItemError::message));
            match topics.iter_mut().find(|t| t.name.0.as_str() == name) {
                Some(t) => t.partitions.push(result),
                None => topics.push(
                    ReassignableTopicResponse::default()
                        .with_name(TopicName(StrBytes::from_string(name)))
                        .with_partitions(vec![result]),
                ),
            }
        }
        response.responses = topics;
        response
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    use kafka_protocol::messages::BrokerId;
    use kafka_protocol::protocol::Encodable;

    use super::*;
    use crate::handlers::support::shape::check;

    #[test]
    fn declared_shape_matches_the_wire() {
        type H = AlterPartitionReassignmentsHandler;
        for version in H::MIN_VERSION..=H::MAX_VERSION {
            let request = AlterPartitionReassignmentsRequest::default()
                .with_timeout_ms(1000)
                .with_allow_replication_factor_change(version == 0)
                .with_topics(vec![ReassignableTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("t")))
                    .with_partitions(vec![
                        ReassignablePartition::default()
                            .with_partition_index(0)
                            .with_replicas(Some(vec![BrokerId(4), BrokerId(5)])),
                        ReassignablePartition::default().with_partition_index(1),
                    ])]);
            let mut body = BytesMut::new();
            request.encode(&mut body, version).unwrap();
            assert_eq!(
                check(&H::REQUEST_SHAPE, version, &body),
                Ok(()),
                "v{version}"
            );
            assert!(check(&H::REQUEST_SHAPE, version, &body[..body.len() - 1]).is_err());
        }
    }
}
