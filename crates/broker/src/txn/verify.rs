//! A partition leader's side of KIP-890: before it appends the first batch
//! of a transaction to a partition, it asks the transaction's coordinator
//! whether the partition was added to the producer's ongoing transaction
//! (AddPartitionsToTxn v4, `verify_only`). A write the coordinator does not
//! know of (a producer that skipped AddPartitionsToTxn, a batch delayed
//! past its transaction's end) would open a transaction nobody ends and
//! hold the partition's last stable offset for good.
//!
//! In: the transactional id, producer id and epoch and the partition, from
//! `handlers/produce.rs`. Out: `Ok`, or the code the producer gets:
//! INVALID_TXN_STATE (not in the transaction), PRODUCER_FENCED or
//! INVALID_PRODUCER_ID_MAPPING as the coordinator says, and
//! NOT_ENOUGH_REPLICAS, which producers retry, when the coordinator cannot
//! be asked now (moving, loading, busy ending the transaction, or out of
//! reach), as Kafka answers. The coordinator of this broker is asked
//! directly; another over a connection kept per coordinator.
//! The log's guard (`kraft_log::producer_state::verification`) then makes
//! sure no marker came between the answer and the append.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use kraft_kafka_client::KafkaClient;
use kraft_metadata::TRANSACTION_STATE;

use super::coordinator::TransactionCoordinator;
use super::ops;
use crate::metadata_cache::{CacheQueries, MetadataCache};

/// A transactional write to verify.
#[derive(Clone, Copy, Debug)]
pub struct TxnWrite<'a> {
    pub transactional_id: &'a str,
    pub producer_id: i64,
    pub epoch: i16,
    pub topic: &'a str,
    pub partition: i32,
}

/// Asks transaction coordinators, for one broker.
pub struct TxnVerifier {
    node_id: i32,
    listener_name: String,
    cache: MetadataCache,
    timeout: Duration,
    /// Idle connections by coordinator address.
    idle: Mutex<HashMap<String, Vec<KafkaClient>>>,
}

impl std::fmt::Debug for TxnVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnVerifier")
            .field("node_id", &self.node_id)
            .finish()
    }
}

/// The most idle connections kept per coordinator.
const IDLE_PER_COORDINATOR: usize = 4;

impl TxnVerifier {
    pub fn new(
        node_id: i32,
        listener_name: String,
        cache: MetadataCache,
        timeout: Duration,
    ) -> TxnVerifier {
        TxnVerifier {
            node_id,
            listener_name,
            cache,
            timeout,
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `write`'s partition is in its producer's ongoing
    /// transaction; the error is the produce error code. `transactions` is
    /// this broker's coordinator.
    pub async fn verify(
        &self,
        transactions: &TransactionCoordinator,
        write: TxnWrite<'_>,
    ) -> Result<(), i16> {
        let coordinator = self.coordinator(transactions, write.transactional_id)?;
        let code = if coordinator == self.node_id {
            let partitions = [(write.topic.to_string(), write.partition)];
            match ops::verify_partitions(
                transactions,
                write.transactional_id,
                write.producer_id,
                write.epoch,
                &partitions,
            ) {
                Ok(codes) => codes.first().copied().unwrap_or(0),
                Err(e) => e.code(),
            }
        } else {
            self.ask(coordinator, write).await
        };
        match code {
            0 => Ok(()),
            code => Err(produce_error(code)),
        }
    }

    /// The broker leading the `__transaction_state` partition of `id`.
    fn coordinator(&self, transactions: &TransactionCoordinator, id: &str) -> Result<i32, i16> {
        let partition = transactions.partition_for(id);
        let image = self.cache.image();
        image
            .partitions_of(TRANSACTION_STATE)
            .and_then(|ps| ps.into_iter().find(|(p, _)| *p == partition))
            .map(|(_, registration)| registration.leader)
            .filter(|leader| *leader >= 0)
            .ok_or(ResponseError::NotEnoughReplicas.code())
    }

    /// AddPartitionsToTxn v4 (`verify_only`) to broker `coordinator`: the
    /// partition's code, or the error of the whole request.
    async fn ask(&self, coordinator: i32, write: TxnWrite<'_>) -> i16 {
        let unreachable = ResponseError::NotEnoughReplicas.code();
        let address = {
            let image = self.cache.image();
            match image.broker_endpoint(coordinator, &self.listener_name) {
                Some(e) => format!("{}:{}", e.host, e.port),
                None => return unreachable,
            }
        };
        let request = AddPartitionsToTxnRequest::default().with_transactions(vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(
                    write.transactional_id.to_string(),
                )))
                .with_producer_id(ProducerId(write.producer_id))
                .with_producer_epoch(write.epoch)
                .with_verify_only(true)
                .with_topics(vec![AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(StrBytes::from_string(write.topic.to_string())))
                    .with_partitions(vec![write.partition])]),
        ]);
        let attempt = async {
            // A kept connection the coordinator closed meanwhile fails
            // once; a fresh one follows.
            if let Some(mut client) = self.take_idle(&address) {
                if let Ok(response) = client.send(4, &request).await {
                    return Ok((client, response));
                }
            }
            let mut client = KafkaClient::connect(address.as_str())
                .await
                .map_err(|e| e.to_string())?;
            let response: AddPartitionsToTxnResponse =
                client.send(4, &request).await.map_err(|e| e.to_string())?;
            Ok::<_, String>((client, response))
        };
        let (client, response) = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                tracing::debug!(coordinator, error = %e, "transaction verification failed");
                return unreachable;
            }
            Err(_) => return unreachable,
        };
        self.put_idle(address, client);
        if response.error_code != 0 {
            return response.error_code;
        }
        response
            .results_by_transaction
            .iter()
            .flat_map(|t| &t.topic_results)
            .flat_map(|t| &t.results_by_partition)
            .map(|p| p.partition_error_code)
            .next()
            .unwrap_or(unreachable)
    }

    fn take_idle(&self, address: &str) -> Option<KafkaClient> {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(address)
            .and_then(Vec::pop)
    }

    fn put_idle(&self, address: String, client: KafkaClient) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let clients = idle.entry(address).or_default();
        if clients.len() < IDLE_PER_COORDINATOR {
            clients.push(client);
        }
    }
}

/// A coordinator's answer as the code a producer gets: the ones that mean
/// "not now" become NOT_ENOUGH_REPLICAS, which every producer retries.
fn produce_error(code: i16) -> i16 {
    use ResponseError::*;
    match ResponseError::try_from_code(code) {
        Some(
            NotCoordinator
            | CoordinatorNotAvailable
            | CoordinatorLoadInProgress
            | ConcurrentTransactions
            | RequestTimedOut,
        ) => NotEnoughReplicas.code(),
        _ => code,
    }
}
