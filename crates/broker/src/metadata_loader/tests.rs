//! The loader against a real replica manager: what a broker hosts after it
//! loads the controllers' snapshot over an image it already has.

use crate::test_batches::value_batch;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kraft_metadata::{record, MetadataDelta, MetadataImage};
use kraft_proto::controller::{CommittedBatch, FetchMetadataResponse};
use kraft_proto::metadata::{
    self as pb, metadata_record::Record, MetadataRecord, RecordBatch, SnapshotHeader,
};
use kraft_rpc::NoFaults;
use prost::Message as _;
use tokio::sync::watch;
use uuid::Uuid;

use super::{LoaderConfig, MetadataLoader, WatchPublisher};
use crate::replica::{
    PartitionError, PartitionLookup, ReplicaFetchers, ReplicaManager, ReplicaManagerConfig,
    ReplicaPublisher,
};
use crate::MetadataCache;

const NODE: i32 = 1;
const OTHER: i32 = 2;
const MOVED: Uuid = Uuid::from_u128(0xA);
const DELETED: Uuid = Uuid::from_u128(0xB);
const KEPT: Uuid = Uuid::from_u128(0xC);

fn raw(id: Uuid) -> Bytes {
    Bytes::copy_from_slice(id.as_bytes())
}

fn register(broker_id: i32) -> MetadataRecord {
    record(Record::RegisterBroker(pb::RegisterBrokerRecord {
        broker_id,
        incarnation_id: raw(Uuid::from_u128(100 + broker_id as u128)),
        broker_epoch: 1,
        endpoints: vec![pb::Endpoint {
            name: "PLAINTEXT".into(),
            host: "localhost".into(),
            port: 9092,
            security_protocol: "PLAINTEXT".into(),
        }],
        rack: None,
        fenced: false,
        in_controlled_shutdown: false,
    }))
}

fn topic(name: &str, id: Uuid) -> MetadataRecord {
    record(Record::Topic(pb::TopicRecord {
        name: name.into(),
        topic_id: raw(id),
    }))
}

/// Partition 0 of `id`, led by the first of `replicas`.
fn partition(id: Uuid, replicas: &[i32]) -> MetadataRecord {
    record(Record::Partition(pb::PartitionRecord {
        topic_id: raw(id),
        partition_id: 0,
        replicas: replicas.to_vec(),
        isr: replicas.to_vec(),
        leader: replicas[0],
        leader_epoch: 0,
        partition_epoch: 0,
        removing_replicas: vec![],
        adding_replicas: vec![],
    }))
}

fn page(offset: u64, records: Vec<MetadataRecord>) -> FetchMetadataResponse {
    FetchMetadataResponse {
        batches: vec![CommittedBatch {
            offset,
            term: 1,
            records: RecordBatch { records }.encode_to_vec().into(),
        }],
        high_watermark: offset,
        ..Default::default()
    }
}

struct Broker {
    _dirs: tempfile::TempDir,
    loader: MetadataLoader,
    replicas: Arc<ReplicaManager>,
}

fn broker() -> Broker {
    let dirs = tempfile::tempdir().expect("temp dir");
    let (image_tx, image_rx) = watch::channel(Arc::new(MetadataImage::empty()));
    let cache = MetadataCache::new(image_rx);
    let fetchers = ReplicaFetchers::new(NODE, "PLAINTEXT".into(), cache, Arc::new(NoFaults));
    let replicas = Arc::new(ReplicaManager::open(
        ReplicaManagerConfig::new(NODE, vec![dirs.path().join("logs")]),
        fetchers,
    ));
    let config = LoaderConfig {
        node_id: NODE,
        cluster_id: "loader-tests".into(),
        controllers: Vec::new(),
        snapshot_dir: dirs.path().join("__cluster_metadata-0"),
        snapshot_max_bytes: u64::MAX,
        snapshot_max_interval: Duration::from_secs(3600),
    };
    let (loader, _lag) = MetadataLoader::new(
        config,
        vec![
            Box::new(ReplicaPublisher(replicas.clone())),
            Box::new(WatchPublisher(image_tx)),
        ],
    )
    .expect("loader");
    Broker {
        _dirs: dirs,
        loader,
        replicas,
    }
}

