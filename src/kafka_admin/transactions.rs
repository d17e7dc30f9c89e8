//! Transaction admin over the Kafka protocol, for `kraftctl transactions`
//! and `kraftctl producers` (what `kafka-transactions.sh list`, `describe`
//! and `describe-producers` do): list every coordinator's transactional
//! ids, describe one id at its coordinator, and describe the producers a
//! partition's log knows. Like the rest of [`super`], it works against
//! Kraft or Kafka.
//!
//! In: a connected [`KafkaClient`] on any broker; the coordinators and
//! partition leaders are found through FindCoordinator and the metadata.
//! A coordinator that is loading or not yet known (the first lookup of a
//! transactional id creates `__transaction_state`) is asked again until
//! `timeout`. Out: plain structs for `kraftctl` to print as a table or
//! JSON, or an error starting with Kafka's error name.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeTransactionsRequest, FindCoordinatorRequest,
    ListTransactionsRequest, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use kraft_kafka_client::KafkaClient;
use serde_json::{json, Value};

use super::groups::brokers;
use super::{check, connect, describe_error, describe_topics};

const FIND_COORDINATOR_VERSION: i16 = 3;
const LIST_TRANSACTIONS_VERSION: i16 = 0;
const DESCRIBE_TRANSACTIONS_VERSION: i16 = 0;
const DESCRIBE_PRODUCERS_VERSION: i16 = 0;
/// FindCoordinator's key type for transactional ids.
const TRANSACTION_KEY: i8 = 1;
/// How long to wait between asks of a coordinator that is not ready.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Errors a coordinator answers while it is moving or loading: asked again.
fn retriable(code: i16) -> bool {
    [
        ResponseError::CoordinatorLoadInProgress,
        ResponseError::CoordinatorNotAvailable,
        ResponseError::NotCoordinator,
    ]
    .iter()
    .any(|e| e.code() == code)
}

/// A transactional id as `transactions list` shows it.
#[derive(Debug, Clone)]
pub struct TransactionListing {
    pub transactional_id: String,
    pub coordinator: i32,
    pub producer_id: i64,
    pub state: String,
}

/// A transactional id as `transactions describe` shows it.
#[derive(Debug, Clone)]
pub struct TransactionDescription {
    pub transactional_id: String,
    pub coordinator: i32,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub state: String,
    pub timeout_ms: i32,
    /// When the open transaction started, `None` without one.
    pub start_time_ms: Option<i64>,
    /// The partitions in the open transaction, as (topic, partition).
    pub partitions: Vec<(String, i32)>,
}

/// A producer as `producers describe` shows it.
#[derive(Debug, Clone)]
pub struct ProducerDescription {
    pub producer_id: i64,
    pub producer_epoch: i32,
    /// The coordinator epoch of its last marker, `None` if it has none.
    pub coordinator_epoch: Option<i32>,
    /// The last sequence it wrote, `None` if unknown.
    pub last_sequence: Option<i32>,
    pub last_timestamp: i64,
    /// The first offset of its open transaction, `None` without one.
    pub current_txn_start_offset: Option<i64>,
}

/// Every transactional id of every broker's coordinator, sorted by id.
pub async fn list_transactions(
    client: &mut KafkaClient,
    timeout: Duration,
) -> Result<Vec<TransactionListing>> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    for (id, addr) in brokers(client).await? {
        let mut broker = connect(&addr).await?;
        let response = loop {
            let response = broker
                .send(
                    LIST_TRANSACTIONS_VERSION,
                    &ListTransactionsRequest::default(),
                )
                .await?;
            if !retriable(response.error_code) || Instant::now() >= deadline {
                break response;
            }
            tokio::time::sleep(RETRY_BACKOFF).await;
        };
        check(response.error_code, None).with_context(|| format!("broker {id}"))?;
        out.extend(
            response
                .transaction_states
                .iter()
                .map(|t| TransactionListing {
                    transactional_id: t.transactional_id.0.to_string(),
                    coordinator: id,
                    producer_id: t.producer_id.0,
                    state: t.transaction_state.to_string(),
                }),
        );
    }
    out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
    Ok(out)
}

/// The coordinator of `transactional_id`: its id and a connection to it.
async fn coordinator(
    client: &mut KafkaClient,
    transactional_id: &str,
    deadline: Instant,
) -> Result<(i32, KafkaClient)> {
    let request = FindCoordinatorRequest::default()
        .with_key(s(transactional_id))
        .with_key_type(TRANSACTION_KEY);
    loop {
        let response = client.send(FIND_COORDINATOR_VERSION, &request).await?;
        if retriable(response.error_code) && Instant::now() < deadline {
            tokio::time::sleep(RETRY_BACKOFF).await;
            continue;
        }
        check(response.error_code, response.error_message.as_ref()).with_context(|| {
            format!("finding the coordinator of transactional id '{transactional_id}'")
        })?;
        let addr = format!("{}:{}", response.host.as_str(), response.port);
        return Ok((response.node_id.0, connect(&addr).await?));
    }
}

