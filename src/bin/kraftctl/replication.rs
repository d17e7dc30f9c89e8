//! `kraftctl topics elect-leaders | reassign | reassignments`: the
//! replication commands, over the Kafka protocol (see
//! `kraft::kafka_admin::replication`).
//!
//! In: parsed command-line arguments and a connected client. Out: lines on
//! stdout (a table, or JSON with `--output json`; while a reassignment is
//! followed, one line or JSON object per change) and an error when a
//! partition failed.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use kraft::kafka_admin::replication::{
    self, election_failed, ElectionType, PartitionOutcome, ReassignmentPlan, ReassignmentProgress,
};
use kraft::kafka_admin::{self};
use kraft_kafka_client::KafkaClient;
use serde_json::json;

use super::join;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Election {
    /// Move leadership to the first replica (if it is in sync and alive).
    Preferred,
    /// Let an out-of-sync replica lead a leaderless partition (Kraft
    /// refuses this; Kafka may accept it).
    Unclean,
}

#[derive(Args)]
pub struct ElectLeadersArgs {
    /// Only this topic's partitions (default: every partition).
    #[arg(long)]
    topic: Option<String>,
    /// Only this partition of --topic.
    #[arg(long, requires = "topic")]
    partition: Option<i32>,
    #[arg(long, value_enum, default_value_t = Election::Preferred)]
    election_type: Election,
}

#[derive(Args)]
pub struct ReassignArgs {
    /// The topic of the partition to move.
    #[arg(long, requires = "partition")]
    topic: Option<String>,
    /// The partition to move.
    #[arg(long, requires = "topic")]
    partition: Option<i32>,
    /// Its new replicas, preferred leader first: e.g. 4,5,6.
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    replicas: Vec<i32>,
    /// A kafka-reassign-partitions plan:
    /// {"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[4,5]}]}.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["topic", "partition", "replicas"])]
    reassignment_json_file: Option<PathBuf>,
    /// Cancel the reassignment of the named partitions instead.
    #[arg(long, conflicts_with = "replicas")]
    cancel: bool,
    /// Start the reassignment and return; do not follow it.
    #[arg(long)]
    no_wait: bool,
    /// How often to poll progress while following it.
    #[arg(long, default_value_t = 500, value_name = "MS")]
    poll_ms: u64,
}

