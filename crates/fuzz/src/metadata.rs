//! The `metadata_snapshot` target: a metadata snapshot file (a controller's
//! checkpoint, or one fetched from a peer) decoded into an image.
//!
//! In: any bytes. Out: nothing; a decode error is fine, a panic is not.

use kraft_metadata::snapshot;
use kraft_metadata::{record, MetadataDelta, MetadataImage};
use kraft_proto::metadata::metadata_record::Record;
use kraft_proto::metadata::{PartitionRecord, RegisterBrokerRecord, SnapshotHeader, TopicRecord};

pub fn metadata_snapshot(data: &[u8]) {
    let _ = snapshot::decode_header(data);
    let _ = snapshot::decode(data);
}

pub fn seeds() -> Vec<Vec<u8>> {
    let topic_id = vec![7u8; 16];
    let records = [
        record(Record::RegisterBroker(RegisterBrokerRecord {
            broker_id: 1,
            incarnation_id: vec![1u8; 16].into(),
            broker_epoch: 1,
            ..Default::default()
        })),
        record(Record::Topic(TopicRecord {
            name: "t".into(),
            topic_id: topic_id.clone().into(),
        })),
        record(Record::Partition(PartitionRecord {
            topic_id: topic_id.into(),
            partition_id: 0,
            replicas: vec![1],
            isr: vec![1],
            leader: 1,
            ..Default::default()
        })),
    ];
    let mut delta = MetadataDelta::new(MetadataImage::empty());
    let mut seeds = vec![snapshot::encode(
        &SnapshotHeader::default(),
        &MetadataImage::empty(),
    )];
    match records.iter().try_for_each(|r| delta.replay(r)) {
        Ok(()) => seeds.push(snapshot::encode(&SnapshotHeader::default(), &delta.apply())),
        Err(e) => panic!("the seed records do not replay: {e}"),
    }
    seeds
}
