//! Hostile record batches sent as raw Kafka frames to an in-process
//! cluster (kraft's minimal client): a header-only batch that claims
//! 2^31-1 records, a zstd bomb, a produce into `__consumer_offsets`, and a
//! batch whose maxTimestamp lies. Each is refused with Kafka's error code,
//! and afterwards the node still serves and the data acknowledged before it
//! reads back.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse, GroupId,
    ListOffsetsRequest, ListOffsetsResponse, OffsetCommitRequest, OffsetCommitResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kraft_kafka_client::KafkaClient;
use kraft_testkit::TestCluster;

mod common;

use common::groups::{committed, coordinator};
use common::raw::{batch, name, produce};

const MESSAGE_TOO_LARGE: i16 = 10;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const INVALID_RECORD: i16 = 87;
/// The timestamps of `batch`'s records start here (2023-11-14).
const T0: i64 = 1_700_000_000_000;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A 61-byte v2 batch header with no records after it, claiming `count`
/// records, timestamps `timestamp`, `attributes`; the CRC matches.
fn header_only(count: i32, timestamp: i64, attributes: i16) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_i64(0); // baseOffset
    b.put_i32(49); // batchLength: the header after these 12 bytes
    b.put_i32(-1); // partitionLeaderEpoch
    b.put_i8(2); // magic
    b.put_u32(0); // crc, below
    b.put_i16(attributes);
    b.put_i32(count - 1); // lastOffsetDelta
    b.put_i64(timestamp); // baseTimestamp
    b.put_i64(timestamp); // maxTimestamp
    b.put_i64(-1); // producerId
    b.put_i16(-1); // producerEpoch
    b.put_i32(-1); // baseSequence
    b.put_i32(count); // recordsCount
    b
}

/// Sets batchLength from the buffer and recomputes the CRC.
fn seal(mut b: BytesMut) -> Bytes {
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = kraft_log::batch::compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

fn varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// A zstd-compressed batch of 16 records, about 1 MiB on the wire, whose
/// payload expands to ~32 GiB: one raw zstd block with the start of a
/// record whose value claims ~2 GB, then 262,000 RLE blocks of 128 KiB of
/// zeros (4 bytes each).
fn zstd_bomb() -> Bytes {
    const VALUE: i64 = 2_000_000_000;
    let mut prefix = Vec::new();
    let mut value_len = Vec::new();
    varint(&mut value_len, VALUE);
    // attributes, timestampDelta, offsetDelta, keyLength -1, valueLength,
    // value, headers count.
    let body = 4 + value_len.len() as i64 + VALUE + 1;
    varint(&mut prefix, body);
    prefix.extend_from_slice(&[0, 0, 0, 1]);
    prefix.extend_from_slice(&value_len);

    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd]; // zstd magic
    frame.push(0x00); // descriptor: no content size, no checksum
    frame.push(7 << 3); // window descriptor: 2^17 bytes
    let raw = (prefix.len() as u32) << 3; // raw block, not last
    frame.extend_from_slice(&raw.to_le_bytes()[..3]);
    frame.extend_from_slice(&prefix);
    const BLOCKS: u32 = 262_000;
    for i in 0..BLOCKS {
        let last = u32::from(i + 1 == BLOCKS);
        let rle = (128 * 1024) << 3 | 1 << 1 | last;
        frame.extend_from_slice(&rle.to_le_bytes()[..3]);
        frame.push(0);
    }
    let mut b = header_only(16, T0, 4);
    b.extend_from_slice(&frame);
    seal(b)
}

/// One zstd-compressed batch of honest records.
fn zstd_batch(values: &[&str]) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32,
            timestamp: T0 + i as i64,
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
            compression: Compression::Zstd,
        },
    )
    .expect("encode");
    buf.freeze()
}

