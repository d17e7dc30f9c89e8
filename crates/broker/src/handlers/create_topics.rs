//! CreateTopics (key 19, v2–v7; kafka-protocol 0.18 cannot decode v0–v1,
//! which Kafka 4 dropped too).
//!
//! In: topics with partitions / replication factor (-1: the controller's
//! defaults) or a manual assignment, configs, `timeout_ms`,
//! `validate_only`. Validation runs in stages, each giving per-topic
//! errors: a name given twice (INVALID_REQUEST), an illegal name
//! (INVALID_TOPIC_EXCEPTION), counts given with an assignment
//! (INVALID_REQUEST), a null or ill-typed config value (INVALID_CONFIG).
//! The rest go to the controller in one request, which places replicas and
//! answers per topic; then the answer waits (within `timeout_ms`) until this
//! broker's cache holds the new topics.
//!
//! Out: per topic the controller's error code and message; on success (v5+)
//! partitions, replication factor and effective configs, and (v7) the topic
//! id. If the controller cannot be reached in time every forwarded topic
//! gets REQUEST_TIMED_OUT (or the controller's NOT_CONTROLLER).

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kraft_metadata::{topic_config, validate_topic_name};
use kraft_proto::controller::{self as pb, controller_request::Body, controller_response};

use super::support::configs::topic_configs_with;
use super::support::writes::{self, kafka_code, uuid_from_bytes, ItemError};
use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Field, Kind, Shape};

/// The request layout, for [`crate::handlers::support::shape::check`].
const ASSIGNMENT: &[Field] = &[
    field(0, i16::MAX, Kind::Int32),
    field(0, i16::MAX, Kind::Int32Array),
];
const CONFIG: &[Field] = &[
    field(0, i16::MAX, Kind::String),
    field(0, i16::MAX, Kind::String),
];
const TOPIC: &[Field] = &[
    field(0, i16::MAX, Kind::String),
    field(0, i16::MAX, Kind::Int32),
    field(0, i16::MAX, Kind::Int16),
    field(0, i16::MAX, Kind::StructArray(ASSIGNMENT)),
    field(0, i16::MAX, Kind::StructArray(CONFIG)),
];

/// Serves CreateTopics.
pub struct CreateTopicsHandler;

/// Checks one topic that is not a duplicate; `Ok` is its controller form.
fn validate(topic: &CreatableTopic) -> Result<pb::CreatableTopic, ItemError> {
    let name = topic.name.0.as_str();
    if let Err(invalid) = validate_topic_name(name) {
        return Err(ItemError::new(
            ResponseError::InvalidTopicException,
            invalid.0,
        ));
    }
    if !topic.assignments.is_empty()
        && (topic.num_partitions != -1 || topic.replication_factor != -1)
    {
        return Err(ItemError::new(
            ResponseError::InvalidRequest,
            "both a replica assignment and numPartitions or replicationFactor were given",
        ));
    }
    let mut configs = BTreeMap::new();
    for config in &topic.configs {
        let key = config.name.as_str();
        let Some(value) = config.value.as_ref().map(StrBytes::as_str) else {
            return Err(ItemError::new(
                ResponseError::InvalidConfig,
                format!("config '{key}' has a null value"),
            ));
        };
        if let Some(def) = topic_config(key) {
            def.check(value)
                .map_err(|e| ItemError::new(ResponseError::InvalidConfig, e.to_string()))?;
        }
        if configs.insert(key.to_string(), value.to_string()).is_some() {
            return Err(ItemError::new(
                ResponseError::InvalidConfig,
                format!("config '{key}' is given twice"),
            ));
        }
    }
    Ok(pb::CreatableTopic {
        name: name.to_string(),
        num_partitions: topic.num_partitions,
        replication_factor: i32::from(topic.replication_factor),
        assignments: topic
            .assignments
            .iter()
            .map(|a| pb::ReplicaAssignment {
                partition_index: a.partition_index,
                broker_ids: a.broker_ids.iter().map(|b| b.0).collect(),
            })
            .collect(),
        configs: configs.into_iter().collect(),
    })
}

fn error_result(name: &str, e: &ItemError) -> CreatableTopicResult {
    CreatableTopicResult::default()
        .with_name(TopicName(StrBytes::from_string(name.to_string())))
        .with_error_code(e.code)
        .with_error_message(e.message())
}

