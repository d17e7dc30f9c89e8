//! DescribeConfigs (key 32, v1–v4): the effective configs of topics and
//! brokers.
//!
//! In: resources (type + name) with an optional key filter, and whether to
//! include synonyms. Out, per resource:
//! - TOPIC: every known topic key (kraft-metadata's [`TOPIC_CONFIGS`](kraft_metadata::TOPIC_CONFIGS)) with
//!   its default
//!   (DEFAULT_CONFIG), overridden by the dynamic values in the image's
//!   ConfigurationsImage (DYNAMIC_TOPIC_CONFIG), plus dynamic keys this
//!   broker does not know. Unknown topic: UNKNOWN_TOPIC_OR_PARTITION;
//!   illegal name: INVALID_TOPIC_EXCEPTION.
//! - BROKER named by this broker's id: its static settings
//!   (STATIC_BROKER_CONFIG) under the dynamic cluster default
//!   (DYNAMIC_DEFAULT_BROKER_CONFIG) under its own dynamic values
//!   (DYNAMIC_BROKER_CONFIG). Named "": the cluster-wide dynamic defaults.
//!   Another broker's id: INVALID_REQUEST (ask that broker).
//! - Anything else: INVALID_REQUEST.
//!
//! With synonyms, each entry lists every source that sets the key, highest
//! precedence first.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    ApiKey, DescribeConfigsRequest, DescribeConfigsResponse, RequestHeader,
};
use kafka_protocol::protocol::StrBytes;
use kraft_metadata::{validate_topic_name, ConfigResource, ConfigType, MetadataImage};

use super::support::configs::{
    source, topic_configs, ConfigEntry, RESOURCE_BROKER, RESOURCE_TOPIC,
};
use super::support::writes::ItemError;
use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Field, Kind, Shape};
use crate::kafka::MAX_REQUEST_BYTES;

/// Overlays the dynamic keys of `resource` on `entries` with `source`.
fn overlay(
    entries: &mut Vec<ConfigEntry>,
    image: &MetadataImage,
    resource: &ConfigResource,
    src: i8,
) {
    let Some(dynamic) = image.configs().resource(resource) else {
        return;
    };
    for (key, value) in dynamic.iter() {
        match entries.iter_mut().find(|e| &e.name == key) {
            Some(entry) => entry.override_with(value, src),
            None => entries.push(ConfigEntry::new(key, ConfigType::Unknown, value, src)),
        }
    }
}