async fn start() -> (TestCluster, KafkaClient) {
    let cluster = TestCluster::builder(1)
        .combined()
        .prop("offsets.topic.num.partitions", 1)
        .prop("offsets.topic.replication.factor", 1)
        .start()
        .await
        .expect("cluster");
    let client = KafkaClient::connect(cluster.broker_addr(1))
        .await
        .expect("connect");
    (cluster, client)
}

async fn create_topic(client: &mut KafkaClient, topic: &str, configs: &[(&str, &str)]) {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(s(k))
                            .with_value(Some(s(v)))
                    })
                    .collect(),
            )]);
    let response: CreateTopicsResponse = client.send(5, &request).await.expect("create topics");
    assert_eq!(response.topics[0].error_code, 0, "{topic} created");
}

/// Every `(offset, value)` of `topic`-0 from offset 0.
async fn read_back(client: &mut KafkaClient, topic: &str) -> Vec<(i64, String)> {
    let request = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_current_leader_epoch(-1)
                .with_partition_max_bytes(1 << 20)])]);
    let response: FetchResponse = client.send(11, &request).await.expect("fetch");
    let p = &response.responses[0].partitions[0];
    assert_eq!(p.error_code, 0, "fetch {topic}");
    let mut records = p.records.clone().unwrap_or_default();
    RecordBatchDecoder::decode_all(&mut records)
        .expect("stored batches decode")
        .into_iter()
        .flat_map(|set| set.records)
        .map(|r| {
            let v = r.value.map(|v| String::from_utf8_lossy(&v).into_owned());
            (r.offset, v.unwrap_or_default())
        })
        .collect()
}

