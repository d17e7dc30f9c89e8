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

#[test]
fn the_cleaner_compacts_only_compacted_topics() {
    let dir = tempfile::tempdir().unwrap();
    let (_tx, rx) = watch::channel(Arc::new(MetadataImage::empty()));
    let fetchers = ReplicaFetchers::new(
        NODE,
        "PLAINTEXT".into(),
        MetadataCache::new(rx),
        Arc::new(NoFaults),
    );
    let replicas = ReplicaManager::open(
        ReplicaManagerConfig::new(NODE, vec![dir.path().to_path_buf()]),
        fetchers,
    );
    let (compacted, plain) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let mut records = topic(
        "compacted",
        compacted,
        &[("cleanup.policy", "compact"), ("segment.bytes", "400")],
    );
    records.extend(topic("plain", plain, &[("segment.bytes", "400")]));
    let mut delta = MetadataDelta::new(MetadataImage::empty());
    for r in &records {
        delta.replay(r).expect("replay");
    }
    let image = delta.clone().apply();
    replicas.apply(&delta, &image);
    let log_of = |id| match replicas.lookup(id, 0) {
        PartitionLookup::Hosted(p) => p,
        _ => panic!("hosted"),
    };
    for id in [compacted, plain] {
        let p = log_of(id);
        for i in 0..60 {
            p.log()
                .append_as_leader(keyed(&format!("k{}", i % 3), &format!("v{i}")), 0, 1_000)
                .expect("append");
        }
        p.log().set_high_watermark(p.log().log_end_offset());
    }
    let before = (
        log_of(compacted).log().size_in_bytes(),
        log_of(plain).log().size_in_bytes(),
    );
    let shared = shared();
    assert!(replicas.clean_dirtiest(&shared), "the compacted log is due");
    assert!(!replicas.clean_dirtiest(&shared), "nothing else is");
    assert!(log_of(compacted).log().size_in_bytes() < before.0);
    assert_eq!(log_of(plain).log().size_in_bytes(), before.1);
    assert!(shared.busy.lock().unwrap().is_empty());
}
