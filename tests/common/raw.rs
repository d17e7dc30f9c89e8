//! Raw Kafka protocol helpers (kraft's minimal client, batches built by
//! kafka-protocol), for tests that need exact error codes.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kraft_kafka_client::KafkaClient;

pub fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// One v2 batch of `values`, uncompressed.
pub fn batch(values: &[&str]) -> Bytes {
    producer_batch(values, -1, -1, 0)
}

/// One v2 batch of `values` from producer `producer_id` at `epoch`, its
/// first record at sequence `base_sequence` (an idempotent producer's batch).
pub fn producer_batch(values: &[&str], producer_id: i64, epoch: i16, base_sequence: i32) -> Bytes {
    encode_batch(values, producer_id, epoch, base_sequence, false)
}

/// [`producer_batch`] with the transactional bit: part of the producer's
/// open transaction.
pub fn transactional_batch(
    values: &[&str],
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
) -> Bytes {
    encode_batch(values, producer_id, epoch, base_sequence, true)
}

fn encode_batch(
    values: &[&str],
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    transactional: bool,
) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // kafka-protocol starts a new batch where offset - sequence changes.
            sequence: base_sequence + i as i32,
            timestamp: 1_700_000_000_000 + i as i64,
            key: None,
            value: Some(Bytes::from(v.to_string())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode batch");
    buf.freeze()
}

/// Produces `records` to one partition with acks=all: (error code, base
/// offset).
pub async fn produce(
    client: &mut KafkaClient,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> (i16, i64) {
    try_produce(client, topic, partition, records)
        .await
        .expect("produce")
}

/// [`produce`], or why no answer came (e.g. the broker hung up).
pub async fn try_produce(
    client: &mut KafkaClient,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> Result<(i16, i64), kraft_kafka_client::KafkaClientError> {
    try_produce_as(client, None, topic, partition, records).await
}

/// [`produce`] from a transactional producer: the request names its
/// `transactional_id`, as Kafka requires for transactional batches.
pub async fn produce_in_transaction(
    client: &mut KafkaClient,
    transactional_id: &str,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> (i16, i64) {
    try_produce_as(client, Some(transactional_id), topic, partition, records)
        .await
        .expect("produce")
}

async fn try_produce_as(
    client: &mut KafkaClient,
    transactional_id: Option<&str>,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> Result<(i16, i64), kraft_kafka_client::KafkaClientError> {
    let request =
        ProduceRequest::default()
            .with_transactional_id(transactional_id.map(|t| {
                kafka_protocol::messages::TransactionalId(StrBytes::from_string(t.into()))
            }))
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(records))])]);
    let response: ProduceResponse = client.send(9, &request).await?;
    let p = &response.responses[0].partition_responses[0];
    if p.error_code != 0 {
        eprintln!(
            "produce to {topic}-{partition}: error {} ({:?})",
            p.error_code, p.error_message
        );
    }
    Ok((p.error_code, p.base_offset))
}
