//! Produce (key 0, v3–v13): appends record batches to the partitions this
//! broker leads.
//!
//! In: `acks`, `timeout_ms` and, per topic (by name; by id from v13) and
//! partition, one v2 record batch as `Bytes`, sliced from the request frame
//! without a copy. Each batch goes to its partition's log as it is: the log
//! checks its header, CRC and records against the header and gives it
//! offsets (see [`Partition::append_as_leader`]). A compressed batch is
//! decompressed (streaming, capped) for that check, so its append runs on
//! tokio's blocking pool, at most [`DECOMPRESSING`] at a time, never on an
//! async worker. Clients may not write internal topics
//! (`__consumer_offsets`, `__transaction_state`): INVALID_TOPIC_EXCEPTION,
//! as Kafka answers; the coordinators append there through their
//! partitions, not this handler.
//!
//! A request carrying a transactional batch must name the producer's
//! `transactional_id`, else every partition is answered
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED and nothing is appended, as
//! Kafka's `handleProduceRequest` does (with no authorizer, the id must
//! still be there). Which transactions a partition has open is the log's
//! producer state (`kraft_log::producer_state`). A transaction's first
//! batch on a partition is appended only once its coordinator confirmed
//! the partition is in the transaction (KIP-890, [`crate::txn::verify`]):
//! else INVALID_TXN_STATE, and nothing is written.
//!
//! Out: per partition the error code, the base offset, the log-append time
//! (-1 under CreateTime) and the log start offset. With acks=all the answer
//! waits until the high watermark passes the batch: every in-sync replica
//! has it (REQUEST_TIMED_OUT after `timeout_ms`; NOT_ENOUGH_REPLICAS before
//! the append or NOT_ENOUGH_REPLICAS_AFTER_APPEND after it when the ISR is
//! smaller than `min.insync.replicas`); with acks=1 it is sent once the leader has appended; with
//! acks=0 nothing is sent at all, and a failure closes the connection, as
//! Kafka does. An acks value other than -1, 0 or 1 is INVALID_REQUIRED_ACKS.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    LeaderIdAndEpoch, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;
use kraft_log::{BatchHeader, LogAppendInfo};
use kraft_metadata::{is_internal, MetadataImage};
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::support::partitions::{hosted_partition, resolve_topic, TopicRef};
use super::Handler;
use crate::context::BrokerContext;
use crate::handlers::support::shape::{field, Field, Kind, Shape};
use crate::replica::{now_ms, Partition};
use crate::txn::TxnWrite;

const PARTITION: &[Field] = &[
    field(0, i16::MAX, Kind::Int32),
    field(0, i16::MAX, Kind::Bytes),
];
const TOPIC: &[Field] = &[
    field(0, 12, Kind::String),
    field(13, i16::MAX, Kind::Uuid),
    field(0, i16::MAX, Kind::StructArray(PARTITION)),
];

/// Serves Produce.
pub struct ProduceHandler;

/// How many compressed batches the broker checks at once. Each holds at
/// most a 16 MiB zstd window or, for snappy, the decompression cap
/// (`kraft_log::batch::decompression_limit`), so this bounds the memory
/// hostile batches can take, and leaves blocking threads for disk work.
const DECOMPRESSING_AT_ONCE: usize = 4;
static DECOMPRESSING: Semaphore = Semaphore::const_new(DECOMPRESSING_AT_ONCE);

/// A batch appended: where, what the log said, and in which leader epoch.
struct Appended {
    partition: Arc<Partition>,
    info: LogAppendInfo,
    leader_epoch: i32,
}

/// A refused batch: the error code and message.
type Refused = (i16, Option<String>);

/// One partition's outcome before acks=all waits.
struct Outcome {
    index: i32,
    result: Result<Appended, Refused>,
}