fn success_result(
    result: &pb::CreateTopicResult,
    configs: &HashMap<String, String>,
) -> CreatableTopicResult {
    let configs = topic_configs_with(configs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .into_iter()
        .map(|entry| {
            let (value, source) = entry.effective();
            CreatableTopicConfigs::default()
                .with_name(StrBytes::from_string(entry.name.clone()))
                .with_value(Some(StrBytes::from_string(value.to_string())))
                .with_config_source(source)
        })
        .collect();
    CreatableTopicResult::default()
        .with_name(TopicName(StrBytes::from_string(result.name.clone())))
        .with_topic_id(uuid_from_bytes(&result.topic_id))
        .with_error_message(None)
        .with_num_partitions(result.num_partitions)
        .with_replication_factor(i16::try_from(result.replication_factor).unwrap_or(-1))
        .with_configs(Some(configs))
}

impl Handler for CreateTopicsHandler {
    const API_KEY: ApiKey = ApiKey::CreateTopics;
    const MIN_VERSION: i16 = 2;
    const MAX_VERSION: i16 = 7;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 5,
        fields: &[
            field(0, i16::MAX, Kind::StructArray(TOPIC)),
            field(0, i16::MAX, Kind::Int32),
            field(1, i16::MAX, Kind::Bool),
        ],
    };
    type Request = CreateTopicsRequest;
    type Response = CreateTopicsResponse;

    async fn handle(
        ctx: &BrokerContext,
        _header: &RequestHeader,
        request: CreateTopicsRequest,
    ) -> CreateTopicsResponse {
        let deadline = writes::deadline(ctx, request.timeout_ms);
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for topic in &request.topics {
            *counts.entry(topic.name.0.as_str()).or_default() += 1;
        }
        // Distinct names in request order, each with its outcome so far.
        let mut order: Vec<&str> = Vec::new();
        let mut outcomes: HashMap<&str, Result<pb::CreatableTopic, ItemError>> = HashMap::new();
        for topic in &request.topics {
            let name = topic.name.0.as_str();
            if outcomes.contains_key(name) {
                continue;
            }
            order.push(name);
            let outcome = if counts.get(name).copied().unwrap_or(0) > 1 {
                Err(ItemError::new(
                    ResponseError::InvalidRequest,
                    format!("topic '{name}' appears more than once in the request"),
                ))
            } else {
                validate(topic)
            };
            outcomes.insert(name, outcome);
        }
        let forwarded: Vec<pb::CreatableTopic> = order
            .iter()
            .filter_map(|name| outcomes.get(name).and_then(|o| o.as_ref().ok()).cloned())
            .collect();
        let mut answers: HashMap<String, CreatableTopicResult> = HashMap::new();
        if !forwarded.is_empty() {
            let configs: HashMap<String, HashMap<String, String>> = forwarded
                .iter()
                .map(|t| (t.name.clone(), t.configs.clone()))
                .collect();
            let body = Body::CreateTopics(pb::CreateTopicsRequest {
                topics: forwarded,
                validate_only: request.validate_only,
            });
            match writes::write(ctx, body, deadline).await {
                Ok(response) => {
                    if let Some(controller_response::Body::CreateTopics(r)) = response.body {
                        for t in &r.topics {
                            let result = if t.error_code == 0 {
                                success_result(t, configs.get(&t.name).unwrap_or(&HashMap::new()))
                            } else {
                                let e = ItemError {
                                    code: kafka_code(t.error_code),
                                    message: t.error_message.clone(),
                                };
                                error_result(&t.name, &e)
                            };
                            answers.insert(t.name.clone(), result);
                        }
                    }
                }
                Err(e) => {
                    for name in configs.keys() {
                        answers.insert(name.clone(), error_result(name, &e));
                    }
                }
            }
        }
        let missing = ItemError::new(
            ResponseError::UnknownServerError,
            "the controller did not answer for this topic",
        );
        let topics = order
            .iter()
            .map(|name| match outcomes.get(name) {
                Some(Err(e)) => error_result(name, e),
                _ => answers
                    .remove(*name)
                    .unwrap_or_else(|| error_result(name, &missing)),
            })
            .collect();
        CreateTopicsResponse::default().with_topics(topics)
    }
}
