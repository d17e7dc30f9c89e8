//! CreatePartitions (key 37, v0–v3): grows topics to a new partition count.
//!
//! In: per topic the new total count and optionally the replicas of each
//! new partition; `timeout_ms`, `validate_only`. A topic named twice is
//! INVALID_REQUEST and an illegal name INVALID_TOPIC_EXCEPTION; the rest go
//! to the controller in one request (it checks existence, that the count
//! grows, and the assignment). The answer waits for this broker's cache.
//!
//! Out: per topic the error code and message. The assignment of the i-th
//! new partition is sent with `partition_index` = the topic's partition
//! count in this broker's cache + i, i.e. the new partition's id, which is
//! what the controller expects (a stale cache makes the controller reject
//! the assignment rather than misplace it).

use std::collections::HashMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreatePartitionsResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kraft_metadata::validate_topic_name;
use kraft_proto::controller::{self as pb, controller_request::Body, controller_response};

use super::support::writes::{self, kafka_code, ItemError};
use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Field, Kind, Shape};
use crate::metadata_cache::CacheQueries;

fn result(name: &str, error: Option<&ItemError>) -> CreatePartitionsTopicResult {
    CreatePartitionsTopicResult::default()
        .with_name(TopicName(StrBytes::from_string(name.to_string())))
        .with_error_code(error.map_or(0, |e| e.code))
        .with_error_message(error.and_then(ItemError::message))
}

/// The request layout, for [`crate::handlers::support::shape::check`].
const ASSIGNMENT: &[Field] = &[field(0, i16::MAX, Kind::Int32Array)];
const TOPIC: &[Field] = &[
    field(0, i16::MAX, Kind::String),
    field(0, i16::MAX, Kind::Int32),
    field(0, i16::MAX, Kind::StructArray(ASSIGNMENT)),
];

/// Serves CreatePartitions.
pub struct CreatePartitionsHandler;

impl Handler for CreatePartitionsHandler {
    const API_KEY: ApiKey = ApiKey::CreatePartitions;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 3;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 2,
        fields: &[
            field(0, i16::MAX, Kind::StructArray(TOPIC)),
            field(0, i16::MAX, Kind::Int32),
            field(0, i16::MAX, Kind::Bool),
        ],
    };
    type Request = CreatePartitionsRequest;
    type Response = CreatePartitionsResponse;

    async fn handle(
        ctx: &BrokerContext,
        _header: &RequestHeader,
        request: CreatePartitionsRequest,
    ) -> CreatePartitionsResponse {
        let deadline = writes::deadline(ctx, request.timeout_ms);
        let image = ctx.cache.image();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for topic in &request.topics {
            *counts.entry(topic.name.0.as_str()).or_default() += 1;
        }
        let mut order: Vec<&str> = Vec::new();
        let mut rejected: HashMap<&str, ItemError> = HashMap::new();
        let mut forwarded = Vec::new();
        for topic in &request.topics {
            let name = topic.name.0.as_str();
            if order.contains(&name) {
                continue;
            }
            order.push(name);
            if counts.get(name).copied().unwrap_or(0) > 1 {
                let e = ItemError::new(
                    ResponseError::InvalidRequest,
                    format!("topic '{name}' appears more than once in the request"),
                );
                rejected.insert(name, e);
            } else if let Err(invalid) = validate_topic_name(name) {
                rejected.insert(
                    name,
                    ItemError::new(ResponseError::InvalidTopicException, invalid.0),
                );
            } else {
                let existing = image.topic_named(name).map_or(0, |t| t.partitions().len());
                let first = i32::try_from(existing).unwrap_or(i32::MAX);
                forwarded.push(pb::CreatePartitionsTopic {
                    name: name.to_string(),
                    count: topic.count,
                    assignments: topic
                        .assignments
                        .iter()
                        .flatten()
                        .zip(first..)
                        .map(|(a, i)| pb::ReplicaAssignment {
                            partition_index: i,
                            broker_ids: a.broker_ids.iter().map(|b| b.0).collect(),
                        })
                        .collect(),
                });
            }
        }
        let mut answers: HashMap<String, Option<ItemError>> = HashMap::new();
        if !forwarded.is_empty() {
            let names: Vec<String> = forwarded.iter().map(|t| t.name.clone()).collect();
            let body = Body::CreatePartitions(pb::CreatePartitionsRequest {
                topics: forwarded,
                validate_only: request.validate_only,
            });
            match writes::write(ctx, body, deadline).await {
                Ok(response) => {
                    if let Some(controller_response::Body::CreatePartitions(r)) = response.body {
                        for t in r.topics {
                            let error = (t.error_code != 0).then(|| ItemError {
                                code: kafka_code(t.error_code),
                                message: t.error_message,
                            });
                            answers.insert(t.name, error);
                        }
                    }
                }
                Err(e) => answers.extend(names.into_iter().map(|n| (n, Some(e.clone())))),
            }
        }
        let missing = ItemError::new(
            ResponseError::UnknownServerError,
            "the controller did not answer for this topic",
        );
        let results = order
            .iter()
            .map(|name| match rejected.get(name) {
                Some(e) => result(name, Some(e)),
                None => match answers.get(*name) {
                    Some(error) => result(name, error.as_ref()),
                    None => result(name, Some(&missing)),
                },
            })
            .collect();
        CreatePartitionsResponse::default().with_results(results)
    }
}
