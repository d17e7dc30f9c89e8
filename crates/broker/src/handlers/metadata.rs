//! Metadata (key 3, v0–v13): topics, partition leaders and the alive
//! brokers, answered from one metadata image.
//!
//! In: the topics asked for — all of them (null list, or an empty list
//! at v0), or a list by name (or, v10+, by topic id) — and whether the
//! client allows auto-creation (v4+; always before). Out:
//! - brokers: registered, unfenced brokers with their endpoint on this
//!   listener (a broker without one is left out);
//! - cluster id (v2+), and a "controller" id (see
//!   [`reported_controller_id`]);
//! - per topic: id (v10+), internal flag (`__consumer_offsets`,
//!   `__transaction_state`), and
//!   per partition leader, leader epoch, replicas, ISR and offline replicas
//!   (fenced or unregistered). A partition without a usable leader is
//!   LEADER_NOT_AVAILABLE — including one this broker leads while it
//!   counts itself fenced (no heartbeat answered for a session), so
//!   clients ask another broker; an unknown topic is UNKNOWN_TOPIC_OR_PARTITION
//!   (UNKNOWN_TOPIC_ID by id), an illegal name INVALID_TOPIC_EXCEPTION.
//!
//! Auto-creation: when the client allows it and `auto.create.topics.enable`
//! is set, unknown legal names (not internal topics) are created in one
//! controller CreateTopics with `num.partitions` and
//! `default.replication.factor`; the answer waits for the cache to show
//! them. A creation that fails answers LEADER_NOT_AVAILABLE (retriable),
//! like Kafka's auto topic creation.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, MetadataRequest, MetadataResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kraft_metadata::{topic_name, MetadataImage, TopicImage};
use kraft_proto::controller::{controller_request::Body, CreatableTopic, CreateTopicsRequest};
use uuid::Uuid;

use super::support::cluster::reported_controller_id;
use super::support::writes;
use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Field, Kind, Shape};
use crate::metadata_cache::CacheQueries;

/// A topic the client asked about.
enum Wanted {
    Name(String),
    Id(Uuid),
}

/// The request layout, for [`crate::handlers::support::shape::check`].
const TOPIC: &[Field] = &[
    field(10, i16::MAX, Kind::Uuid),
    field(0, i16::MAX, Kind::String),
];

/// Serves Metadata.
pub struct MetadataHandler;

impl Handler for MetadataHandler {
    const API_KEY: ApiKey = ApiKey::Metadata;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 13;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 9,
        fields: &[
            field(0, i16::MAX, Kind::StructArray(TOPIC)),
            field(4, i16::MAX, Kind::Bool),
            field(8, 10, Kind::Bool),
            field(8, i16::MAX, Kind::Bool),
        ],
    };
    type Request = MetadataRequest;
    type Response = MetadataResponse;

    async fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: MetadataRequest,
    ) -> MetadataResponse {
        let version = header.request_api_version;
        let wanted: Option<Vec<Wanted>> = match request.topics {
            None => None,
            Some(topics) if topics.is_empty() && version == 0 => None,
            Some(topics) => Some(
                topics
                    .into_iter()
                    .map(|t| {
                        let name = t.name.map(|n| n.0.to_string()).unwrap_or_default();
                        if name.is_empty() && !t.topic_id.is_nil() {
                            Wanted::Id(t.topic_id)
                        } else {
                            Wanted::Name(name)
                        }
                    })
                    .collect(),
            ),
        };
        let auto_create = (version < 4 || request.allow_auto_topic_creation)
            && ctx.config.auto_create_topics_enable;
        let mut image = ctx.cache.image();
        if let Some(wanted) = &wanted {
            if auto_create {
                let missing: Vec<&str> = wanted
                    .iter()
                    .filter_map(|w| match w {
                        Wanted::Name(name) => Some(name.as_str()),
                        Wanted::Id(_) => None,
                    })
                    .filter(|name| image.topic_named(name).is_none())
                    .filter(|name| topic_name::validate_topic_name(name).is_ok())
                    .filter(|name| !topic_name::is_internal(name))
                    .collect();
                if !missing.is_empty() {
                    create_missing_topics(ctx, &missing).await;
                    image = ctx.cache.image();
                }
            }
        }
        let topics = match wanted {
            None => image
                .topics()
                .names()
                .filter_map(|(name, _)| image.topic_named(name))
                .map(|t| describe_topic(ctx, &image, t))
                .collect(),
            Some(wanted) => wanted
                .iter()
                .map(|w| match w {
                    Wanted::Name(name) => match image.topic_named(name) {
                        Some(topic) => describe_topic(ctx, &image, topic),
                        None => missing_topic(name, auto_create),
                    },
                    Wanted::Id(id) => match image.topics().topic(*id) {
                        Some(topic) => describe_topic(ctx, &image, topic),
                        None => MetadataResponseTopic::default()
                            .with_topic_id(*id)
                            .with_error_code(ResponseError::UnknownTopicId.code()),
                    },
                })
                .collect(),
        };
        MetadataResponse::default()
            .with_brokers(brokers(ctx, &image))
            .with_cluster_id(Some(StrBytes::from_string(ctx.cluster_id.clone())))
            .with_controller_id(BrokerId(reported_controller_id(ctx, &image)))
            .with_topics(topics)
    }
}

