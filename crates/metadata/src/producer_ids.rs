//! Producer ids handed out in blocks (Kafka's `ProducerIdsImage` and the
//! replay of `ProducerIdsRecord`): the image keeps the next id the
//! controller may give; each record moves it past the block just allocated.
//!
//! In: `ProducerIdsRecord`s replayed by [`crate::MetadataDelta`]. Out: the
//! next producer id ([`ProducerIdsImage::next_producer_id`]) the
//! controller's AllocateProducerIds reads, and one record written back into
//! snapshots. Because a block is answered only once its record has
//! committed, and a new active controller replays every committed record
//! before it writes, no id is handed out twice across controller failover.

use kraft_proto::metadata::{metadata_record::Record, MetadataRecord, ProducerIdsRecord};

use crate::{record, MetadataError};

/// The producer-id allocation state: the first id no block has covered yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdsImage {
    next_producer_id: i64,
}

impl Default for ProducerIdsImage {
    fn default() -> Self {
        Self::empty()
    }
}

impl ProducerIdsImage {
    /// No block allocated yet: the next block starts at 0.
    pub fn empty() -> Self {
        Self {
            next_producer_id: -1,
        }
    }

    /// The first id of the next block (0 if none was ever allocated).
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id.max(0)
    }

    pub fn is_empty(&self) -> bool {
        self.next_producer_id < 0
    }

    /// Applies a `ProducerIdsRecord`: the next id must move forward.
    pub(crate) fn replay(&mut self, r: &ProducerIdsRecord) -> Result<(), MetadataError> {
        if r.next_producer_id <= self.next_producer_id || r.next_producer_id < 0 {
            return Err(MetadataError::ProducerIdNotIncreasing {
                next: r.next_producer_id,
                current: self.next_producer_id,
            });
        }
        self.next_producer_id = r.next_producer_id;
        Ok(())
    }

    /// One record holding the next id (none for an empty image). As Kafka,
    /// the broker id and epoch of a snapshot's record are -1.
    pub fn write_records(&self, out: &mut Vec<MetadataRecord>) {
        if !self.is_empty() {
            out.push(record(Record::ProducerIds(ProducerIdsRecord {
                broker_id: -1,
                broker_epoch: -1,
                next_producer_id: self.next_producer_id,
            })));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(next: i64) -> ProducerIdsRecord {
        ProducerIdsRecord {
            broker_id: 1,
            broker_epoch: 5,
            next_producer_id: next,
        }
    }

    #[test]
    fn the_next_id_only_moves_forward_and_round_trips_as_a_record() {
        let mut image = ProducerIdsImage::empty();
        assert_eq!(image.next_producer_id(), 0);
        image.replay(&ids(1000)).unwrap();
        assert_eq!(image.next_producer_id(), 1000);
        assert!(image.replay(&ids(1000)).is_err());
        assert!(image.replay(&ids(10)).is_err());
        assert_eq!(image.next_producer_id(), 1000);
        let mut records = Vec::new();
        image.write_records(&mut records);
        let Some(Record::ProducerIds(r)) = records.first().and_then(|r| r.record.clone()) else {
            panic!("one ProducerIdsRecord: {records:?}");
        };
        let mut back = ProducerIdsImage::empty();
        back.replay(&r).unwrap();
        assert_eq!(back, image);
        let mut none = Vec::new();
        ProducerIdsImage::empty().write_records(&mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn a_snapshot_keeps_the_next_producer_id() {
        use crate::{snapshot, MetadataDelta, MetadataImage};
        use kraft_proto::metadata::{RecordBatch, SnapshotHeader};
        let mut delta = MetadataDelta::new(MetadataImage::empty());
        let batch = RecordBatch {
            records: vec![record(Record::ProducerIds(ids(3000)))],
        };
        delta.replay_batch(7, &batch).unwrap();
        let image = delta.apply();
        let header = SnapshotHeader {
            offset: 7,
            ..Default::default()
        };
        let (_, back) = snapshot::decode(&snapshot::encode(&header, &image)).unwrap();
        assert_eq!(back.producer_ids().next_producer_id(), 3000);
        assert_eq!(back, image);
    }
}
