//! Fetch (key 1, v4–v18): reads record batches back from partition logs,
//! long-polling until there is enough to send.
//!
//! In: per topic (by name; by id from v13) and partition, a fetch offset, the
//! client's `current_leader_epoch` (v9+) and a per-partition byte limit;
//! `max_bytes` for the whole response, `min_bytes` and `max_wait_ms`.
//!
//! Out: per partition the batches from the fetch offset as `Bytes` read
//! straight from the log (a consumer reads below the high watermark, or at
//! `isolation_level` 1, read_committed, below the last stable offset; a
//! follower — `replica_id` set — to the log end), with the high watermark,
//! last stable offset (for either isolation level, as Kafka) and log start
//! offset, and for read_committed the aborted transactions that overlap
//! the batches returned (from the segments' `.txnindex`; the consumer
//! drops their records itself, and skips control batches); or an error code —
//! OFFSET_OUT_OF_RANGE, NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH,
//! UNKNOWN_TOPIC_OR_PARTITION / UNKNOWN_TOPIC_ID. The first partition with
//! data may exceed the byte limits by one batch (KIP-74), so a batch larger
//! than the limits never blocks a consumer.
//!
//! Limits: `max_bytes` is capped by `fetch.max.bytes` (a consumer) or
//! `replica.fetch.response.max.bytes` (a follower), and 0 or below means
//! the cap, never "unlimited"; each partition's limit comes out of what is
//! left. A partition listed more than once is fetched once, as in Kafka
//! (see [`resolve`]), so the bytes read never exceed the cap plus one batch
//! however the request is shaped. A consumer's records are taken from the
//! listener's fetch memory budget (`queued.max.request.bytes`) before they
//! are read and held until the answer is written, so answers clients do
//! not read cannot add up past it.
//!
//! Long poll: when the read yields fewer than `min_bytes` and no error, the
//! handler waits on the partitions' high-watermark watches (a follower: the
//! log-end watches) and reads again, until `min_bytes` are there or
//! `max_wait_ms` has passed. The last stable offset moves only when the
//! high watermark does (a marker counts once the high watermark passes
//! it), so the same watches wake read_committed consumers.
//!
//! Followers are who they say they are: a fetch with `replica_id` set is
//! served as a follower's only with the broker epoch of that broker's
//! current registration (v15+, see [`check_follower`]); otherwise every
//! partition is answered STALE_BROKER_EPOCH and nothing moves.
//!
//! A follower's fetch also tells the leader how far the follower has got
//! (its fetch offset), which moves the high watermark; if the follower's
//! last fetched epoch shows its log diverging from the leader's, the answer
//! is `diverging_epoch` instead of records (see
//! [`Partition::read_for_follower`]).
//!
//! Fetch sessions (KIP-227): this broker creates none. A client asking for
//! one gets session id 0, which tells it to keep sending full requests; an
//! incremental request for an unknown session is FETCH_SESSION_ID_NOT_FOUND.

use std::time::Duration;

use futures::future::select_all;
use futures::FutureExt;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, PartitionData,
};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, RequestHeader};
use kraft_log::ReadResult;
use kraft_metadata::MetadataImage;
use tokio::sync::watch;
use uuid::Uuid;

use super::Handler;
use crate::context::{hold_until_written, BrokerConfig, BrokerContext};
use crate::handlers::support::shape::{field, Field, Kind, Shape};
use crate::replica::now_ms;
use crate::replica::partition::FollowerRead;

mod aborted;
mod resolve;

use aborted::aborted_in;
use resolve::{resolve, Wanted, WantedTopic};

const PARTITION: &[Field] = &[
    field(0, i16::MAX, Kind::Int32),
    field(9, i16::MAX, Kind::Int32),
    field(0, i16::MAX, Kind::Int64),
    field(12, i16::MAX, Kind::Int32),
    field(5, i16::MAX, Kind::Int64),
    field(0, i16::MAX, Kind::Int32),
    field(17, i16::MAX, Kind::Tagged(0, &Kind::Uuid)),
    field(18, i16::MAX, Kind::Tagged(1, &Kind::Int64)),
];
const TOPIC: &[Field] = &[
    field(0, 12, Kind::String),
    field(13, i16::MAX, Kind::Uuid),
    field(0, i16::MAX, Kind::StructArray(PARTITION)),
];
/// A follower's id and broker epoch (v15+, tagged).
const REPLICA_STATE: &[Field] = &[
    field(15, i16::MAX, Kind::Int32),
    field(15, i16::MAX, Kind::Int64),
];
const FORGOTTEN: &[Field] = &[
    field(7, 12, Kind::String),
    field(13, i16::MAX, Kind::Uuid),
    field(7, i16::MAX, Kind::Int32Array),
];

