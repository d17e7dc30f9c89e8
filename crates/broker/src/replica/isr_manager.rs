//! Asks the controller to change the ISR of partitions this broker leads,
//! as Kafka's AlterPartition manager does.
//!
//! In: every few hundred ms, each led partition's wanted change
//! ([`Partition::isr_change`]: followers not caught up for
//! `replica.lag.time.max.ms` leave, followers that caught up rejoin), and
//! the broker epoch from the lifecycle. Out: one `AlterPartition` request
//! to the active controller carrying every change. The controller checks
//! the leader and partition epochs and commits a PartitionChangeRecord; the
//! leader applies the new ISR only when that record reaches its metadata
//! (through [`Partition::set_state`]), never on the controller's word
//! alone. A change the controller says it did not apply is computed afresh
//! next time; an unanswered one, which may have committed, is sent again
//! unchanged ([`Partition::isr_change_failed`]).

use std::sync::Arc;
use std::time::Duration;

use kraft_proto::controller::{AlterPartitionItem, AlterPartitionRequest};
use tokio::sync::watch;
use uuid::Uuid;

use crate::controller_channel::ControllerChannel;
use crate::lifecycle::BrokerState;
use crate::replica::{now_ms, Partition, ReplicaManager};

/// How often led partitions are checked.
const CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// Runs until `stop` turns true.
pub async fn run(
    replicas: Arc<ReplicaManager>,
    controller: Arc<ControllerChannel>,
    state: watch::Receiver<BrokerState>,
    mut stop: watch::Receiver<bool>,
) {
    let lag_ms = replicas.config().replica_lag_time_max.as_millis() as i64;
    let interval = CHECK_INTERVAL.min(replicas.config().replica_lag_time_max / 2);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let epoch = match *state.borrow() {
            BrokerState::Running { epoch } | BrokerState::ShuttingDown { epoch } => epoch,
            _ => continue,
        };
        let now = now_ms();
        let changes: Vec<(Arc<Partition>, AlterPartitionItem)> = replicas
            .partitions()
            .into_iter()
            .filter_map(|p| {
                let change = p.isr_change(now, lag_ms)?;
                let item = AlterPartitionItem {
                    topic_id: p.topic_id().as_bytes().to_vec().into(),
                    partition: p.index(),
                    leader_epoch: change.leader_epoch,
                    partition_epoch: change.partition_epoch,
                    new_isr: change.new_isr,
                };
                Some((p, item))
            })
            .collect();
        if changes.is_empty() {
            continue;
        }
        for (p, item) in &changes {
            tracing::info!(partition = ?p, isr = ?item.new_isr, "asking the controller to change the ISR");
        }
        let request = AlterPartitionRequest {
            broker_id: replicas.node_id(),
            broker_epoch: epoch,
            partitions: changes.iter().map(|(_, item)| item.clone()).collect(),
        };
        match controller.alter_partition(request).await {
            Ok((response, _committed)) => {
                for result in response.partitions {
                    if result.error_code == 0 {
                        continue;
                    }
                    let id = Uuid::from_slice(&result.topic_id).unwrap_or_default();
                    if let Some((p, _)) = changes
                        .iter()
                        .find(|(p, _)| p.topic_id() == id && p.index() == result.partition)
                    {
                        tracing::info!(partition = ?p, error = result.error_code, "the controller refused an ISR change");
                        p.isr_change_failed(Some(result.error_code));
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "AlterPartition failed");
                changes.iter().for_each(|(p, _)| p.isr_change_failed(None));
            }
        }
    }
}