/// The effective configs of this broker (`own` = its id resource) or of the
/// cluster default (`own` = false).
fn broker_configs(ctx: &BrokerContext, image: &MetadataImage, own: bool) -> Vec<ConfigEntry> {
    let mut entries = Vec::new();
    if own {
        let c = &ctx.config;
        let statics = [
            ("node.id", ctx.node_id.to_string(), ConfigType::Int),
            (
                "auto.create.topics.enable",
                c.auto_create_topics_enable.to_string(),
                ConfigType::Boolean,
            ),
            (
                "num.partitions",
                c.num_partitions.to_string(),
                ConfigType::Int,
            ),
            (
                "default.replication.factor",
                c.default_replication_factor.to_string(),
                ConfigType::Int,
            ),
            (
                "socket.request.max.bytes",
                MAX_REQUEST_BYTES.to_string(),
                ConfigType::Int,
            ),
        ];
        for (name, value, kind) in statics {
            let mut entry = ConfigEntry::new(name, kind, &value, source::STATIC_BROKER_CONFIG);
            entry.read_only = name == "node.id";
            entries.push(entry);
        }
    }
    let default = ConfigResource::broker("");
    overlay(
        &mut entries,
        image,
        &default,
        source::DYNAMIC_DEFAULT_BROKER_CONFIG,
    );
    if own {
        let resource = ConfigResource::broker(ctx.node_id.to_string());
        overlay(
            &mut entries,
            image,
            &resource,
            source::DYNAMIC_BROKER_CONFIG,
        );
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// The entries of one resource, or the error it answers with.
fn describe(
    ctx: &BrokerContext,
    image: &MetadataImage,
    kind: i8,
    name: &str,
) -> Result<Vec<ConfigEntry>, ItemError> {
    match kind {
        RESOURCE_TOPIC => {
            if let Err(invalid) = validate_topic_name(name) {
                return Err(ItemError::new(
                    ResponseError::InvalidTopicException,
                    invalid.0,
                ));
            }
            if image.topics().topic_by_name(name).is_none() {
                return Err(ItemError::new(
                    ResponseError::UnknownTopicOrPartition,
                    format!("topic '{name}' does not exist"),
                ));
            }
            Ok(topic_configs(image, name))
        }
        RESOURCE_BROKER if name.is_empty() => Ok(broker_configs(ctx, image, false)),
        RESOURCE_BROKER if name == ctx.node_id.to_string() => Ok(broker_configs(ctx, image, true)),
        RESOURCE_BROKER => Err(ItemError::new(
            ResponseError::InvalidRequest,
            format!("this is broker {}; ask broker '{name}' for its configs, or '' for the cluster default", ctx.node_id),
        )),
        other => Err(ItemError::new(
            ResponseError::InvalidRequest,
            format!("config resource type {other} is not supported"),
        )),
    }
}

fn to_result(entry: ConfigEntry, version: i16, synonyms: bool) -> DescribeConfigsResourceResult {
    let (value, src) = entry.effective();
    let mut result = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(entry.name.clone()))
        .with_value(Some(StrBytes::from_string(value.to_string())))
        .with_read_only(entry.read_only)
        .with_config_source(src)
        .with_is_sensitive(false);
    if version >= 3 {
        result = result.with_config_type(entry.kind.code());
    }
    if synonyms {
        result.synonyms = entry
            .values
            .iter()
            .map(|(v, s)| {
                DescribeConfigsSynonym::default()
                    .with_name(StrBytes::from_string(entry.name.clone()))
                    .with_value(Some(StrBytes::from_string(v.clone())))
                    .with_source(*s)
            })
            .collect();
    }
    result
}

/// The request layout, for [`crate::handlers::support::shape::check`].
const RESOURCE: &[Field] = &[
    field(0, i16::MAX, Kind::Int8),
    field(0, i16::MAX, Kind::String),
    field(0, i16::MAX, Kind::StringArray),
];

/// Serves DescribeConfigs.
pub struct DescribeConfigsHandler;

impl Handler for DescribeConfigsHandler {
    const API_KEY: ApiKey = ApiKey::DescribeConfigs;
    const MIN_VERSION: i16 = 1;
    const MAX_VERSION: i16 = 4;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 4,
        fields: &[
            field(0, i16::MAX, Kind::StructArray(RESOURCE)),
            field(1, i16::MAX, Kind::Bool),
            field(3, i16::MAX, Kind::Bool),
        ],
    };
    type Request = DescribeConfigsRequest;
    type Response = DescribeConfigsResponse;

    async fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: DescribeConfigsRequest,
    ) -> DescribeConfigsResponse {
        let version = header.request_api_version;
        let image = ctx.cache.image();
        let results = request
            .resources
            .into_iter()
            .map(|resource| {
                let name = resource.resource_name.as_str();
                let base = DescribeConfigsResult::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name.clone());
                match describe(ctx, &image, resource.resource_type, name) {
                    Err(e) => base.with_error_code(e.code).with_error_message(e.message()),
                    Ok(entries) => {
                        let keys = resource.configuration_keys.as_ref();
                        let configs = entries
                            .into_iter()
                            .filter(|e| {
                                keys.is_none_or(|keys| keys.iter().any(|k| k.as_str() == e.name))
                            })
                            .map(|e| to_result(e, version, request.include_synonyms))
                            .collect();
                        base.with_error_message(None).with_configs(configs)
                    }
                }
            })
            .collect();
        DescribeConfigsResponse::default().with_results(results)
    }
}
