//! The cleaner threads' choice of log: only compacted topics, the dirtiest
//! first, and a pass that shrinks it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kraft_metadata::{record, ConfigResourceType, MetadataDelta, MetadataImage};
use kraft_proto::metadata::{self as pb, metadata_record::Record as Meta, MetadataRecord};
use kraft_rpc::NoFaults;
use tokio::sync::watch;
use uuid::Uuid;

use super::cleaner::{Shared, Throttle};
use super::{PartitionLookup, ReplicaFetchers, ReplicaManager, ReplicaManagerConfig};
use crate::MetadataCache;

const NODE: i32 = 1;

fn topic(name: &str, id: Uuid, configs: &[(&str, &str)]) -> Vec<MetadataRecord> {
    let mut out = vec![record(Meta::Topic(pb::TopicRecord {
        name: name.into(),
        topic_id: Bytes::copy_from_slice(id.as_bytes()),
    }))];
    for (key, value) in configs {
        out.push(record(Meta::Config(pb::ConfigRecord {
            resource_type: ConfigResourceType::ConfigResourceTopic as i32,
            resource_name: name.into(),
            name: (*key).into(),
            value: Some((*value).into()),
        })));
    }
    out.push(record(Meta::Partition(pb::PartitionRecord {
        topic_id: Bytes::copy_from_slice(id.as_bytes()),
        partition_id: 0,
        replicas: vec![NODE],
        isr: vec![NODE],
        leader: NODE,
        leader_epoch: 0,
        partition_epoch: 0,
        removing_replicas: vec![],
        adding_replicas: vec![],
    })));
    out
}

fn keyed(key: &str, value: &str) -> Bytes {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1_000,
        key: Some(Bytes::copy_from_slice(key.as_bytes())),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode");
    buf.freeze()
}

fn shared() -> Shared {
    Shared {
        busy: Mutex::new(HashSet::new()),
        uncleanable: Mutex::new(HashSet::new()),
        throttle: Throttle::new(f64::INFINITY),
        map_bytes: 1 << 20,
    }
}

fn manager(dir: &std::path::Path) -> ReplicaManager {
    let (_tx, rx) = watch::channel(Arc::new(MetadataImage::empty()));
    let fetchers = ReplicaFetchers::new(
        NODE,
        "PLAINTEXT".into(),
        MetadataCache::new(rx),
        Arc::new(NoFaults),
    );
    ReplicaManager::open(
        ReplicaManagerConfig::new(NODE, vec![dir.to_path_buf()]),
        fetchers,
    )
}

fn publish(replicas: &ReplicaManager, records: &[MetadataRecord]) {
    let mut delta = MetadataDelta::new(MetadataImage::empty());
    for r in records {
        delta.replay(r).expect("replay");
    }
    let image = delta.clone().apply();
    replicas.apply(&delta, &image);
}

fn hosted(replicas: &ReplicaManager, id: Uuid) -> Arc<super::Partition> {
    match replicas.lookup(id, 0) {
        PartitionLookup::Hosted(p) => p,
        _ => panic!("hosted"),
    }
}

/// 60 records over 3 keys, committed.
fn fill(partition: &super::Partition) {
    for i in 0..60 {
        partition
            .log()
            .append_as_leader(keyed(&format!("k{}", i % 3), &format!("v{i}")), 0, 1_000)
            .expect("append");
    }
    partition
        .log()
        .set_high_watermark(partition.log().log_end_offset());
}

#[test]
fn a_log_past_max_compaction_lag_goes_first() {
    let dir = tempfile::tempdir().unwrap();
    let replicas = manager(dir.path());
    let (overdue, dirty) = (Uuid::from_u128(3), Uuid::from_u128(4));
    let mut records = topic(
        "dirty",
        dirty,
        &[("cleanup.policy", "compact"), ("segment.bytes", "400")],
    );
    records.extend(topic(
        "overdue",
        overdue,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "400"),
            ("max.compaction.lag.ms", "1000"),
        ],
    ));
    publish(&replicas, &records);
    for id in [dirty, overdue] {
        fill(&hosted(&replicas, id));
    }
    let cleaned = |id| hosted(&replicas, id).log().cleaner_checkpoint() > 0;
    let shared = shared();
    assert!(replicas.clean_dirtiest(&shared));
    assert!(cleaned(overdue) && !cleaned(dirty), "the overdue log first");
    assert!(replicas.clean_dirtiest(&shared));
    assert!(cleaned(dirty));
}

#[test]
fn the_cleaner_compacts_only_compacted_topics() {
    let dir = tempfile::tempdir().unwrap();
    let replicas = manager(dir.path());
    let (compacted, plain) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let mut records = topic(
        "compacted",
        compacted,
        &[("cleanup.policy", "compact"), ("segment.bytes", "400")],
    );
    records.extend(topic("plain", plain, &[("segment.bytes", "400")]));
    publish(&replicas, &records);
    for id in [compacted, plain] {
        fill(&hosted(&replicas, id));
    }
    let size = |id| hosted(&replicas, id).log().size_in_bytes();
    let before = (size(compacted), size(plain));
    let shared = shared();
    assert!(replicas.clean_dirtiest(&shared), "the compacted log is due");
    assert!(!replicas.clean_dirtiest(&shared), "nothing else is");
    assert!(size(compacted) < before.0);
    assert_eq!(size(plain), before.1);
    assert!(shared.busy.lock().unwrap().is_empty());
}
