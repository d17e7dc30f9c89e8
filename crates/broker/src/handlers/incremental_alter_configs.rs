//! IncrementalAlterConfigs (key 44, v0–v1): changes dynamic topic and
//! broker configs key by key.
//!
//! In: resources (TOPIC by name, BROKER by id or "" for the cluster
//! default), each with operations SET, DELETE, APPEND and SUBTRACT, and
//! `validate_only`. Checked per resource, in stages: a resource given twice,
//! an unsupported type, a bad broker name, a key given twice, an unknown
//! operation or a null value where one is needed are INVALID_REQUEST; an
//! illegal topic name is INVALID_TOPIC_EXCEPTION; a value a known key does
//! not accept (type, range, allowed values: kraft-metadata's topic config
//! table), or APPEND/SUBTRACT on a key that is not a list, is
//! INVALID_CONFIG. APPEND and SUBTRACT are turned into a SET of the new list,
//! computed from the current value (dynamic, else the default) in this
//! broker's cache.
//!
//! Out: one controller AlterConfigs request per valid resource (so errors,
//! e.g. UNKNOWN_TOPIC_OR_PARTITION, stay per resource), each waited for in
//! the cache; the response carries each resource's error code and message.

use std::collections::HashSet;

use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, RequestHeader,
};
use kraft_metadata::{
    list_items, topic_config, validate_topic_name, ConfigResource, MetadataImage,
};
use kraft_proto::controller::{controller_request::Body, AlterConfigsRequest};
use kraft_proto::metadata::{ConfigRecord, ConfigResourceType};

use super::support::configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::support::writes::{self, ItemError};
use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Field, Kind, Shape};

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

fn invalid_request(message: impl Into<String>) -> ItemError {
    ItemError::new(ResponseError::InvalidRequest, message)
}

fn invalid_config(message: impl Into<String>) -> ItemError {
    ItemError::new(ResponseError::InvalidConfig, message)
}

/// The image resource a request resource names.
fn config_resource(resource: &AlterConfigsResource) -> Result<ConfigResource, ItemError> {
    let name = resource.resource_name.as_str();
    match resource.resource_type {
        RESOURCE_TOPIC => match validate_topic_name(name) {
            Err(invalid) => Err(ItemError::new(
                ResponseError::InvalidTopicException,
                invalid.0,
            )),
            Ok(()) => Ok(ConfigResource::topic(name)),
        },
        RESOURCE_BROKER if name.is_empty() || name.parse::<i32>().is_ok_and(|id| id >= 0) => {
            Ok(ConfigResource::broker(name))
        }
        RESOURCE_BROKER => Err(invalid_request(format!(
            "broker resource '{name}' is neither a broker id nor ''"
        ))),
        other => Err(invalid_request(format!(
            "config resource type {other} is not supported"
        ))),
    }
}

/// The records that apply `resource`'s operations to `image`.
fn changes(
    image: &MetadataImage,
    resource: &AlterConfigsResource,
) -> Result<Vec<ConfigRecord>, ItemError> {
    let target = config_resource(resource)?;
    let is_topic = target.resource_type == ConfigResourceType::ConfigResourceTopic;
    let mut seen = HashSet::new();
    let mut records = Vec::with_capacity(resource.configs.len());
    for config in &resource.configs {
        let key = config.name.as_str();
        if !seen.insert(key) {
            return Err(invalid_request(format!(
                "config '{key}' appears more than once"
            )));
        }
        let known = if is_topic { topic_config(key) } else { None };
        let value = config.value.as_ref().map(|v| v.as_str().to_string());
        let needs_value = |value: Option<String>| {
            value.ok_or_else(|| {
                invalid_request(format!(
                    "config '{key}' needs a value for operation {}",
                    config.config_operation
                ))
            })
        };
        let new_value = match config.config_operation {
            OP_SET => {
                let value = needs_value(value)?;
                if let Some(def) = known {
                    def.check(&value)
                        .map_err(|e| invalid_config(e.to_string()))?;
                }
                Some(value)
            }
            OP_DELETE => None,
            OP_APPEND | OP_SUBTRACT => {
                let def = known.filter(|d| d.kind.is_list()).ok_or_else(|| {
                    invalid_config(format!(
                        "config '{key}' is not a list; it cannot be appended to or subtracted from"
                    ))
                })?;
                let items = list_items(&needs_value(value)?);
                let current = image.configs().get(&target, key).unwrap_or(def.default);
                let mut list = list_items(current);
                if config.config_operation == OP_APPEND {
                    list.extend(
                        items
                            .into_iter()
                            .filter(|i| !list.contains(i))
                            .collect::<Vec<_>>(),
                    );
                } else {
                    list.retain(|i| !items.contains(i));
                }
                Some(list.join(","))
            }
            other => return Err(invalid_request(format!("unknown config operation {other}"))),
        };
        records.push(ConfigRecord {
            resource_type: target.resource_type as i32,
            resource_name: target.name.clone(),
            name: key.to_string(),
            value: new_value,
        });
    }
    Ok(records)
}

/// The request layout, for [`crate::handlers::support::shape::check`].
const CONFIG: &[Field] = &[
    field(0, i16::MAX, Kind::String),
    field(0, i16::MAX, Kind::Int8),
    field(0, i16::MAX, Kind::String),
];
const RESOURCE: &[Field] = &[
    field(0, i16::MAX, Kind::Int8),
    field(0, i16::MAX, Kind::String),
    field(0, i16::MAX, Kind::StructArray(CONFIG)),
];

/// Serves IncrementalAlterConfigs.
pub struct IncrementalAlterConfigsHandler;

impl Handler for IncrementalAlterConfigsHandler {
    const API_KEY: ApiKey = ApiKey::IncrementalAlterConfigs;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 1;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 1,
        fields: &[
            field(0, i16::MAX, Kind::StructArray(RESOURCE)),
            field(0, i16::MAX, Kind::Bool),
        ],
    };
    type Request = IncrementalAlterConfigsRequest;
    type Response = IncrementalAlterConfigsResponse;

    async fn handle(
        ctx: &BrokerContext,
        _header: &RequestHeader,
        request: IncrementalAlterConfigsRequest,
    ) -> IncrementalAlterConfigsResponse {
        let deadline = writes::deadline(ctx, 0);
        let image = ctx.cache.image();
        let key =
            |r: &AlterConfigsResource| (r.resource_type, r.resource_name.as_str().to_string());
        let mut seen = HashSet::new();
        let duplicated: HashSet<_> = request
            .resources
            .iter()
            .map(key)
            .filter(|k| !seen.insert(k.clone()))
            .collect();
        let outcomes = request.resources.iter().map(|resource| {
            let image = &image;
            let duplicate = duplicated.contains(&key(resource));
            async move {
                if duplicate {
                    return Err(invalid_request(
                        "this resource appears more than once in the request",
                    ));
                }
                let records = changes(image, resource)?;
                let body = Body::AlterConfigs(AlterConfigsRequest {
                    changes: records,
                    validate_only: request.validate_only,
                });
                writes::write(ctx, body, deadline).await.map(|_| ())
            }
        });
        let responses = join_all(outcomes)
            .await
            .into_iter()
            .zip(&request.resources)
            .map(|(outcome, resource)| {
                let base = AlterConfigsResourceResponse::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name.clone());
                match outcome {
                    Ok(()) => base.with_error_message(None),
                    Err(e) => base.with_error_code(e.code).with_error_message(e.message()),
                }
            })
            .collect();
        IncrementalAlterConfigsResponse::default().with_responses(responses)
    }
}
