//! `kraftctl groups list | describe NAME | delete NAME | delete-offsets
//! NAME --topic T [--partition P]`: consumer groups, over the Kafka
//! protocol (see `kraft::kafka_admin::groups`).
//!
//! In: parsed command-line arguments and a connected client. Out: a table
//! on stdout (`describe` like `kafka-consumer-groups.sh --describe`: one
//! row per partition with its committed offset, log end and lag, then the
//! members with their assignments; `delete-offsets` like
//! `kafka-consumer-groups.sh --delete-offsets`: one row per partition,
//! Successful or its error), or JSON with `--output json`.

use anyhow::Result;
use clap::Subcommand;
use kraft::kafka_admin::groups::{self, GroupDescription};
use kraft_kafka_client::KafkaClient;
use serde_json::json;

#[derive(Subcommand)]
pub enum GroupsCommand {
    /// Every group on every broker, with its state.
    List,
    /// State, protocol, members and their assignments, committed offsets
    /// and lag per partition.
    Describe { name: String },
    /// Delete an empty group and its committed offsets.
    Delete { name: String },
    /// Delete a group's committed offsets of a topic (all its partitions,
    /// or one): any for an empty group, those of topics it does not
    /// subscribe to for an active one.
    DeleteOffsets {
        name: String,
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: Option<i32>,
    },
}

pub async fn run(client: &mut KafkaClient, command: GroupsCommand, json: bool) -> Result<()> {
    match command {
        GroupsCommand::List => {
            let listed = groups::list_groups(client).await?;
            if json {
                let all: Vec<_> = listed.iter().map(groups::listing_json).collect();
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                println!(
                    "{:<32} {:<20} {:<12} Coordinator",
                    "Group", "State", "Protocol"
                );
                for g in &listed {
                    println!(
                        "{:<32} {:<20} {:<12} {}",
                        g.group_id,
                        g.state,
                        dash(&g.protocol_type),
                        g.coordinator
                    );
                }
            }
        }
        GroupsCommand::Describe { name } => {
            let described = groups::describe_group(client, &name).await?;
            if json {
                let value = groups::description_json(&described);
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                print_description(&described);
            }
        }
        GroupsCommand::Delete { name } => {
            groups::delete_group(client, &name).await?;
            if json {
                println!("{}", json!({ "group_id": name, "deleted": true }));
            } else {
                println!("Deleted group {name}.");
            }
        }
        GroupsCommand::DeleteOffsets {
            name,
            topic,
            partition,
        } => {
            let results = groups::delete_offsets(client, &name, &topic, partition).await?;
            let failed = results.iter().filter(|r| r.error.is_some()).count();
            if json {
                let all: Vec<_> = results
                    .iter()
                    .map(|r| {
                        json!({
                            "topic": r.topic,
                            "partition": r.partition,
                            "error": r.error,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                if failed == 0 {
                    println!("Request succeeded for deleting offsets from group {name}.");
                } else {
                    println!("Encountered some partition-level errors, see the details below:");
                }
                println!();
                println!("{:<30} {:<15} Status", "Topic", "Partition");
                for r in &results {
                    let status = match &r.error {
                        None => "Successful".to_string(),
                        Some(e) => format!("Error: {e}"),
                    };
                    println!("{:<30} {:<15} {}", r.topic, r.partition, status);
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} of {} partitions were not deleted", results.len());
            }
        }
    }
    Ok(())
}

fn dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

fn number(n: Option<i64>) -> String {
    n.map_or_else(|| "-".to_string(), |n| n.to_string())
}

fn print_description(d: &GroupDescription) {
    println!("Group:        {}", d.group_id);
    println!("State:        {}", d.state);
    println!(
        "Protocol:     {}/{}",
        dash(&d.protocol_type),
        dash(&d.protocol)
    );
    println!("Coordinator:  {}", d.coordinator);
    println!("Members:      {}", d.members.len());
    println!();
    println!(
        "{:<24} {:<10} {:<15} {:<15} {:<8} Consumer",
        "Topic", "Partition", "CurrentOffset", "LogEndOffset", "Lag"
    );
    for p in &d.partitions {
        println!(
            "{:<24} {:<10} {:<15} {:<15} {:<8} {}",
            p.topic,
            p.partition,
            number(p.committed),
            number(p.log_end),
            number(p.lag),
            p.member_id.as_deref().unwrap_or("-")
        );
    }
    if d.members.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<48} {:<16} {:<16} {:<16} Assignment",
        "Member", "InstanceId", "ClientId", "Host"
    );
    for m in &d.members {
        let assignment = m
            .assignment
            .iter()
            .map(|(t, ps)| {
                let ps: Vec<String> = ps.iter().map(|p| p.to_string()).collect();
                format!("{t}:{}", ps.join(","))
            })
            .collect::<Vec<_>>()
            .join(" ");
        println!(
            "{:<48} {:<16} {:<16} {:<16} {}",
            m.member_id,
            m.group_instance_id.as_deref().unwrap_or("-"),
            dash(&m.client_id),
            dash(&m.client_host),
            dash(&assignment)
        );
    }
}
