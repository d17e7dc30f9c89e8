//! What the transaction API handlers share: a transactional id checked and
//! a coordinator error adapted to the request's version.
//!
//! In: a transactional id, or a coordinator error and the version of the
//! request it answers. Out: INVALID_REQUEST for an empty id; for clients
//! older than KIP-588 (AddPartitionsToTxn, AddOffsetsToTxn and EndTxn
//! below v2, InitProducerId below v4), PRODUCER_FENCED becomes
//! INVALID_PRODUCER_EPOCH, the code those clients understand, as Kafka
//! answers them.

use kafka_protocol::error::ResponseError;

/// INVALID_REQUEST for an empty transactional id.
pub fn check_transactional_id(id: &str) -> Result<(), ResponseError> {
    if id.is_empty() {
        return Err(ResponseError::InvalidRequest);
    }
    Ok(())
}

/// The code for `error` at `version`, where `fenced_from` is the first
/// version that knows PRODUCER_FENCED.
pub fn error_code(error: ResponseError, version: i16, fenced_from: i16) -> i16 {
    if error == ResponseError::ProducerFenced && version < fenced_from {
        ResponseError::InvalidProducerEpoch.code()
    } else {
        error.code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_clients_get_invalid_producer_epoch() {
        let fenced = ResponseError::ProducerFenced;
        assert_eq!(
            error_code(fenced, 1, 2),
            ResponseError::InvalidProducerEpoch.code()
        );
        assert_eq!(error_code(fenced, 2, 2), fenced.code());
        let other = ResponseError::InvalidTxnState;
        assert_eq!(error_code(other, 0, 2), other.code());
        assert!(check_transactional_id("").is_err());
        assert!(check_transactional_id("t").is_ok());
    }
}
