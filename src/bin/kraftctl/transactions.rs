//! `kraftctl transactions list | describe ID` and `kraftctl producers
//! describe --topic T --partition P`: transactional ids and the producers
//! a partition's log knows, over the Kafka protocol (see
//! `kraft::kafka_admin::transactions`).
//!
//! In: parsed command-line arguments, a connected client and how long to
//! wait for a coordinator that is loading. Out: a table on stdout with
//! `kafka-transactions.sh`'s columns (`list`, `describe`,
//! `describe-producers`), or JSON with `--output json`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use clap::{Args, Subcommand};
use kraft::kafka_admin::transactions::{self, ProducerDescription, TransactionDescription};
use kraft_kafka_client::KafkaClient;
use serde_json::json;

#[derive(Subcommand)]
pub enum TransactionsCommand {
    /// Every transactional id of every coordinator, with its producer id
    /// and state.
    List,
    /// One transactional id at its coordinator: producer, state, timeout,
    /// how long its transaction has been open and its partitions.
    Describe { transactional_id: String },
}

#[derive(Subcommand)]
pub enum ProducersCommand {
    /// The producers a partition's log knows: epoch, last sequence, last
    /// timestamp, coordinator epoch and open transaction's first offset.
    Describe(DescribeProducersArgs),
}

#[derive(Args)]
pub struct DescribeProducersArgs {
    #[arg(long)]
    topic: String,
    #[arg(long)]
    partition: i32,
    /// Ask this replica's broker instead of the partition's leader.
    #[arg(long)]
    broker_id: Option<i32>,
}

pub async fn run(
    client: &mut KafkaClient,
    command: TransactionsCommand,
    timeout: Duration,
    json: bool,
) -> Result<()> {
    match command {
        TransactionsCommand::List => {
            let listed = transactions::list_transactions(client, timeout).await?;
            if json {
                let all: Vec<_> = listed.iter().map(transactions::listing_json).collect();
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                let rows = listed
                    .iter()
                    .map(|t| {
                        vec![
                            t.transactional_id.clone(),
                            t.coordinator.to_string(),
                            t.producer_id.to_string(),
                            t.state.clone(),
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "TransactionalId",
                        "Coordinator",
                        "ProducerId",
                        "TransactionState",
                    ],
                    rows,
                );
            }
        }
        TransactionsCommand::Describe { transactional_id } => {
            let described =
                transactions::describe_transaction(client, &transactional_id, timeout).await?;
            if json {
                let value = transactions::description_json(&described);
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                print_description(&described, now_ms());
            }
        }
    }
    Ok(())
}

pub async fn run_producers(
    client: &mut KafkaClient,
    command: ProducersCommand,
    json: bool,
) -> Result<()> {
    let ProducersCommand::Describe(args) = command;
    let (broker, producers) =
        transactions::describe_producers(client, &args.topic, args.partition, args.broker_id)
            .await?;
    if json {
        let value = json!({
            "topic": args.topic,
            "partition": args.partition,
            "broker": broker,
            "producers": producers.iter().map(transactions::producer_json).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print_producers(&producers);
    }
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn number<T: ToString>(n: Option<T>) -> String {
    n.map_or_else(|| "None".to_string(), |n| n.to_string())
}

fn print_description(d: &TransactionDescription, now_ms: i64) {
    let partitions = d
        .partitions
        .iter()
        .map(|(t, p)| format!("{t}-{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let row = vec![
        d.coordinator.to_string(),
        d.transactional_id.clone(),
        d.producer_id.to_string(),
        d.producer_epoch.to_string(),
        d.state.clone(),
        d.timeout_ms.to_string(),
        number(d.start_time_ms),
        number(d.start_time_ms.map(|start| (now_ms - start).max(0))),
        partitions,
    ];
    print_table(
        &[
            "CoordinatorId",
            "TransactionalId",
            "ProducerId",
            "ProducerEpoch",
            "TransactionState",
            "TransactionTimeoutMs",
            "CurrentTransactionStartTimeMs",
            "TransactionDurationMs",
            "TopicPartitions",
        ],
        vec![row],
    );
}

fn print_producers(producers: &[ProducerDescription]) {
    let rows = producers
        .iter()
        .map(|p| {
            vec![
                p.producer_id.to_string(),
                p.producer_epoch.to_string(),
                number(p.coordinator_epoch),
                number(p.last_sequence),
                p.last_timestamp.to_string(),
                number(p.current_txn_start_offset),
            ]
        })
        .collect();
    print_table(
        &[
            "ProducerId",
            "ProducerEpoch",
            "LatestCoordinatorEpoch",
            "LastSequence",
            "LastTimestamp",
            "CurrentTransactionStartOffset",
        ],
        rows,
    );
}

/// Prints `header` and `rows` as left-aligned columns as wide as their
/// widest cell, two spaces apart.
fn print_table(header: &[&str], rows: Vec<Vec<String>>) {
    print!("{}", table(header, rows));
}

fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(header.to_vec());
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let out = table(
            &["Id", "State"],
            vec![vec!["long-id".to_string(), "Ongoing".to_string()]],
        );
        assert_eq!(out, "Id       State\nlong-id  Ongoing\n");
    }
}