fn hosted(replicas: &ReplicaManager, id: Uuid) -> Option<Arc<crate::replica::Partition>> {
    match replicas.lookup(id, 0) {
        PartitionLookup::Hosted(p) => Some(p),
        _ => None,
    }
}

/// The controllers' snapshot of `image` after `records`, at `offset`.
fn snapshot_after(image: &MetadataImage, offset: u64, records: &[MetadataRecord]) -> Bytes {
    let mut delta = MetadataDelta::new(image.clone());
    for r in records {
        delta.replay(r).expect("controller record replays");
    }
    delta.set_offset(offset);
    let header = SnapshotHeader {
        offset,
        term: 1,
        ..Default::default()
    };
    Bytes::from(super::snapshot::encode(&header, &delta.apply()))
}

/// Issue 11, defect 2: the broker leads `moved-0` and `deleted-0`, falls
/// behind while the first is reassigned to broker 2 and the second's topic
/// is deleted, and the controllers compact their log up to a snapshot. The
/// broker loads that snapshot: it must stop hosting both (a produce to
/// `moved-0` is refused, NOT_LEADER_OR_FOLLOWER, instead of acknowledged
/// and lost) and keep `kept-0` as it was.
#[tokio::test]
async fn a_snapshot_loaded_over_an_image_removes_what_it_no_longer_has() {
    let mut broker = broker();
    broker.loader.apply_page(&page(
        5,
        vec![
            register(NODE),
            register(OTHER),
            topic("moved", MOVED),
            partition(MOVED, &[NODE, OTHER]),
            topic("deleted", DELETED),
            partition(DELETED, &[NODE]),
            topic("kept", KEPT),
            partition(KEPT, &[NODE]),
        ],
    ));
    let moved = hosted(&broker.replicas, MOVED).expect("moved-0 hosted");
    let deleted = hosted(&broker.replicas, DELETED).expect("deleted-0 hosted");
    let kept = hosted(&broker.replicas, KEPT).expect("kept-0 hosted");
    assert!(moved.is_leader() && deleted.is_leader() && kept.is_leader());
    assert!(moved.append_as_leader(value_batch(1, 0), 1, 0).is_ok());

    let bytes = snapshot_after(
        &broker.loader.image,
        20,
        &[
            record(Record::PartitionChange(pb::PartitionChangeRecord {
                topic_id: raw(MOVED),
                partition_id: 0,
                leader: Some(OTHER),
                replicas: Some(pb::BrokerIds { ids: vec![OTHER] }),
                isr: Some(pb::BrokerIds { ids: vec![OTHER] }),
                ..Default::default()
            })),
            record(Record::RemoveTopic(pb::RemoveTopicRecord {
                topic_id: raw(DELETED),
            })),
        ],
    );
    broker.loader.load_snapshot(20, &bytes);
    assert_eq!(broker.loader.image.offset(), 20);

    let refused = moved.append_as_leader(value_batch(1, 0), 1, 0);
    assert!(
        matches!(refused, Err(PartitionError::NotLeader)),
        "a produce to moved-0 after the snapshot must be refused (NOT_LEADER_OR_FOLLOWER), got {refused:?}"
    );
    assert!(
        hosted(&broker.replicas, MOVED).is_none(),
        "moved-0 was reassigned away but is still hosted"
    );
    assert!(
        !moved.log().dir().exists(),
        "moved-0's log is still on disk"
    );
    assert!(
        hosted(&broker.replicas, DELETED).is_none(),
        "deleted-0's topic was deleted but it is still hosted"
    );
    assert!(
        !deleted.log().dir().exists(),
        "deleted-0's log is still on disk"
    );
    let still = hosted(&broker.replicas, KEPT).expect("kept-0 still hosted");
    assert!(Arc::ptr_eq(&still, &kept) && still.is_leader());
}
