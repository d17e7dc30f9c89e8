//! WriteTxnMarkers (key 27, v1): a transaction coordinator asks the
//! leaders of a transaction's partitions to end it. v0 is not served:
//! Kafka 4.0 removed it (KIP-896), and kafka-protocol decodes v1 only.
//!
//! In: per marker a producer id and epoch, the result (true: COMMIT, false:
//! ABORT), the coordinator epoch and the topics and partitions the
//! transaction wrote to. Each partition this broker leads gets a control
//! batch appended (`Partition::append_marker`, which checks leadership,
//! `min.insync.replicas` and the producer and coordinator epochs); all are
//! appended first, then the answer waits, as an acks=all produce does,
//! until each partition's high watermark is past its marker (the
//! coordinator completes the transaction only then), or the broker's write
//! timeout (`request.timeout.ms`).
//!
//! Out: per marker, topic and partition an error code: 0;
//! UNKNOWN_TOPIC_OR_PARTITION for a topic or partition that does not
//! exist; NOT_LEADER_OR_FOLLOWER where this broker does not lead it;
//! INVALID_PRODUCER_EPOCH for a producer epoch older than the partition
//! knows; TRANSACTION_COORDINATOR_FENCED for an older coordinator epoch;
//! NOT_ENOUGH_REPLICAS(_AFTER_APPEND), KAFKA_STORAGE_ERROR and
//! REQUEST_TIMED_OUT as for produce. Markers on internal topics are written
//! like any other; once one on `__consumer_offsets` is replicated, the
//! group coordinator commits or drops the offsets the transaction wrote
//! there (TxnOffsetCommit).

use std::sync::Arc;

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use kraft_log::TxnMarker;
use kraft_metadata::CONSUMER_OFFSETS;

use super::support::partitions::{hosted_partition, resolve_topic, TopicRef};
use super::Handler;
use crate::context::BrokerContext;
use crate::group::ReplicatedMarker;
use crate::handlers::support::shape::{field, Field, Kind, Shape};
use crate::replica::{now_ms, Partition};

const TOPIC: &[Field] = &[
    field(0, i16::MAX, Kind::String),
    field(0, i16::MAX, Kind::Int32Array),
];
const MARKER: &[Field] = &[
    field(0, i16::MAX, Kind::Int64),
    field(0, i16::MAX, Kind::Int16),
    field(0, i16::MAX, Kind::Bool),
    field(0, i16::MAX, Kind::StructArray(TOPIC)),
    field(0, i16::MAX, Kind::Int32),
];

/// Serves WriteTxnMarkers.
pub struct WriteTxnMarkersHandler;

/// One partition's marker: appended (to wait on) or refused with a code.
enum Written {
    Appended {
        partition: Arc<Partition>,
        next_offset: i64,
        leader_epoch: i32,
    },
    Refused(i16),
}

/// One topic of a marker: its name and each partition's [`Written`].
type WrittenTopic = (TopicName, Vec<(i32, Written)>);

impl Handler for WriteTxnMarkersHandler {
    const API_KEY: ApiKey = ApiKey::WriteTxnMarkers;
    const MIN_VERSION: i16 = 1;
    const MAX_VERSION: i16 = 1;
    const REQUEST_SHAPE: Shape = Shape {
        flexible_from: 1,
        fields: &[field(0, i16::MAX, Kind::StructArray(MARKER))],
    };
    type Request = WriteTxnMarkersRequest;
    type Response = WriteTxnMarkersResponse;

    fn failed(response: &WriteTxnMarkersResponse) -> bool {
        response
            .markers
            .iter()
            .flat_map(|m| &m.topics)
            .flat_map(|t| &t.partitions)
            .any(|p| p.error_code != 0)
    }

