//! [`ProducerIdManager`]: the broker's source of producer ids for
//! InitProducerId, as Kafka's `RPCProducerIdManager`. Ids come in blocks
//! from the active controller (AllocateProducerIds, committed to the
//! metadata log before it answers), so no id is given twice in the
//! cluster; the broker hands them out one by one and asks for the next
//! block when its block runs out.
//!
//! In: `generate` calls from the InitProducerId handler, with the
//! controller channel and this broker's id and epoch. Out: a producer id,
//! or a [`ProducerIdError`] (the controller could not be reached in time,
//! or refused), which the handler answers with the retriable
//! COORDINATOR_LOAD_IN_PROGRESS as Kafka does while it waits for a block.

use std::ops::Range;
use std::time::Duration;

use kraft_proto::controller::{
    controller_request::Body, controller_response, AllocateProducerIdsRequest,
};
use tokio::sync::Mutex;

use crate::controller_channel::ControllerChannel;

/// Why no producer id could be given.
#[derive(Debug, thiserror::Error)]
pub enum ProducerIdError {
    #[error("this broker is not registered with the controller yet")]
    NotRegistered,
    #[error("no block of producer ids from the controller: {0}")]
    Controller(String),
}

/// Hands out producer ids from blocks the controller allocates.
#[derive(Debug, Default)]
pub struct ProducerIdManager {
    /// The ids of the current block not handed out yet. The async mutex
    /// makes concurrent callers wait for one block request.
    block: Mutex<Range<i64>>,
}

impl ProducerIdManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next producer id; fetches a new block from the controller (up to
    /// `timeout`) when the current one is used up. `broker_epoch` is `None`
    /// until the broker has registered.
    pub async fn generate(
        &self,
        controller: &ControllerChannel,
        broker_id: i32,
        broker_epoch: Option<i64>,
        timeout: Duration,
    ) -> Result<i64, ProducerIdError> {
        let mut block = self.block.lock().await;
        if block.is_empty() {
            let epoch = broker_epoch.ok_or(ProducerIdError::NotRegistered)?;
            *block = fetch_block(controller, broker_id, epoch, timeout).await?;
            tracing::info!(
                broker_id,
                start = block.start,
                end = block.end,
                "got a block of producer ids"
            );
        }
        let id = block.start;
        block.start += 1;
        Ok(id)
    }
}

async fn fetch_block(
    controller: &ControllerChannel,
    broker_id: i32,
    broker_epoch: i64,
    timeout: Duration,
) -> Result<Range<i64>, ProducerIdError> {
    let request = AllocateProducerIdsRequest {
        broker_id,
        broker_epoch,
    };
    let response = controller
        .call(Body::AllocateProducerIds(request), timeout)
        .await
        .map_err(|e| ProducerIdError::Controller(e.to_string()))?;
    match response.body {
        Some(controller_response::Body::AllocateProducerIds(r))
            if r.producer_id_start >= 0 && r.producer_id_len > 0 =>
        {
            let end = r
                .producer_id_start
                .saturating_add(i64::from(r.producer_id_len));
            Ok(r.producer_id_start..end)
        }
        other => Err(ProducerIdError::Controller(format!(
            "unexpected answer {other:?}"
        ))),
    }
}