pub async fn elect_leaders(
    client: &mut KafkaClient,
    args: ElectLeadersArgs,
    json: bool,
) -> Result<()> {
    let named: Option<Vec<(String, Vec<i32>)>> = match (&args.topic, args.partition) {
        (None, _) => None,
        (Some(topic), Some(p)) => Some(vec![(topic.clone(), vec![p])]),
        (Some(topic), None) => {
            let described = kafka_admin::describe_topics(client, Some(topic)).await?;
            let ids = described
                .iter()
                .find(|t| t.name == *topic)
                .map(|t| t.partitions.iter().map(|p| p.partition).collect())
                .unwrap_or_default();
            Some(vec![(topic.clone(), ids)])
        }
    };
    let election = match args.election_type {
        Election::Preferred => ElectionType::Preferred,
        Election::Unclean => ElectionType::Unclean,
    };
    let outcomes = replication::elect_leaders(client, election, named.as_deref()).await?;
    if json {
        let all: Vec<_> = outcomes.iter().map(PartitionOutcome::to_json).collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else if outcomes.is_empty() {
        println!("No partition needed an election.");
    } else {
        for o in &outcomes {
            match &o.error {
                None => println!("{}-{}: leader elected", o.topic, o.partition),
                Some(e) => println!("{}-{}: {e}", o.topic, o.partition),
            }
        }
    }
    let failed = outcomes.iter().filter(|o| election_failed(o)).count();
    if failed > 0 {
        bail!("the election failed for {failed} partition(s)");
    }
    Ok(())
}

pub async fn reassign(client: &mut KafkaClient, args: ReassignArgs, json: bool) -> Result<()> {
    let mut plan = match (&args.reassignment_json_file, &args.topic, args.partition) {
        (Some(file), _, _) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            replication::parse_reassignment_plan(&text)
                .with_context(|| format!("{} is not a reassignment plan", file.display()))?
        }
        (None, Some(topic), Some(partition)) => {
            if args.replicas.is_empty() && !args.cancel {
                bail!("give the new replicas with --replicas (or --cancel)");
            }
            vec![ReassignmentPlan {
                topic: topic.clone(),
                partition,
                replicas: Some(args.replicas.clone()),
            }]
        }
        _ => bail!("name a partition (--topic and --partition) or a --reassignment-json-file"),
    };
    if args.cancel {
        for p in &mut plan {
            p.replicas = None;
        }
    }
    let outcomes = replication::alter_reassignments(client, &plan).await?;
    let failed: Vec<&PartitionOutcome> = outcomes.iter().filter(|o| o.error.is_some()).collect();
    if json {
        let all: Vec<_> = outcomes.iter().map(PartitionOutcome::to_json).collect();
        println!("{}", json!({ "event": "started", "partitions": all }));
    } else {
        let verb = if args.cancel { "cancelled" } else { "started" };
        for o in &outcomes {
            match &o.error {
                None => println!("{}-{}: reassignment {verb}", o.topic, o.partition),
                Some(e) => println!("{}-{}: {e}", o.topic, o.partition),
            }
        }
    }
    if !failed.is_empty() {
        bail!("the reassignment failed for {} partition(s)", failed.len());
    }
    if args.no_wait || args.cancel {
        return Ok(());
    }
    let partitions = replication::plan_partitions(&plan);
    let poll = Duration::from_millis(args.poll_ms.max(10));
    let done = replication::wait_for_reassignments(client, &partitions, poll, |now| {
        print_progress(now, json)
    })
    .await?;
    if json {
        let all: Vec<_> = done.iter().map(ReassignmentProgress::to_json).collect();
        println!("{}", json!({ "event": "done", "partitions": all }));
    } else {
        println!("Reassignment of {} partition(s) complete.", done.len());
    }
    Ok(())
}

fn print_progress(now: &[ReassignmentProgress], json: bool) {
    if json {
        let all: Vec<_> = now.iter().map(ReassignmentProgress::to_json).collect();
        println!("{}", json!({ "event": "progress", "partitions": all }));
        return;
    }
    for p in now {
        let state = if p.in_progress {
            format!(
                "adding {:<8} removing {:<8}",
                or_dash(&p.adding),
                or_dash(&p.removing)
            )
        } else {
            "done".to_string()
        };
        let line = format!(
            "{}-{}\treplicas {:<12} isr {:<12} leader {:<4} {state}",
            p.topic,
            p.partition,
            join(&p.replicas),
            join(&p.isr),
            p.leader
        );
        println!("{}", line.trim_end());
    }
}

fn or_dash(ids: &[i32]) -> String {
    if ids.is_empty() {
        "-".to_string()
    } else {
        join(ids)
    }
}

pub async fn reassignments(
    client: &mut KafkaClient,
    topic: Option<String>,
    json: bool,
) -> Result<()> {
    let named = match topic {
        None => None,
        Some(topic) => {
            let described = kafka_admin::describe_topics(client, Some(&topic)).await?;
            let ids = described
                .iter()
                .find(|t| t.name == topic)
                .map(|t| t.partitions.iter().map(|p| p.partition).collect())
                .unwrap_or_default();
            Some(vec![(topic, ids)])
        }
    };
    let ongoing = replication::list_reassignments(client, named.as_deref()).await?;
    if json {
        let all: Vec<_> = ongoing.iter().map(|o| o.to_json()).collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    if ongoing.is_empty() {
        println!("No reassignment is in progress.");
        return Ok(());
    }
    println!(
        "{:<24} {:<10} {:<16} {:<12} Removing",
        "Topic", "Partition", "Replicas", "Adding"
    );
    for o in &ongoing {
        println!(
            "{:<24} {:<10} {:<16} {:<12} {}",
            o.topic,
            o.partition,
            join(&o.replicas),
            or_dash(&o.adding),
            or_dash(&o.removing)
        );
    }
    Ok(())
}