/// State, producer, timeout and partitions of one transactional id, asked
/// of its coordinator.
pub async fn describe_transaction(
    client: &mut KafkaClient,
    transactional_id: &str,
    timeout: Duration,
) -> Result<TransactionDescription> {
    let deadline = Instant::now() + timeout;
    let request = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(s(transactional_id))]);
    loop {
        let (coordinator_id, mut coordinator) =
            coordinator(client, transactional_id, deadline).await?;
        let response = coordinator
            .send(DESCRIBE_TRANSACTIONS_VERSION, &request)
            .await?;
        let state = response
            .transaction_states
            .first()
            .ok_or_else(|| anyhow!("the coordinator answered DescribeTransactions with no id"))?;
        if retriable(state.error_code) && Instant::now() < deadline {
            tokio::time::sleep(RETRY_BACKOFF).await;
            continue;
        }
        check(state.error_code, None)
            .with_context(|| format!("transactional id '{transactional_id}'"))?;
        let mut partitions: Vec<(String, i32)> = state
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
            .collect();
        partitions.sort();
        return Ok(TransactionDescription {
            transactional_id: transactional_id.to_string(),
            coordinator: coordinator_id,
            producer_id: state.producer_id.0,
            producer_epoch: state.producer_epoch,
            state: state.transaction_state.to_string(),
            timeout_ms: state.transaction_timeout_ms,
            start_time_ms: (state.transaction_start_time_ms >= 0)
                .then_some(state.transaction_start_time_ms),
            partitions,
        });
    }
}

/// The producers the log of `topic`-`partition` knows, asked of
/// `broker` (any replica) or else of the partition's leader, by producer
/// id; and the broker that answered.
pub async fn describe_producers(
    client: &mut KafkaClient,
    topic: &str,
    partition: i32,
    broker: Option<i32>,
) -> Result<(i32, Vec<ProducerDescription>)> {
    let target = match broker {
        Some(id) => id,
        None => {
            let described = describe_topics(client, Some(topic)).await?;
            let found = described
                .iter()
                .flat_map(|t| &t.partitions)
                .find(|p| p.partition == partition)
                .ok_or_else(|| {
                    anyhow!(describe_error(
                        ResponseError::UnknownTopicOrPartition.code(),
                        Some(format!("topic '{topic}' has no partition {partition}").as_str())
                    ))
                })?;
            if found.leader < 0 {
                bail!(describe_error(
                    ResponseError::LeaderNotAvailable.code(),
                    Some(format!("{topic}-{partition} has no leader").as_str())
                ));
            }
            found.leader
        }
    };
    let addrs = brokers(client).await?;
    let addr = addrs
        .get(&target)
        .ok_or_else(|| anyhow!("broker {target} is not in the cluster's metadata"))?;
    let mut at = connect(addr).await?;
    let request = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(TopicName(s(topic)))
        .with_partition_indexes(vec![partition])]);
    let response = at.send(DESCRIBE_PRODUCERS_VERSION, &request).await?;
    let answer = response
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| {
            anyhow!("broker {target} answered DescribeProducers without the partition")
        })?;
    check(answer.error_code, answer.error_message.as_ref())
        .with_context(|| format!("{topic}-{partition} at broker {target}"))?;
    let mut producers: Vec<ProducerDescription> = answer
        .active_producers
        .iter()
        .map(|p| ProducerDescription {
            producer_id: p.producer_id.0,
            producer_epoch: p.producer_epoch,
            coordinator_epoch: (p.coordinator_epoch >= 0).then_some(p.coordinator_epoch),
            last_sequence: (p.last_sequence >= 0).then_some(p.last_sequence),
            last_timestamp: p.last_timestamp,
            current_txn_start_offset: (p.current_txn_start_offset >= 0)
                .then_some(p.current_txn_start_offset),
        })
        .collect();
    producers.sort_by_key(|p| p.producer_id);
    Ok((target, producers))
}

pub fn listing_json(t: &TransactionListing) -> Value {
    json!({
        "transactional_id": t.transactional_id,
        "coordinator": t.coordinator,
        "producer_id": t.producer_id,
        "state": t.state,
    })
}

pub fn description_json(d: &TransactionDescription) -> Value {
    json!({
        "transactional_id": d.transactional_id,
        "coordinator": d.coordinator,
        "producer_id": d.producer_id,
        "producer_epoch": d.producer_epoch,
        "state": d.state,
        "timeout_ms": d.timeout_ms,
        "start_time_ms": d.start_time_ms,
        "partitions": d.partitions.iter().map(|(t, p)| json!({
            "topic": t,
            "partition": p,
        })).collect::<Vec<_>>(),
    })
}

pub fn producer_json(p: &ProducerDescription) -> Value {
    json!({
        "producer_id": p.producer_id,
        "producer_epoch": p.producer_epoch,
        "coordinator_epoch": p.coordinator_epoch,
        "last_sequence": p.last_sequence,
        "last_timestamp": p.last_timestamp,
        "current_txn_start_offset": p.current_txn_start_offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_coordinator_moves_are_asked_again() {
        assert!(retriable(ResponseError::CoordinatorLoadInProgress.code()));
        assert!(retriable(ResponseError::NotCoordinator.code()));
        assert!(!retriable(0));
        assert!(!retriable(ResponseError::TransactionalIdNotFound.code()));
    }
}