    async fn handle(
        ctx: &BrokerContext,
        _header: &RequestHeader,
        request: WriteTxnMarkersRequest,
    ) -> WriteTxnMarkersResponse {
        let image = ctx.cache.image();
        let now = now_ms();
        // Every marker is appended before any answer waits.
        let mut written: Vec<(i64, bool, Vec<WrittenTopic>)> =
            Vec::with_capacity(request.markers.len());
        for m in &request.markers {
            let marker = if m.transaction_result {
                TxnMarker::Commit
            } else {
                TxnMarker::Abort
            };
            let mut topics = Vec::with_capacity(m.topics.len());
            for topic in &m.topics {
                let resolved =
                    resolve_topic(&image, TopicRef::Name(&topic.name.0)).map(|(id, _)| id);
                let partitions = topic
                    .partition_indexes
                    .iter()
                    .map(|&index| {
                        let partition =
                            resolved.and_then(|id| hosted_partition(ctx, &image, id, index));
                        let appended = partition.and_then(|p| {
                            p.append_marker(
                                m.producer_id.0,
                                m.producer_epoch,
                                m.coordinator_epoch,
                                marker,
                                now,
                            )
                            .map(|(info, leader_epoch)| Written::Appended {
                                partition: p,
                                next_offset: info.last_offset + 1,
                                leader_epoch,
                            })
                            .map_err(|e| {
                                tracing::debug!(error = %e, "transaction marker refused");
                                e.code()
                            })
                        });
                        (index, appended.unwrap_or_else(Written::Refused))
                    })
                    .collect();
                topics.push((topic.name.clone(), partitions));
            }
            written.push((m.producer_id.0, m.transaction_result, topics));
        }

        let deadline = tokio::time::Instant::now() + ctx.config.write_timeout;
        let mut markers = Vec::with_capacity(written.len());
        for (producer_id, commit, topics) in written {
            let mut results = Vec::with_capacity(topics.len());
            for (name, partitions) in topics {
                let mut out = Vec::with_capacity(partitions.len());
                for (index, w) in partitions {
                    let code = match w {
                        Written::Appended {
                            partition,
                            next_offset,
                            leader_epoch,
                        } => {
                            let code = partition
                                .wait_for_replication(next_offset, leader_epoch, deadline)
                                .await;
                            if code == 0 && partition.topic() == CONSUMER_OFFSETS {
                                ctx.groups.complete_txn(
                                    index,
                                    ReplicatedMarker {
                                        producer_id,
                                        commit,
                                        offset: next_offset - 1,
                                        leader_epoch,
                                    },
                                );
                            }
                            code
                        }
                        Written::Refused(code) => code,
                    };
                    out.push(
                        WritableTxnMarkerPartitionResult::default()
                            .with_partition_index(index)
                            .with_error_code(code),
                    );
                }
                results.push(
                    WritableTxnMarkerTopicResult::default()
                        .with_name(name)
                        .with_partitions(out),
                );
            }
            markers.push(
                WritableTxnMarkerResult::default()
                    .with_producer_id(producer_id.into())
                    .with_topics(results),
            );
        }
        WriteTxnMarkersResponse::default().with_markers(markers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::error::ResponseError;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn a_full_response_encodes_at_every_served_version() {
        for version in WriteTxnMarkersHandler::MIN_VERSION..=WriteTxnMarkersHandler::MAX_VERSION {
            let response = WriteTxnMarkersResponse::default().with_markers(vec![
                WritableTxnMarkerResult::default()
                    .with_producer_id(7.into())
                    .with_topics(vec![WritableTxnMarkerTopicResult::default()
                        .with_name(TopicName(StrBytes::from_static_str("t")))
                        .with_partitions(vec![WritableTxnMarkerPartitionResult::default()
                            .with_partition_index(0)
                            .with_error_code(ResponseError::InvalidProducerEpoch.code())])]),
            ]);
            let mut buf = bytes::BytesMut::new();
            response
                .encode(&mut buf, version)
                .unwrap_or_else(|e| panic!("WriteTxnMarkers v{version}: {e}"));
        }
    }
}