/// Serves Fetch.
pub struct FetchHandler;

/// Who is fetching.
#[derive(Clone, Copy, Debug)]
enum Reader {
    Consumer,
    /// A follower replica with this broker id.
    Follower(i32),
}

impl Handler for FetchHandler {
    const API_KEY: ApiKey = ApiKey::Fetch;
    const MIN_VERSION: i16 = 4;
    const MAX_VERSION: i16 = 18;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 12,
        fields: &[
            field(0, 14, Kind::Int32),
            field(0, i16::MAX, Kind::Int32),
            field(0, i16::MAX, Kind::Int32),
            field(3, i16::MAX, Kind::Int32),
            field(4, i16::MAX, Kind::Int8),
            field(7, i16::MAX, Kind::Int32),
            field(7, i16::MAX, Kind::Int32),
            field(0, i16::MAX, Kind::StructArray(TOPIC)),
            field(7, i16::MAX, Kind::StructArray(FORGOTTEN)),
            field(11, i16::MAX, Kind::String),
            field(12, i16::MAX, Kind::Tagged(0, &Kind::String)),
            field(15, i16::MAX, Kind::Tagged(1, &Kind::Struct(REPLICA_STATE))),
        ],
    };
    type Request = FetchRequest;
    type Response = FetchResponse;

    async fn handle(
        ctx: &BrokerContext,
        header: &RequestHeader,
        request: FetchRequest,
    ) -> FetchResponse {
        let version = header.request_api_version;
        if version >= 7 {
            if request.session_id != 0 {
                return session_error(
                    ResponseError::FetchSessionIdNotFound.code(),
                    request.session_id,
                );
            }
            if request.session_epoch > 0 {
                return session_error(ResponseError::InvalidFetchSessionEpoch.code(), 0);
            }
        }
        let image = ctx.cache.image();
        let replica_id = if version >= 15 {
            request.replica_state.replica_id.0
        } else {
            request.replica_id.0
        };
        let topics = resolve(ctx, &image, version, request.topics);
        let reader = if replica_id >= 0 {
            let epoch = if version >= 15 {
                request.replica_state.replica_epoch
            } else {
                -1
            };
            if let Err(code) = check_follower(&image, replica_id, epoch) {
                tracing::debug!(replica_id, epoch, code, "follower fetch refused");
                return refuse(&topics, code, &image, version);
            }
            Reader::Follower(replica_id)
        } else {
            Reader::Consumer
        };
        let read_committed = request.isolation_level == 1;
        let min_bytes = request.min_bytes.max(0) as usize;
        let max_bytes = response_limit(&ctx.config, reader, request.max_bytes);
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);

        // Subscribe before the first read, so an append between the read and
        // the wait is not missed.
        let mut watches: Vec<watch::Receiver<i64>> = topics
            .iter()
            .flat_map(|t| &t.partitions)
            .filter_map(|w| w.target.as_ref().ok())
            .map(|p| match reader {
                Reader::Consumer => p.subscribe(),
                Reader::Follower(_) => p.subscribe_log_end(),
            })
            .collect();
        loop {
            for w in &mut watches {
                w.borrow_and_update();
            }
            // A consumer's records come from the listener's fetch budget
            // before they are read, and stay counted until the answer is
            // written (a client that does not read its answers holds them
            // for one idle time at most). A verified follower's fetch does
            // not wait on clients: its answers are bounded by
            // replica.fetch.response.max.bytes per follower connection.
            let mut permit = match reader {
                Reader::Consumer => Some(ctx.memory.fetches.acquire(max_bytes).await),
                Reader::Follower(_) => None,
            };
            let (responses, bytes, answer_now) =
                read_all(&topics, reader, max_bytes, read_committed, &image);
            let timed_out = tokio::time::Instant::now() >= deadline;
            if bytes >= min_bytes || answer_now || timed_out || watches.is_empty() {
                if let Some(mut permit) = permit.take() {
                    permit.shrink_to(bytes);
                    hold_until_written(permit);
                }
                return fit_to_version(FetchResponse::default().with_responses(responses), version);
            }
            drop(permit);
            let changed = select_all(watches.iter_mut().map(|w| w.changed().boxed()));
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

/// Whether a fetch that claims to come from follower `replica_id` does:
/// only a registered broker that quotes its current broker epoch (Fetch
/// v15+'s `ReplicaState`) is one. Anything else would let any client move
/// the high watermark and acknowledge acks=all writes no follower holds.
/// A fetch with no epoch (before v15, or -1) or another one is answered
/// STALE_BROKER_EPOCH, the error Kafka gives a broker that quotes a
/// registration which is not its current one; an id no broker has
/// registered is NOT_LEADER_OR_FOLLOWER, Kafka's answer to a follower it
/// does not know (`Partition.followerReplicaOrThrow`).
pub(crate) fn check_follower(
    image: &MetadataImage,
    replica_id: i32,
    epoch: i64,
) -> Result<(), i16> {
    match image.cluster().broker(replica_id) {
        None => Err(ResponseError::NotLeaderOrFollower.code()),
        Some(b) if epoch < 0 || b.epoch != epoch => Err(ResponseError::StaleBrokerEpoch.code()),
        Some(_) => Ok(()),
    }
}

/// Every requested partition answered with `code` and no records.
fn refuse(topics: &[WantedTopic], code: i16, image: &MetadataImage, version: i16) -> FetchResponse {
    let responses = topics
        .iter()
        .map(|topic| {
            FetchableTopicResponse::default()
                .with_topic(topic.name.clone())
                .with_topic_id(topic.topic_id)
                .with_partitions(
                    topic
                        .partitions
                        .iter()
                        .map(|w| error_data(w, code, topic.resolved_id, image))
                        .collect(),
                )
        })
        .collect();
    fit_to_version(FetchResponse::default().with_responses(responses), version)
}

/// The most record bytes one answer carries: the request's `max_bytes`,
/// capped by `fetch.max.bytes` (a consumer) or
/// `replica.fetch.response.max.bytes` (a follower), as Kafka does; a
/// `max_bytes` of 0 or below asks for no limit and gets the cap. The first
/// batch may exceed it (KIP-74), never more.
fn response_limit(config: &BrokerConfig, reader: Reader, max_bytes: i32) -> usize {
    let cap = match reader {
        Reader::Consumer => config.fetch_max_bytes,
        Reader::Follower(_) => config.replica_fetch_response_max_bytes,
    };
    usize::try_from(max_bytes)
        .ok()
        .filter(|b| *b > 0)
        .map_or(cap, |b| b.min(cap))
}

/// Clears what `version` cannot carry (kafka-protocol refuses to encode a
/// field outside its versions): the log start offset before v5, the
/// diverging epoch and current leader before v12.
fn fit_to_version(mut response: FetchResponse, version: i16) -> FetchResponse {
    for p in response
        .responses
        .iter_mut()
        .flat_map(|t| &mut t.partitions)
    {
        if version < 5 {
            p.log_start_offset = -1;
        }
        if version < 12 {
            p.diverging_epoch = EpochEndOffset::default();
            p.current_leader = LeaderIdAndEpoch::default();
        }
    }
    if version < 16 {
        response.node_endpoints.clear();
    }
    response
}

fn session_error(code: i16, session_id: i32) -> FetchResponse {
    FetchResponse::default()
        .with_error_code(code)
        .with_session_id(session_id)
}

/// Reads every partition once: the responses, the bytes read and whether
/// to answer at once (an error, or a follower that must truncate).
fn read_all(
    topics: &[WantedTopic],
    reader: Reader,
    max_bytes: usize,
    read_committed: bool,
    image: &MetadataImage,
) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let mut remaining = max_bytes;
    let mut total = 0;
    let mut answer_now = false;
    let mut responses = Vec::with_capacity(topics.len());
    for topic in topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for wanted in &topic.partitions {
            let limit = wanted.max_bytes.min(remaining);
            let first = total == 0;
            let read = wanted.target.as_ref().map_err(|c| *c).and_then(|p| {
                match reader {
                    Reader::Consumer => p
                        .read(
                            wanted.fetch_offset,
                            wanted.leader_epoch,
                            limit,
                            first,
                            read_committed,
                        )
                        .map(FollowerRead::Records),
                    Reader::Follower(id) => p.read_for_follower(
                        id,
                        wanted.fetch_offset,
                        wanted.last_fetched_epoch,
                        wanted.leader_epoch,
                        limit,
                        first,
                        now_ms(),
                    ),
                }
                .map_err(|e| e.code())
            });
            let data = match read {
                Ok(FollowerRead::Records(result)) => {
                    let len = result.records.len();
                    total += len;
                    remaining = remaining.saturating_sub(len);
                    let aborted = match (&wanted.target, reader) {
                        (Ok(p), Reader::Consumer) if read_committed => {
                            Some(aborted_in(p.log(), wanted.fetch_offset, &result))
                        }
                        _ => None,
                    };
                    partition_data(wanted.index, result, aborted)
                }
                Ok(FollowerRead::Diverging {
                    epoch,
                    end_offset,
                    high_watermark,
                    log_start_offset,
                }) => {
                    // Nothing to wait for: the follower must truncate first.
                    answer_now = true;
                    PartitionData::default()
                        .with_partition_index(wanted.index)
                        .with_high_watermark(high_watermark)
                        .with_last_stable_offset(high_watermark)
                        .with_log_start_offset(log_start_offset)
                        .with_diverging_epoch(
                            EpochEndOffset::default()
                                .with_epoch(epoch)
                                .with_end_offset(end_offset),
                        )
                        .with_aborted_transactions(None)
                        .with_records(Some(Default::default()))
                }
                Err(code) => {
                    answer_now = true;
                    error_data(wanted, code, topic.resolved_id, image)
                }
            };
            partitions.push(data);
        }
        responses.push(
            FetchableTopicResponse::default()
                .with_topic(topic.name.clone())
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    (responses, total, answer_now)
}

fn partition_data(
    index: i32,
    result: ReadResult,
    aborted: Option<Vec<AbortedTransaction>>,
) -> PartitionData {
    PartitionData::default()
        .with_partition_index(index)
        .with_error_code(0)
        .with_high_watermark(result.high_watermark)
        .with_last_stable_offset(result.last_stable_offset)
        .with_log_start_offset(result.log_start_offset)
        .with_aborted_transactions(aborted)
        .with_preferred_read_replica((-1).into())
        .with_records(Some(result.records))
}

fn error_data(
    wanted: &Wanted,
    code: i16,
    topic_id: Option<Uuid>,
    image: &MetadataImage,
) -> PartitionData {
    let (hw, log_start) = match (&wanted.target, ResponseError::try_from_code(code)) {
        (Ok(p), Some(ResponseError::OffsetOutOfRange)) => {
            (p.high_watermark(), p.log().log_start_offset())
        }
        _ => (-1, -1),
    };
    let mut data = PartitionData::default()
        .with_partition_index(wanted.index)
        .with_error_code(code)
        .with_high_watermark(hw)
        .with_last_stable_offset(hw)
        .with_log_start_offset(log_start)
        .with_preferred_read_replica((-1).into())
        .with_records(None);
    if matches!(
        ResponseError::try_from_code(code),
        Some(ResponseError::NotLeaderOrFollower | ResponseError::FencedLeaderEpoch)
    ) {
        if let Some(p) = topic_id.and_then(|id| image.topics().partition(id, wanted.index)) {
            data.current_leader = LeaderIdAndEpoch::default()
                .with_leader_id(p.leader.into())
                .with_leader_epoch(p.leader_epoch);
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn a_full_response_encodes_at_every_served_version() {
        for version in FetchHandler::MIN_VERSION..=FetchHandler::MAX_VERSION {
            let data = PartitionData::default()
                .with_high_watermark(10)
                .with_last_stable_offset(10)
                .with_log_start_offset(2)
                .with_diverging_epoch(EpochEndOffset::default().with_epoch(1).with_end_offset(4))
                .with_current_leader(
                    LeaderIdAndEpoch::default()
                        .with_leader_id(2.into())
                        .with_leader_epoch(3),
                )
                .with_aborted_transactions(Some(Vec::new()))
                .with_records(Some(bytes::Bytes::from_static(b"batch")));
            let topic = FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_static_str("t")))
                .with_topic_id(Uuid::new_v4())
                .with_partitions(vec![data]);
            let mut topic = topic;
            if version < 13 {
                topic.topic_id = Uuid::nil();
            } else {
                topic.topic = TopicName::default();
            }
            let response = fit_to_version(
                FetchResponse::default().with_responses(vec![topic]),
                version,
            );
            let mut buf = bytes::BytesMut::new();
            response
                .encode(&mut buf, version)
                .unwrap_or_else(|e| panic!("Fetch v{version}: {e}"));
        }
    }
}