impl Handler for ProduceHandler {
    const API_KEY: ApiKey = ApiKey::Produce;
    const MIN_VERSION: i16 = 3;
    const MAX_VERSION: i16 = 13;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 9,
        fields: &[
            field(3, i16::MAX, Kind::String),
            field(0, i16::MAX, Kind::Int16),
            field(0, i16::MAX, Kind::Int32),
            field(0, i16::MAX, Kind::StructArray(TOPIC)),
        ],
    };
    type Request = ProduceRequest;
    type Response = ProduceResponse;

    fn expects_response(request: &ProduceRequest) -> bool {
        request.acks != 0
    }

    fn failed(response: &ProduceResponse) -> bool {
        response
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .any(|p| p.error_code != 0)
    }

    async fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: ProduceRequest,
    ) -> ProduceResponse {
        let version = header.request_api_version;
        if request.transactional_id.is_none() && has_transactional_batch(&request) {
            return refuse_all(
                &request,
                ResponseError::TransactionalIdAuthorizationFailed.code(),
                "transactional records need the producer's transactional id",
                version,
            );
        }
        let image = ctx.cache.image();
        let acks = request.acks;
        let args = AppendArgs {
            acks,
            now: now_ms(),
            transactional_id: request.transactional_id.as_ref().map(|id| &***id),
        };
        let mut topics = Vec::with_capacity(request.topic_data.len());
        for topic in request.topic_data {
            let topic_ref = if version >= 13 {
                TopicRef::Id(topic.topic_id)
            } else {
                TopicRef::Name(&topic.name.0)
            };
            // As Kafka, an internal topic named in the request is refused
            // before it is looked up (a broker whose cache has not seen it
            // yet answers the same).
            let resolved = if version < 13 && is_internal(&topic.name) {
                Err(ResponseError::InvalidTopicException.code())
            } else {
                resolve_topic(&image, topic_ref).and_then(|(id, name)| {
                    if is_internal(name) {
                        Err(ResponseError::InvalidTopicException.code())
                    } else {
                        Ok(id)
                    }
                })
            };
            let mut outcomes = Vec::with_capacity(topic.partition_data.len());
            for data in topic.partition_data {
                outcomes.push(Outcome {
                    index: data.index,
                    result: append(ctx, &image, resolved, data.index, data.records, &args).await,
                });
            }
            topics.push((topic.name, topic.topic_id, outcomes));
        }

        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(request.timeout_ms.max(0) as u64);
        let mut responses = Vec::with_capacity(topics.len());
        for (name, topic_id, outcomes) in topics {
            let mut partitions = Vec::with_capacity(outcomes.len());
            for outcome in outcomes {
                let response = match outcome.result {
                    Ok(Appended {
                        partition,
                        info,
                        leader_epoch,
                    }) => {
                        let code = if acks == -1 {
                            partition
                                .wait_for_replication(info.last_offset + 1, leader_epoch, deadline)
                                .await
                        } else {
                            0
                        };
                        partition_response(outcome.index, code, None)
                            .with_base_offset(if code == 0 { info.first_offset } else { -1 })
                            .with_log_append_time_ms(info.log_append_time)
                            .with_log_start_offset(info.log_start_offset)
                    }
                    Err((code, message)) => {
                        let mut response = partition_response(outcome.index, code, message);
                        if code == ResponseError::NotLeaderOrFollower.code() && version >= 10 {
                            response.current_leader = current_leader(
                                &image,
                                topic_id_of(&image, &name, topic_id, version),
                                outcome.index,
                            );
                        }
                        response
                    }
                };
                partitions.push(response);
            }
            responses.push(
                TopicProduceResponse::default()
                    .with_name(name)
                    .with_topic_id(topic_id)
                    .with_partition_responses(partitions),
            );
        }
        fit_to_version(
            ProduceResponse::default().with_responses(responses),
            version,
        )
    }
}

/// Whether any partition's batch has the transactional bit (Kafka's
/// `RequestUtils.hasTransactionalRecords`); a header that does not parse
/// is left to the log's validation.
fn has_transactional_batch(request: &ProduceRequest) -> bool {
    request
        .topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .filter_map(|p| p.records.as_deref())
        .any(|r| BatchHeader::parse(r).is_ok_and(|h| h.is_transactional()))
}

/// Every partition of `request` answered `code`, nothing appended.
fn refuse_all(request: &ProduceRequest, code: i16, message: &str, version: i16) -> ProduceResponse {
    let responses = request
        .topic_data
        .iter()
        .map(|topic| {
            TopicProduceResponse::default()
                .with_name(topic.name.clone())
                .with_topic_id(topic.topic_id)
                .with_partition_responses(
                    topic
                        .partition_data
                        .iter()
                        .map(|p| partition_response(p.index, code, Some(message.to_string())))
                        .collect(),
                )
        })
        .collect();
    fit_to_version(
        ProduceResponse::default().with_responses(responses),
        version,
    )
}

/// Clears what `version` cannot carry (kafka-protocol refuses to encode a
/// field outside its versions): log start offset before v5, record errors
/// and messages before v8, the current leader before v10.
fn fit_to_version(mut response: ProduceResponse, version: i16) -> ProduceResponse {
    for p in response
        .responses
        .iter_mut()
        .flat_map(|t| &mut t.partition_responses)
    {
        if version < 5 {
            p.log_start_offset = -1;
        }
        if version < 8 {
            p.record_errors.clear();
            p.error_message = None;
        }
        if version < 10 {
            p.current_leader = LeaderIdAndEpoch::default();
        }
    }
    if version < 10 {
        response.node_endpoints.clear();
    }
    response
}

/// What every partition of one request is appended with.
struct AppendArgs<'a> {
    acks: i16,
    now: i64,
    transactional_id: Option<&'a str>,
}