/// ListOffsets by `timestamp` on `topic`-0: (error code, offset).
async fn offset_for_time(client: &mut KafkaClient, topic: &str, timestamp: i64) -> (i16, i64) {
    let request = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_current_leader_epoch(-1)
                .with_timestamp(timestamp)])]);
    let response: ListOffsetsResponse = client.send(7, &request).await.expect("list offsets");
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.offset)
}

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn ab() -> Vec<(i64, String)> {
    vec![(0, "a".to_string()), (1, "b".to_string())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_claiming_2_pow_31_records_is_refused_and_list_offsets_still_answers() {
    let (cluster, mut client) = start().await;
    create_topic(&mut client, "huge-count", &[]).await;
    assert_eq!(
        produce(&mut client, "huge-count", 0, batch(&["a", "b"])).await,
        (0, 0)
    );

    // 61 bytes, no record, recordsCount 2^31-1 = lastOffsetDelta + 1.
    let hostile = seal(header_only(i32::MAX, T0 + 1_000_000, 0));
    assert_eq!(hostile.len(), 61);
    let (code, _) = produce(&mut client, "huge-count", 0, hostile).await;
    // A lookup by time past the good batch decodes whatever follows it
    // (asked before the assertion: had the batch gone in, this is where the
    // process would die).
    let past_good = offset_for_time(&mut client, "huge-count", T0 + 500_000).await;
    assert_eq!(
        code, INVALID_RECORD,
        "the 61-byte batch claiming 2^31-1 records"
    );
    assert_eq!(past_good, (0, -1));
    assert_eq!(offset_for_time(&mut client, "huge-count", 0).await, (0, 0));
    assert_eq!(read_back(&mut client, "huge-count").await, ab());
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zstd_bomb_is_refused_within_bounded_memory() {
    let (cluster, mut client) = start().await;
    create_topic(&mut client, "bomb", &[]).await;
    assert_eq!(
        produce(&mut client, "bomb", 0, batch(&["a", "b"])).await,
        (0, 0)
    );
    // An honest compressed batch still goes in.
    assert_eq!(
        produce(&mut client, "bomb", 0, zstd_batch(&["c", "d"])).await,
        (0, 2)
    );

    let bomb = zstd_bomb();
    assert!(bomb.len() < 1_048_588, "{} bytes", bomb.len());
    let before = vm_rss_kib();
    let (code, _) = produce(&mut client, "bomb", 0, bomb).await;
    let grown_mib = vm_rss_kib().saturating_sub(before) / 1024;
    assert_eq!(
        code, MESSAGE_TOO_LARGE,
        "a 1 MiB batch expanding to ~32 GiB"
    );
    // The cap is 64 x max.message.bytes of decompressed bytes, streamed
    // (never held): the process grows by far less than that.
    assert!(grown_mib < 256, "RSS grew by {grown_mib} MiB");
    eprintln!("zstd bomb refused; RSS grew by {grown_mib} MiB");

    assert_eq!(offset_for_time(&mut client, "bomb", T0 + 1).await, (0, 1));
    let mut expected = ab();
    expected.extend([(2, "c".to_string()), (3, "d".to_string())]);
    assert_eq!(read_back(&mut client, "bomb").await, expected);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_may_not_produce_to_consumer_offsets() {
    let (mut cluster, mut client) = start().await;
    create_topic(&mut client, "t", &[]).await;
    let bootstrap = cluster.bootstrap_servers();
    let group = "g";
    let mut coord = coordinator(&bootstrap, group).await;
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(s(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(name("t"))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(42)])]);
    let response: OffsetCommitResponse = coord.send(7, &request).await.expect("commit");
    assert_eq!(response.topics[0].partitions[0].error_code, 0);

    // What would crash every future coordinator of this partition if
    // stored: a header claiming 2^31-1 records.
    let hostile = seal(header_only(i32::MAX, T0, 0));
    let (code, _) = produce(&mut client, "__consumer_offsets", 0, hostile).await;
    assert_eq!(
        code, INVALID_TOPIC_EXCEPTION,
        "produce to __consumer_offsets"
    );
    let (code, _) = produce(&mut client, "__consumer_offsets", 0, batch(&["x"])).await;
    assert_eq!(code, INVALID_TOPIC_EXCEPTION, "even an honest batch");

    // The coordinator reloads the partition from its log after a restart.
    drop(coord);
    drop(client);
    cluster.restart(1).await.expect("restart");
    let mut coord = coordinator(&bootstrap, group).await;
    let offsets = committed(&mut coord, group).await.expect("committed");
    assert_eq!(offsets.get(&("t".to_string(), 0)), Some(&42));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_max_timestamp_lies_is_refused() {
    let (cluster, mut client) = start().await;
    create_topic(&mut client, "liar", &[]).await;
    assert_eq!(
        produce(&mut client, "liar", 0, batch(&["a", "b"])).await,
        (0, 0)
    );
    // Records at T0 and T0+1, header claims T0+1000.
    let mut lie = BytesMut::from(&batch(&["c", "d"])[..]);
    lie[35..43].copy_from_slice(&(T0 + 1000).to_be_bytes());
    let (code, _) = produce(&mut client, "liar", 0, seal(lie)).await;
    assert_eq!(code, INVALID_RECORD, "maxTimestamp above every record");
    // And one below the records' largest timestamp.
    let mut lie = BytesMut::from(&batch(&["c", "d"])[..]);
    lie[35..43].copy_from_slice(&T0.to_be_bytes());
    let (code, _) = produce(&mut client, "liar", 0, seal(lie)).await;
    assert_eq!(code, INVALID_RECORD, "maxTimestamp below a record");

    // A LogAppendTime topic rewrites maxTimestamp: the lie does no harm.
    create_topic(
        &mut client,
        "append-time",
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await;
    let mut lie = BytesMut::from(&batch(&["c", "d"])[..]);
    lie[35..43].copy_from_slice(&(T0 + 1000).to_be_bytes());
    assert_eq!(
        produce(&mut client, "append-time", 0, seal(lie)).await,
        (0, 0)
    );

    assert_eq!(offset_for_time(&mut client, "liar", T0 + 1).await, (0, 1));
    assert_eq!(read_back(&mut client, "liar").await, ab());
    cluster.shutdown().await;
}
