//! A partition leader's side of transactions: appending the COMMIT and
//! ABORT markers a transaction coordinator sends (WriteTxnMarkers).
//!
//! In: a marker (producer id and epoch, coordinator epoch, commit or
//! abort) from `handlers/write_txn_markers.rs`. Out: the marker appended to
//! the log as a control batch (`PartitionLog::append_marker`), the log-end
//! watch moved so followers fetch it, and the append's offset and leader
//! epoch, for the caller to wait on [`Partition::wait_for_replication`] as
//! an acks=all produce does. The partition's last stable offset moves when
//! the high watermark passes the marker.

use kraft_log::{LogAppendInfo, TxnMarker};

use super::{Partition, PartitionError};

impl Partition {
    /// Appends a transaction marker as leader, with acks=all's
    /// `min.insync.replicas` check first. Returns the append and the
    /// leader epoch it was made in.
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        marker: TxnMarker,
        now_ms: i64,
    ) -> Result<(LogAppendInfo, i32), PartitionError> {
        let state = self.leader_state(true)?;
        let registration = &state.registration;
        let info = self.checked(self.log.append_marker(
            producer_id,
            producer_epoch,
            coordinator_epoch,
            marker,
            registration.leader_epoch,
            now_ms,
        ))?;
        self.log_end.send_replace(self.log.log_end_offset());
        self.maybe_advance_high_watermark(&state);
        Ok((info, registration.leader_epoch))
    }
}
