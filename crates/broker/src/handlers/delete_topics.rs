//! DeleteTopics (key 20, v1–v6; kafka-protocol 0.18 cannot decode v0).
//!
//! In: topic names (v1–v5 `topic_names`; v6 `topics`, each a name or a
//! topic id) and `timeout_ms`. Stage one, per item: a v6 entry with both or
//! neither of name and id, or an item given twice, is INVALID_REQUEST. The
//! rest go to the controller in one request; it decides what exists
//! (UNKNOWN_TOPIC_OR_PARTITION / UNKNOWN_TOPIC_ID) and removes the rest.
//! The answer then waits for this broker's cache to drop them.
//!
//! Out: per item its name (and v6 topic id) with the error code and (v5+)
//! message. An unreachable controller is REQUEST_TIMED_OUT per item.

use std::collections::HashMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    ApiKey, DeleteTopicsRequest, DeleteTopicsResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kraft_proto::controller::{self as pb, controller_request::Body, controller_response};
use uuid::Uuid;

use super::support::writes::{self, kafka_code, uuid_from_bytes, ItemError};
use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Field, Kind, Shape};

/// One item of the request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Target {
    Name(String),
    Id(Uuid),
}

fn result(name: Option<&str>, id: Uuid, error: Option<&ItemError>) -> DeletableTopicResult {
    DeletableTopicResult::default()
        .with_name(name.map(|n| TopicName(StrBytes::from_string(n.to_string()))))
        .with_topic_id(id)
        .with_error_code(error.map_or(0, |e| e.code))
        .with_error_message(error.and_then(ItemError::message))
}

/// The request layout, for [`crate::handlers::support::shape::check`].
const TOPIC: &[Field] = &[
    field(6, i16::MAX, Kind::String),
    field(6, i16::MAX, Kind::Uuid),
];

/// Serves DeleteTopics.
pub struct DeleteTopicsHandler;

impl Handler for DeleteTopicsHandler {
    const API_KEY: ApiKey = ApiKey::DeleteTopics;
    const MIN_VERSION: i16 = 1;
    const MAX_VERSION: i16 = 6;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 4,
        fields: &[
            field(6, i16::MAX, Kind::StructArray(TOPIC)),
            field(0, 5, Kind::StringArray),
            field(0, i16::MAX, Kind::Int32),
        ],
    };
    type Request = DeleteTopicsRequest;
    type Response = DeleteTopicsResponse;

    async fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: DeleteTopicsRequest,
    ) -> DeleteTopicsResponse {
        let deadline = writes::deadline(ctx, request.timeout_ms);
        let invalid = |m: &str| ItemError::new(ResponseError::InvalidRequest, m);
        let items: Vec<Result<Target, ItemError>> = if header.request_api_version >= 6 {
            request
                .topics
                .iter()
                .map(|t| match (&t.name, t.topic_id.is_nil()) {
                    (Some(name), true) => Ok(Target::Name(name.0.to_string())),
                    (None, false) => Ok(Target::Id(t.topic_id)),
                    (Some(_), false) => Err(invalid("give a topic name or a topic id, not both")),
                    (None, true) => Err(invalid("neither a topic name nor a topic id was given")),
                })
                .collect()
        } else {
            request
                .topic_names
                .iter()
                .map(|n| Ok(Target::Name(n.0.to_string())))
                .collect()
        };
        let mut counts: HashMap<&Target, usize> = HashMap::new();
        for target in items.iter().flatten() {
            *counts.entry(target).or_default() += 1;
        }
        let duplicate = invalid("this topic appears more than once in the request");
        let mut names = Vec::new();
        let mut ids = Vec::new();
        for target in items.iter().flatten().filter(|t| counts.get(t) == Some(&1)) {
            match target {
                Target::Name(n) => names.push(n.clone()),
                Target::Id(id) => ids.push(id.as_bytes().to_vec().into()),
            }
        }
        let mut by_name: HashMap<String, pb::DeleteTopicResult> = HashMap::new();
        let mut by_id: HashMap<Uuid, pb::DeleteTopicResult> = HashMap::new();
        let mut failure: Option<ItemError> = None;
        if !names.is_empty() || !ids.is_empty() {
            let body = Body::DeleteTopics(pb::DeleteTopicsRequest {
                names,
                topic_ids: ids,
            });
            match writes::write(ctx, body, deadline).await {
                Ok(response) => {
                    if let Some(controller_response::Body::DeleteTopics(r)) = response.body {
                        for t in r.topics {
                            by_id.insert(uuid_from_bytes(&t.topic_id), t.clone());
                            by_name.insert(t.name.clone(), t);
                        }
                    }
                }
                Err(e) => failure = Some(e),
            }
        }
        let missing = ItemError::new(
            ResponseError::UnknownServerError,
            "the controller did not answer for this topic",
        );
        let responses = items
            .iter()
            .map(|item| {
                let target = match item {
                    Err(e) => return result(None, Uuid::nil(), Some(e)),
                    Ok(t) => t,
                };
                let (name, id) = match target {
                    Target::Name(n) => (Some(n.as_str()), Uuid::nil()),
                    Target::Id(id) => (None, *id),
                };
                if counts.get(target) != Some(&1) {
                    return result(name, id, Some(&duplicate));
                }
                if let Some(e) = &failure {
                    return result(name, id, Some(e));
                }
                let answer = match target {
                    Target::Name(n) => by_name.get(n),
                    Target::Id(id) => by_id.get(id),
                };
                match answer {
                    None => result(name, id, Some(&missing)),
                    Some(a) => {
                        let error = (a.error_code != 0).then(|| ItemError {
                            code: kafka_code(a.error_code),
                            message: a.error_message.clone(),
                        });
                        let name = name.or((!a.name.is_empty()).then_some(a.name.as_str()));
                        let id = if id.is_nil() {
                            uuid_from_bytes(&a.topic_id)
                        } else {
                            id
                        };
                        result(name, id, error.as_ref())
                    }
                }
            })
            .collect();
        DeleteTopicsResponse::default().with_responses(responses)
    }
}
