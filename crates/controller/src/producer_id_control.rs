//! AllocateProducerIds (Kafka's `ProducerIdControlManager`): brokers get
//! producer ids in blocks of [`PRODUCER_ID_BLOCK_SIZE`], one
//! `ProducerIdsRecord` per block.
//!
//! In: the broker's id and epoch, and the `latest` image (whose
//! `producer_ids()` holds the first id no block has covered). Out: the
//! record moving that id past the block, and the block as the response. The
//! quorum controller answers only once the record has committed, so a block
//! is never handed out twice, even across a controller failover: the next
//! active controller has replayed the record before it allocates again.

use kafka_protocol::ResponseError;
use kraft_metadata::{record, MetadataImage};
use kraft_proto::controller::{AllocateProducerIdsRequest, AllocateProducerIdsResponse};
use kraft_proto::metadata::{metadata_record::Record, ProducerIdsRecord};

use crate::controller_result::ControllerResult;
use crate::error::{code, ControllerError};

/// Ids per block, as Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`.
pub const PRODUCER_ID_BLOCK_SIZE: i32 = 1000;

/// Allocates the next block to a registered broker whose epoch matches
/// (else STALE_BROKER_EPOCH, as Kafka).
pub fn allocate_producer_ids(
    image: &MetadataImage,
    request: &AllocateProducerIdsRequest,
) -> Result<ControllerResult<AllocateProducerIdsResponse>, ControllerError> {
    let registered = image.cluster().broker(request.broker_id);
    if registered.is_none_or(|b| b.epoch != request.broker_epoch) {
        return Err(ControllerError::new(
            code(ResponseError::StaleBrokerEpoch),
            format!(
                "broker {} with epoch {} is not registered with that epoch",
                request.broker_id, request.broker_epoch
            ),
        ));
    }
    let first = image.producer_ids().next_producer_id();
    let Some(next) = first
        .checked_add(i64::from(PRODUCER_ID_BLOCK_SIZE))
        .filter(|n| *n < i64::MAX)
    else {
        return Err(ControllerError::new(
            code(ResponseError::UnknownServerError),
            "every producer id has been allocated",
        ));
    };
    let records = vec![record(Record::ProducerIds(ProducerIdsRecord {
        broker_id: request.broker_id,
        broker_epoch: request.broker_epoch,
        next_producer_id: next,
    }))];
    Ok(ControllerResult::new(
        records,
        AllocateProducerIdsResponse {
            producer_id_start: first,
            producer_id_len: PRODUCER_ID_BLOCK_SIZE,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kraft_metadata::MetadataDelta;
    use kraft_proto::metadata::RegisterBrokerRecord;

    fn with_broker() -> MetadataImage {
        let mut delta = MetadataDelta::new(MetadataImage::empty());
        delta
            .replay(&record(Record::RegisterBroker(RegisterBrokerRecord {
                broker_id: 1,
                incarnation_id: vec![7; 16].into(),
                broker_epoch: 10,
                ..Default::default()
            })))
            .unwrap();
        delta.apply()
    }

    fn apply(
        image: &MetadataImage,
        result: &ControllerResult<AllocateProducerIdsResponse>,
    ) -> MetadataImage {
        let mut delta = MetadataDelta::new(image.clone());
        result.records.iter().for_each(|r| delta.replay(r).unwrap());
        delta.apply()
    }

    #[test]
    fn blocks_follow_each_other_and_a_stale_epoch_is_refused() {
        let image = with_broker();
        let request = AllocateProducerIdsRequest {
            broker_id: 1,
            broker_epoch: 10,
        };
        let first = allocate_producer_ids(&image, &request).unwrap();
        assert_eq!(first.response.producer_id_start, 0);
        assert_eq!(first.response.producer_id_len, 1000);
        let image = apply(&image, &first);
        let second = allocate_producer_ids(&image, &request).unwrap();
        assert_eq!(second.response.producer_id_start, 1000);
        let image = apply(&image, &second);
        assert_eq!(image.producer_ids().next_producer_id(), 2000);
        let stale = AllocateProducerIdsRequest {
            broker_id: 1,
            broker_epoch: 9,
        };
        let err = allocate_producer_ids(&image, &stale).unwrap_err();
        assert_eq!(err.code, code(ResponseError::StaleBrokerEpoch));
        let unknown = AllocateProducerIdsRequest {
            broker_id: 2,
            broker_epoch: 10,
        };
        assert!(allocate_producer_ids(&image, &unknown).is_err());
    }
}
