//! read_committed's aborted-transactions list for one partition's answer.
//!
//! In: the partition's log, the fetch offset and the batches read for it.
//! Out: Kafka's `aborted_transactions` entries (producer id, first offset)
//! for every aborted transaction overlapping those batches, from the log's
//! `.txnindex` files (`PartitionLog::aborted_transactions`). The consumer
//! drops the records of each from its first offset to its ABORT marker.

use kafka_protocol::messages::fetch_response::AbortedTransaction;
use kraft_log::{batch, PartitionLog, ReadResult};

/// The aborted transactions overlapping the batches `result` holds, read
/// from `fetch_offset`: Kafka's `collectAbortedTransactions` up to the end
/// of the last batch returned (none when no batch is).
pub(super) fn aborted_in(
    log: &PartitionLog,
    fetch_offset: i64,
    result: &ReadResult,
) -> Vec<AbortedTransaction> {
    let upper = batch::batches(&result.records)
        .filter_map(Result::ok)
        .last()
        .map_or(fetch_offset, |(header, _)| header.next_offset());
    log.aborted_transactions(fetch_offset, upper)
        .into_iter()
        .map(|t| {
            AbortedTransaction::default()
                .with_producer_id(t.producer_id.into())
                .with_first_offset(t.first_offset)
        })
        .collect()
}