/// Appends one partition's batch; the error is a code and message.
async fn append(
    ctx: &BrokerContext,
    image: &MetadataImage,
    topic: Result<Uuid, i16>,
    index: i32,
    records: Option<Bytes>,
    args: &AppendArgs<'_>,
) -> Result<Appended, Refused> {
    let (acks, now) = (args.acks, args.now);
    if !matches!(acks, -1..=1) {
        return Err((
            ResponseError::InvalidRequiredAcks.code(),
            Some(format!("acks must be -1, 0 or 1, not {acks}")),
        ));
    }
    let partition = topic
        .and_then(|id| hosted_partition(ctx, image, id, index))
        .map_err(|code| {
            let message = (code == ResponseError::InvalidTopicException.code())
                .then(|| "clients may not write to an internal topic".to_string());
            (code, message)
        })?;
    let records = records.ok_or((
        ResponseError::InvalidRecord.code(),
        Some("no records".to_string()),
    ))?;
    let header = BatchHeader::parse(&records).ok();
    let verification = match (header, args.transactional_id) {
        // A client's control batch is refused by the log (INVALID_RECORD).
        (Some(h), Some(id)) if h.is_transactional() && !h.is_control() && h.producer_id >= 0 => {
            Some(verify(ctx, &partition, &h, id).await?)
        }
        _ => None,
    };
    let compressed = header.is_some_and(|h| h.compression() != 0);
    let appended = if compressed {
        let _permit = DECOMPRESSING.acquire().await.map_err(|_| {
            (
                ResponseError::UnknownServerError.code(),
                Some("the broker is shutting down".to_string()),
            )
        })?;
        let p = Arc::clone(&partition);
        tokio::task::spawn_blocking(move || {
            p.append_as_leader_verified(records, acks, now, verification)
        })
        .await
        .map_err(|e| {
            (
                ResponseError::UnknownServerError.code(),
                Some(format!("the append failed: {e}")),
            )
        })?
    } else {
        partition.append_as_leader_verified(records, acks, now, verification)
    };
    match appended {
        Ok((info, leader_epoch)) => Ok(Appended {
            partition,
            info,
            leader_epoch,
        }),
        Err(e) => {
            tracing::debug!(partition = ?partition, error = %e, "produce refused");
            Err((e.code(), Some(e.to_string())))
        }
    }
}

/// KIP-890: the guard a transactional batch is appended under. A batch
/// that would open its producer's transaction on this partition is first
/// confirmed with the transaction's coordinator; one whose transaction is
/// open here needs no question, but the transaction must still be open
/// when it is appended (guard 0).
async fn verify(
    ctx: &BrokerContext,
    partition: &Partition,
    header: &BatchHeader,
    transactional_id: &str,
) -> Result<u64, Refused> {
    let Some(guard) = partition.log().start_txn_verification(header.producer_id) else {
        return Ok(0);
    };
    let write = TxnWrite {
        transactional_id,
        producer_id: header.producer_id,
        epoch: header.producer_epoch,
        topic: partition.topic(),
        partition: partition.index(),
    };
    match ctx.transactions.verify(write).await {
        Ok(()) => Ok(guard),
        Err(code) => Err((
            code,
            Some(format!(
                "the transaction coordinator of {transactional_id:?} did not confirm \
                 a transactional write of producer {} to this partition",
                header.producer_id
            )),
        )),
    }
}

fn partition_response(index: i32, code: i16, message: Option<String>) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(message.map(StrBytes::from_string))
}

fn topic_id_of(
    image: &MetadataImage,
    name: &kafka_protocol::messages::TopicName,
    topic_id: Uuid,
    version: i16,
) -> Uuid {
    if version >= 13 {
        topic_id
    } else {
        image.topics().topic_id(&name.0).unwrap_or_default()
    }
}

/// The leader a NOT_LEADER_OR_FOLLOWER answer points the client to (v10+).
fn current_leader(image: &MetadataImage, topic_id: Uuid, index: i32) -> LeaderIdAndEpoch {
    match image.topics().partition(topic_id, index) {
        Some(p) => LeaderIdAndEpoch::default()
            .with_leader_id(p.leader.into())
            .with_leader_epoch(p.leader_epoch),
        None => LeaderIdAndEpoch::default()
            .with_leader_id((-1).into())
            .with_leader_epoch(-1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn a_full_response_encodes_at_every_served_version() {
        for version in ProduceHandler::MIN_VERSION..=ProduceHandler::MAX_VERSION {
            let partition = partition_response(
                0,
                ResponseError::NotLeaderOrFollower.code(),
                Some("moved".into()),
            )
            .with_log_start_offset(5)
            .with_current_leader(
                LeaderIdAndEpoch::default()
                    .with_leader_id(2.into())
                    .with_leader_epoch(3),
            );
            let response =
                ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
                    .with_name(TopicName(StrBytes::from_static_str("t")))
                    .with_partition_responses(vec![partition])]);
            let response = fit_to_version(response, version);
            let mut buf = bytes::BytesMut::new();
            response
                .encode(&mut buf, version)
                .unwrap_or_else(|e| panic!("Produce v{version}: {e}"));
        }
    }
}
