//! The transaction coordinator's operations, as Kafka's
//! `TransactionCoordinator`: InitProducerId with a transactional id,
//! adding partitions (and a group's offsets partition), ending a
//! transaction, completing a prepared one, and aborting expired ones.
//!
//! In: requests from the handlers (`init_producer_id.rs`,
//! `add_partitions_to_txn.rs`, `add_offsets_to_txn.rs`, `end_txn.rs`) and
//! the coordinator's own tasks. Out: the answer — a producer id and epoch,
//! or a Kafka error code — after the new state is written to the id's
//! `__transaction_state` partition and replicated ([`TxnShard::update`]).
//! EndTxn is answered once PrepareCommit or PrepareAbort is stored; the
//! markers ([`super::markers`]) and the Complete state follow on a task of
//! their own, and requests for the id meanwhile get CONCURRENT_TRANSACTIONS.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;

use super::coordinator::TransactionCoordinator;
use super::markers::Markers;
use super::records::TxnState;
use super::shard::TxnShard;
use super::state::{first_value, InitStep};
use crate::replica::now_ms;

/// InitProducerId rounds before the answer is CONCURRENT_TRANSACTIONS (an
/// ongoing transaction is aborted in the first).
const INIT_ROUNDS: usize = 3;

/// The pause before a failed Complete write is tried again.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// What an InitProducerId round found.
enum Found {
    Written,
    Aborting,
    Answer(i64, i16),
}

/// InitProducerId with a transactional id: a producer id and epoch for
/// the id, fencing any older producer of it. `expected` is the producer's
/// current id and epoch (v3+, KIP-360), `new_producer_id` a source of
/// fresh producer ids.
pub async fn init<F, Fut>(
    coordinator: &Arc<TransactionCoordinator>,
    transactional_id: &str,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
    new_producer_id: F,
) -> Result<(i64, i16), ResponseError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<i64, ResponseError>>,
{
    let max = coordinator.config.max_timeout.as_millis();
    if timeout_ms <= 0 || timeout_ms as u128 > max {
        return Err(ResponseError::InvalidTransactionTimeout);
    }
    for _ in 0..INIT_ROUNDS {
        let shard = coordinator.shard_for(transactional_id)?;
        let fresh_id = match shard.get(transactional_id) {
            None => Some(new_producer_id().await?),
            Some(m) if m.epoch_exhausted() => Some(new_producer_id().await?),
            Some(_) => None,
        };
        let now = now_ms();
        let mut found = Found::Written;
        let written = shard
            .update(transactional_id, |m| match m {
                None => Ok(Some(first_value(
                    fresh_id.ok_or(ResponseError::ConcurrentTransactions)?,
                    timeout_ms,
                    now,
                ))),
                Some(m) => match m.prepare_init(timeout_ms, expected, now, fresh_id)? {
                    InitStep::Write(value) => Ok(Some(value)),
                    InitStep::AbortFirst(value) => {
                        found = Found::Aborting;
                        Ok(Some(value))
                    }
                    InitStep::Answer { producer_id, epoch } => {
                        found = Found::Answer(producer_id, epoch);
                        Ok(None)
                    }
                },
            })
            .await?;
        match (found, written) {
            (Found::Answer(producer_id, epoch), _) => return Ok((producer_id, epoch)),
            (Found::Aborting, _) => {
                complete(coordinator, &shard, transactional_id).await?;
            }
            (Found::Written, Some(value)) => return Ok((value.producer_id, value.producer_epoch)),
            (Found::Written, None) => return Err(ResponseError::ConcurrentTransactions),
        }
    }
    Err(ResponseError::ConcurrentTransactions)
}

/// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's
/// `__consumer_offsets` partition): the partitions join the transaction,
/// opening it if none is open.
pub async fn add_partitions(
    coordinator: &TransactionCoordinator,
    transactional_id: &str,
    producer_id: i64,
    epoch: i16,
    partitions: &[(String, i32)],
) -> Result<(), ResponseError> {
    let shard = coordinator.shard_for(transactional_id)?;
    let now = now_ms();
    shard
        .update(transactional_id, |m| match m {
            None => Err(ResponseError::InvalidProducerIdMapping),
            Some(m) => m.prepare_add(producer_id, epoch, partitions, now),
        })
        .await
        .map(|_| ())
}

/// AddPartitionsToTxn v4+ with `verify_only` (KIP-890): per partition 0
/// if it is in the producer's ongoing transaction, else INVALID_TXN_STATE.
/// Nothing is written.
pub fn verify_partitions(
    coordinator: &TransactionCoordinator,
    transactional_id: &str,
    producer_id: i64,
    epoch: i16,
    partitions: &[(String, i32)],
) -> Result<Vec<i16>, ResponseError> {
    let shard = coordinator.shard_for(transactional_id)?;
    let state = shard
        .get(transactional_id)
        .ok_or(ResponseError::InvalidProducerIdMapping)?;
    Ok(state
        .verify(producer_id, epoch, partitions)?
        .into_iter()
        .map(|added| {
            if added {
                0
            } else {
                ResponseError::InvalidTxnState.code()
            }
        })
        .collect())
}

