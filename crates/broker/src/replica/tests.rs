//! The replica manager's handling of failed storage: a storage error takes
//! every partition of its log dir out of service and into the heartbeat's
//! report, new partitions avoid the dir, and a partition known offline is
//! never recreated (its directory may hold the only copy of its data).

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use kraft_log::PartitionMetadata;
use kraft_metadata::{record, MetadataDelta, MetadataImage};
use kraft_proto::metadata::{self as pb, metadata_record::Record, MetadataRecord};
use kraft_rpc::NoFaults;
use tokio::sync::watch;
use uuid::Uuid;

use super::{
    OfflineStorage, PartitionLookup, ReplicaFetchers, ReplicaManager, ReplicaManagerConfig,
};
use crate::MetadataCache;

const NODE: i32 = 1;
const A: Uuid = Uuid::from_u128(0xA);
const B: Uuid = Uuid::from_u128(0xB);
const C: Uuid = Uuid::from_u128(0xC);

fn topic(name: &str, id: Uuid) -> MetadataRecord {
    record(Record::Topic(pb::TopicRecord {
        name: name.into(),
        topic_id: Bytes::copy_from_slice(id.as_bytes()),
    }))
}

/// Partition 0 of `id`, on and led by this broker.
fn partition(id: Uuid) -> MetadataRecord {
    record(Record::Partition(pb::PartitionRecord {
        topic_id: Bytes::copy_from_slice(id.as_bytes()),
        partition_id: 0,
        replicas: vec![NODE],
        isr: vec![NODE],
        leader: NODE,
        leader_epoch: 0,
        partition_epoch: 0,
        removing_replicas: vec![],
        adding_replicas: vec![],
    }))
}

fn manager(log_dir: &Path) -> ReplicaManager {
    let (_tx, rx) = watch::channel(Arc::new(MetadataImage::empty()));
    let fetchers = ReplicaFetchers::new(
        NODE,
        "PLAINTEXT".into(),
        MetadataCache::new(rx),
        Arc::new(NoFaults),
    );
    ReplicaManager::open(
        ReplicaManagerConfig::new(NODE, vec![log_dir.to_path_buf()]),
        fetchers,
    )
}

/// Applies `records` on top of `image` to `replicas`; returns the new image.
fn publish(
    replicas: &ReplicaManager,
    image: &MetadataImage,
    records: &[MetadataRecord],
) -> MetadataImage {
    let mut delta = MetadataDelta::new(image.clone());
    for r in records {
        delta.replay(r).expect("records replay");
    }
    let after = delta.clone().apply();
    replicas.apply(&delta, &after);
    after
}

fn is_offline(replicas: &ReplicaManager, id: Uuid) -> bool {
    matches!(replicas.lookup(id, 0), PartitionLookup::Offline(_))
}

#[tokio::test]
async fn a_storage_error_takes_the_whole_dir_offline() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let replicas = manager(&logs);
    let image = publish(
        &replicas,
        &MetadataImage::empty(),
        &[topic("a", A), partition(A), topic("b", B), partition(B)],
    );
    let PartitionLookup::Hosted(a) = replicas.lookup(A, 0) else {
        panic!("a-0 is hosted");
    };
    assert!(!is_offline(&replicas, B));

    a.log().disk_fault().fail_syncs();
    let err = a.log().flush().unwrap_err();
    a.note_log_error(&err);
    assert!(is_offline(&replicas, A), "the failing partition is offline");
    assert!(is_offline(&replicas, B), "so is every partition of its dir");
    assert_eq!(
        replicas.offline_storage(),
        OfflineStorage {
            log_dirs: vec![logs.clone()],
            partitions: vec![(A, 0), (B, 0)],
            all_log_dirs_offline: true,
        }
    );

    // The metadata naming them again recreates nothing; a new partition
    // finds no online dir.
    let image = publish(
        &replicas,
        &image,
        &[partition(A), topic("c", C), partition(C)],
    );
    assert!(is_offline(&replicas, A) && is_offline(&replicas, C));
    assert!(
        logs.join("a-0").join("partition.metadata").exists(),
        "a-0 kept"
    );
    assert!(
        !logs.join("c-0").exists(),
        "nothing created in a failed dir"
    );
    assert_eq!(a.log().disk_fault().failed_syncs(), 1);
    drop(image);
}

#[tokio::test]
async fn a_log_that_failed_to_open_is_not_recreated() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let t0 = logs.join("t-0");
    std::fs::create_dir_all(&t0).unwrap();
    PartitionMetadata::write(&t0, A).unwrap();
    // A segment that cannot be opened: a directory where the file should be.
    std::fs::create_dir(t0.join("00000000000000000000.log")).unwrap();
    std::fs::write(t0.join("00000000000000000000.log").join("keep"), b"data").unwrap();
    let replicas = manager(&logs);
    assert!(is_offline(&replicas, A), "the log does not open");

    publish(
        &replicas,
        &MetadataImage::empty(),
        &[topic("t", A), partition(A)],
    );
    assert!(is_offline(&replicas, A), "still offline, not recreated");
    assert!(
        t0.join("00000000000000000000.log").join("keep").exists(),
        "its directory is left as it was"
    );
}