/// Asks the controller to create `names` with the broker's defaults and
/// waits for the cache; failures are logged (the topics then answer
/// LEADER_NOT_AVAILABLE or UNKNOWN_TOPIC_OR_PARTITION).
async fn create_missing_topics(ctx: &BrokerContext, names: &[&str]) {
    let topics = names
        .iter()
        .map(|name| CreatableTopic {
            name: name.to_string(),
            num_partitions: ctx.config.num_partitions,
            replication_factor: ctx.config.default_replication_factor,
            ..Default::default()
        })
        .collect();
    let body = Body::CreateTopics(CreateTopicsRequest {
        topics,
        validate_only: false,
    });
    let deadline = writes::deadline(ctx, 0);
    match writes::write(ctx, body, deadline).await {
        Ok(response) => {
            if let Some(kraft_proto::controller::controller_response::Body::CreateTopics(r)) =
                response.body
            {
                for t in r.topics.iter().filter(|t| t.error_code != 0) {
                    tracing::info!(topic = %t.name, code = t.error_code, message = %t.error_message, "auto-creation refused");
                }
            }
        }
        Err(e) => {
            tracing::warn!(?names, code = e.code, message = %e.message, "auto-creation failed")
        }
    }
}

/// A topic that is not in the image (after any auto-creation).
/// `auto_create` says whether creation was attempted.
fn missing_topic(name: &str, auto_create: bool) -> MetadataResponseTopic {
    let code = if topic_name::validate_topic_name(name).is_err() {
        ResponseError::InvalidTopicException
    } else if auto_create && !topic_name::is_internal(name) {
        ResponseError::LeaderNotAvailable
    } else {
        ResponseError::UnknownTopicOrPartition
    };
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(name.to_string()))))
        .with_error_code(code.code())
        .with_is_internal(topic_name::is_internal(name))
}

fn describe_topic(
    ctx: &BrokerContext,
    image: &MetadataImage,
    topic: &TopicImage,
) -> MetadataResponseTopic {
    let partitions = topic
        .partitions()
        .iter()
        .map(|(index, p)| {
            // A broker that has lost the controllers for a session knows its
            // view is stale and no longer leads: it sends clients elsewhere
            // rather than to itself.
            let stale_self = p.leader == ctx.node_id && ctx.counts_itself_fenced();
            let leader_usable = p.has_leader()
                && !stale_self
                && image
                    .broker_endpoint(p.leader, &ctx.listener_name)
                    .is_some();
            let (leader, code) = if leader_usable {
                (p.leader, 0)
            } else {
                (-1, ResponseError::LeaderNotAvailable.code())
            };
            MetadataResponsePartition::default()
                .with_error_code(code)
                .with_partition_index(*index)
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().copied().map(BrokerId).collect())
                .with_isr_nodes(p.isr.iter().copied().map(BrokerId).collect())
                .with_offline_replicas(
                    image
                        .offline_replicas(p)
                        .into_iter()
                        .map(BrokerId)
                        .collect(),
                )
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(
            topic.name().to_string(),
        ))))
        .with_topic_id(topic.id())
        .with_is_internal(topic_name::is_internal(topic.name()))
        .with_partitions(partitions)
}

fn brokers(ctx: &BrokerContext, image: &MetadataImage) -> Vec<MetadataResponseBroker> {
    image
        .alive_brokers()
        .into_iter()
        .filter_map(|b| {
            let endpoint = b.endpoint(&ctx.listener_name)?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.id))
                    .with_host(StrBytes::from_string(endpoint.host.clone()))
                    .with_port(i32::from(endpoint.port))
                    .with_rack(b.rack.clone().map(StrBytes::from_string)),
            )
        })
        .collect()
}