/// EndTxn: stores PrepareCommit or PrepareAbort and answers; the markers
/// and the Complete state follow on a task.
pub async fn end(
    coordinator: &Arc<TransactionCoordinator>,
    transactional_id: &str,
    producer_id: i64,
    epoch: i16,
    commit: bool,
) -> Result<(), ResponseError> {
    let shard = coordinator.shard_for(transactional_id)?;
    let now = now_ms();
    let written = shard
        .update(transactional_id, |m| match m {
            None => Err(ResponseError::InvalidProducerIdMapping),
            Some(m) => m.prepare_end(producer_id, epoch, commit, now),
        })
        .await?;
    if written.is_some() {
        spawn_complete(coordinator.clone(), shard, transactional_id.to_string());
    }
    Ok(())
}

fn spawn_complete(coordinator: Arc<TransactionCoordinator>, shard: Arc<TxnShard>, id: String) {
    tokio::spawn(async move {
        if let Err(e) = complete(&coordinator, &shard, &id).await {
            tracing::info!(transactional_id = %id, error = %e, "transaction left for the next coordinator");
        }
    });
}

/// Completes a transaction in PrepareCommit or PrepareAbort: its markers,
/// then CompleteCommit or CompleteAbort, retried until stored or until
/// this broker stops coordinating it.
pub(super) async fn complete(
    coordinator: &TransactionCoordinator,
    shard: &Arc<TxnShard>,
    transactional_id: &str,
) -> Result<(), ResponseError> {
    let Some(m) = shard.get(transactional_id) else {
        return Ok(());
    };
    let commit = match m.state {
        TxnState::PrepareCommit => true,
        TxnState::PrepareAbort => false,
        _ => return Ok(()),
    };
    let markers = Markers {
        producer_id: m.producer_id,
        producer_epoch: m.producer_epoch,
        coordinator_epoch: shard.coordinator_epoch,
        commit,
    };
    coordinator
        .markers
        .write(&markers, &m.partitions, || coordinator.serves(shard))
        .await
        .map_err(|stopped| {
            tracing::warn!(
                transactional_id,
                ?stopped,
                "transaction markers not written"
            );
            ResponseError::NotCoordinator
        })?;
    loop {
        let outcome = shard
            .update(transactional_id, |m| {
                Ok(m.filter(|m| m.pending.is_none())
                    .and_then(|m| m.prepare_complete(now_ms())))
            })
            .await;
        match outcome {
            Ok(_) => return Ok(()),
            Err(e) if !coordinator.serves(shard) => return Err(e),
            Err(e) => {
                tracing::debug!(transactional_id, error = %e, "completing a transaction; retrying");
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
        }
    }
}

/// Runs while this broker serves `shard`: completes the transactions the
/// load found prepared, then aborts expired transactions every
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms` and
/// removes expired transactional ids every
/// `transaction.remove.expired.transaction.cleanup.interval.ms`.
pub(super) async fn after_load(coordinator: Arc<TransactionCoordinator>, shard: Arc<TxnShard>) {
    let prepared =
        shard.select(|m| matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort));
    for (id, _) in prepared {
        tracing::info!(transactional_id = %id, "completing a transaction found prepared");
        spawn_complete(coordinator.clone(), shard.clone(), id);
    }
    let interval = coordinator.config.abort_timed_out_interval;
    let removal_interval = coordinator.config.remove_expired_interval;
    let mut next_removal = tokio::time::Instant::now() + removal_interval;
    loop {
        tokio::time::sleep(interval.min(removal_interval)).await;
        if tokio::time::Instant::now() >= next_removal {
            remove_expired_ids(&coordinator, &shard).await;
            next_removal = tokio::time::Instant::now() + removal_interval;
        }
        let now = now_ms();
        let expired = shard.select(|m| m.prepare_timeout_abort(now).is_some());
        for (id, _) in expired {
            let outcome = shard
                .update(&id, |m| {
                    Ok(m.and_then(|m| m.prepare_timeout_abort(now_ms())))
                })
                .await;
            if let Ok(Some(value)) = outcome {
                tracing::info!(
                    transactional_id = %id,
                    producer_id = value.producer_id,
                    epoch = value.producer_epoch,
                    "aborting a transaction past its timeout"
                );
                spawn_complete(coordinator.clone(), shard.clone(), id);
            }
        }
    }
}

/// Removes the ids past `transactional.id.expiration.ms`.
async fn remove_expired_ids(coordinator: &TransactionCoordinator, shard: &TxnShard) {
    let expiration = coordinator.config.id_expiration.as_millis() as i64;
    let now = now_ms();
    for (id, _) in shard.select(|m| m.expired(now, expiration)) {
        if shard
            .remove_if(&id, |m| m.expired(now_ms(), expiration))
            .await
        {
            tracing::info!(transactional_id = %id, "removed an expired transactional id");
        }
    }
}
