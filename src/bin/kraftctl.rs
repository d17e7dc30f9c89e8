//! `kraftctl`: the admin CLI.
//!
//! - `kraftctl --bootstrap-controller HOST:PORT quorum describe --status`
//!   (or `--replication`) asks the controller quorum about itself,
//!   following redirects to the leader.
//! - `kraftctl --bootstrap-server HOST:PORT topics create|list|describe|delete`,
//!   `topics elect-leaders|reassign|reassignments` (see [`replication`]),
//!   `groups list|describe|delete` (see [`groups`]), `transactions
//!   list|describe` and `producers describe` (see [`transactions`]) and
//!   `cluster describe` speak the Kafka protocol to a broker, so they work
//!   against any Kafka cluster too.
//!
//! `--output json` (accepted anywhere on the command line) prints JSON for
//! scripts instead of a table.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use kraft::kafka_admin;
use kraft_proto::controller::{
    controller_request::Body, controller_response, DescribeQuorumRequest, DescribeQuorumResponse,
    ReplicaState,
};
use kraft_rpc::{error_name, ClientError, QuorumClient};
use serde_json::json;

#[path = "kraftctl/groups.rs"]
mod groups;
#[path = "kraftctl/replication.rs"]
mod replication;
#[path = "kraftctl/transactions.rs"]
mod transactions;

#[derive(Parser)]
#[command(
    name = "kraftctl",
    version,
    about = "Administer a Kraft (or Kafka KRaft) cluster"
)]
struct Cli {
    /// table (default) or json.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// A controller's CONTROLLER listener, host:port (quorum commands).
    #[arg(long, global = true, value_name = "HOST:PORT")]
    bootstrap_controller: Option<String>,
    /// A broker's Kafka listener, host:port (topics and cluster commands).
    #[arg(long, global = true, value_name = "HOST:PORT")]
    bootstrap_server: Option<String>,
    /// How long to keep trying to reach the active controller (or a
    /// transaction coordinator that is loading).
    #[arg(long, global = true, default_value_t = 10_000, value_name = "MS")]
    timeout_ms: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// The controller quorum.
    #[command(subcommand)]
    Quorum(QuorumCommand),
    /// Topics, over the Kafka protocol.
    #[command(subcommand)]
    Topics(TopicsCommand),
    /// The cluster as brokers see it, over the Kafka protocol.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Consumer groups, over the Kafka protocol.
    #[command(subcommand)]
    Groups(groups::GroupsCommand),
    /// Transactional ids, over the Kafka protocol.
    #[command(subcommand)]
    Transactions(transactions::TransactionsCommand),
    /// The producers a partition's log knows, over the Kafka protocol.
    #[command(subcommand)]
    Producers(transactions::ProducersCommand),
}

#[derive(Subcommand)]
enum TopicsCommand {
    /// Create a topic.
    Create {
        name: String,
        #[arg(long, default_value_t = -1)]
        partitions: i32,
        #[arg(long, default_value_t = -1)]
        replication_factor: i16,
        /// key=value topic config (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// List topic names.
    List,
    /// Partitions, leaders, replicas, ISR and leader epochs.
    Describe { name: Option<String> },
    /// Delete a topic.
    Delete { name: String },
    /// Elect preferred leaders: of every partition, a topic's, or one.
    ElectLeaders(replication::ElectLeadersArgs),
    /// Move partitions to new replicas, showing progress until done.
    Reassign(replication::ReassignArgs),
    /// Reassignments in progress.
    Reassignments {
        /// Only this topic's.
        #[arg(long)]
        topic: Option<String>,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Cluster id, controller, and brokers with their rack and fenced state.
    Describe,
}

#[derive(Subcommand)]
enum QuorumCommand {
    /// Leader, epoch, high watermark, voters and observers.
    Describe(DescribeArgs),
}

#[derive(Args)]
#[group(required = false, multiple = false)]
struct DescribeArgs {
    /// Quorum summary (the default).
    #[arg(long)]
    status: bool,
    /// One row per replica: log end offset, lag, last contact.
    #[arg(long)]
    replication: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kraftctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kraftctl: {}", kraft::error_report(&e));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let json = cli.output == Output::Json;
    let server = || {
        cli.bootstrap_server
            .clone()
            .ok_or_else(|| anyhow::anyhow!("this command needs --bootstrap-server HOST:PORT"))
    };
    match cli.command {
        Command::Topics(command) => topics(&server()?, command, json).await,
        Command::Groups(command) => {
            let mut client = kafka_admin::connect(&server()?).await?;
            groups::run(&mut client, command, json).await
        }
        Command::Transactions(command) => {
            let mut client = kafka_admin::connect(&server()?).await?;
            let timeout = Duration::from_millis(cli.timeout_ms);
            transactions::run(&mut client, command, timeout, json).await
        }
        Command::Producers(command) => {
            let mut client = kafka_admin::connect(&server()?).await?;
            transactions::run_producers(&mut client, command, json).await
        }
        Command::Cluster(ClusterCommand::Describe) => {
            let mut client = kafka_admin::connect(&server()?).await?;
            let cluster = kafka_admin::describe_cluster(&mut client).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&kafka_admin::cluster_json(&cluster))?
                );
            } else {
                println!("ClusterId:    {}", cluster.cluster_id);
                println!("Controller:   {}", cluster.controller_id);
                println!();
                println!("{:<8} {:<28} {:<10} State", "Broker", "Endpoint", "Rack");
                for b in &cluster.brokers {
                    let state = if b.fenced { "fenced" } else { "running" };
                    let endpoint = format!("{}:{}", b.host, b.port);
                    println!(
                        "{:<8} {:<28} {:<10} {state}",
                        b.id,
                        endpoint,
                        b.rack.as_deref().unwrap_or("-")
                    );
                }
            }
            Ok(())
        }
        Command::Quorum(QuorumCommand::Describe(args)) => {
            let Some(addr) = cli.bootstrap_controller else {
                bail!("quorum describe needs --bootstrap-controller HOST:PORT");
            };
            let quorum = describe_quorum(&addr, Duration::from_millis(cli.timeout_ms)).await?;
            match cli.output {
                Output::Json => {
                    println!("{}", serde_json::to_string_pretty(&quorum_json(&quorum))?)
                }
                Output::Table if args.replication => print_replication(&quorum),
                Output::Table => print_status(&quorum),
            }
            Ok(())
        }
    }
}

async fn topics(server: &str, command: TopicsCommand, json: bool) -> Result<()> {
    let mut client = kafka_admin::connect(server).await?;
    match command {
        TopicsCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => {
            let configs = configs
                .iter()
                .map(|c| {
                    c.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .ok_or_else(|| anyhow::anyhow!("--config '{c}' is not key=value"))
                })
                .collect::<Result<Vec<_>>>()?;
            let id = kafka_admin::create_topic(
                &mut client,
                &name,
                partitions,
                replication_factor,
                &configs,
            )
            .await?;
            if json {
                println!("{}", serde_json::json!({ "name": name, "topic_id": id }));
            } else {
                println!("Created topic {name} ({id}).");
            }
        }
        TopicsCommand::List => {
            let topics = kafka_admin::describe_topics(&mut client, None).await?;
            if json {
                let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
                println!("{}", serde_json::to_string_pretty(&names)?);
            } else {
                for t in &topics {
                    println!("{}", t.name);
                }
            }
        }
        TopicsCommand::Describe { name } => {
            let topics = kafka_admin::describe_topics(&mut client, name.as_deref()).await?;
            if json {
                let all: Vec<_> = topics.iter().map(kafka_admin::topic_json).collect();
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                for t in &topics {
                    println!(
                        "Topic: {}\tTopicId: {}\tPartitionCount: {}",
                        t.name,
                        t.topic_id,
                        t.partitions.len()
                    );
                    for p in &t.partitions {
                        println!(
                            "\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}\tLeaderEpoch: {}",
                            p.partition,
                            p.leader,
                            join(&p.replicas),
                            join(&p.isr),
                            p.leader_epoch
                        );
                    }
                }
            }
        }
        TopicsCommand::ElectLeaders(args) => {
            replication::elect_leaders(&mut client, args, json).await?
        }
        TopicsCommand::Reassign(args) => replication::reassign(&mut client, args, json).await?,
        TopicsCommand::Reassignments { topic } => {
            replication::reassignments(&mut client, topic, json).await?
        }
        TopicsCommand::Delete { name } => {
            kafka_admin::delete_topic(&mut client, &name).await?;
            if json {
                println!("{}", serde_json::json!({ "name": name, "deleted": true }));
            } else {
                println!("Deleted topic {name}.");
            }
        }
    }
    Ok(())
}

fn join(ids: &[i32]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

async fn describe_quorum(addr: &str, timeout: Duration) -> Result<DescribeQuorumResponse> {
    // kraftctl does not know the cluster id; DescribeQuorum is the one
    // request a controller answers without it.
    let mut client = QuorumClient::new(vec![addr.to_string()], "");
    let response = client
        .call_leader(Body::DescribeQuorum(DescribeQuorumRequest {}), timeout)
        .await
        .map_err(|e| match e {
            ClientError::Server(e) => anyhow::anyhow!("{}: {}", error_name(e.code), e.message),
            other => anyhow::anyhow!(other),
        })?;
    match response.body {
        Some(controller_response::Body::DescribeQuorum(q)) => Ok(q),
        _ => bail!("the controller sent an unexpected response to DescribeQuorum"),
    }
}

fn replica_json(r: &ReplicaState) -> serde_json::Value {
    json!({
        "id": r.id,
        "log_end_offset": r.log_end_offset,
        "lag": r.lag,
        "last_caught_up_ms_ago": r.last_caught_up_ms_ago,
    })
}

fn quorum_json(q: &DescribeQuorumResponse) -> serde_json::Value {
    json!({
        "cluster_id": q.cluster_id,
        "leader_id": q.leader_id,
        "leader_epoch": q.leader_epoch,
        "high_watermark": q.high_watermark,
        "snapshot_offset": q.snapshot_offset,
        "log_start_offset": q.log_start_offset,
        "log_end_offset": q.log_end_offset,
        "voters": q.voters.iter().map(replica_json).collect::<Vec<_>>(),
        "observers": q.observers.iter().map(replica_json).collect::<Vec<_>>(),
    })
}

fn print_status(q: &DescribeQuorumResponse) {
    let ids = |rs: &[ReplicaState]| {
        rs.iter()
            .map(|r| r.id.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let max_lag = q.voters.iter().map(|v| v.lag).max().unwrap_or(0);
    let max_lag_ms = q
        .voters
        .iter()
        .map(|v| v.last_caught_up_ms_ago)
        .max()
        .unwrap_or(0);
    println!("ClusterId:              {}", q.cluster_id);
    println!("LeaderId:               {}", q.leader_id);
    println!("LeaderEpoch:            {}", q.leader_epoch);
    println!("HighWatermark:          {}", q.high_watermark);
    println!("LogStartOffset:         {}", q.log_start_offset);
    println!("SnapshotOffset:         {}", q.snapshot_offset);
    println!("MaxFollowerLag:         {max_lag}");
    println!("MaxFollowerLagTimeMs:   {max_lag_ms}");
    println!("CurrentVoters:          [{}]", ids(&q.voters));
    println!("CurrentObservers:       [{}]", ids(&q.observers));
    println!();
    print_replication(q);
}

fn print_replication(q: &DescribeQuorumResponse) {
    println!(
        "{:<8} {:<14} {:<10} {:<20} Status",
        "NodeId", "LogEndOffset", "Lag", "LastCaughtUpMsAgo"
    );
    let rows = q
        .voters
        .iter()
        .map(|r| {
            (
                r,
                if r.id == q.leader_id {
                    "Leader"
                } else {
                    "Follower"
                },
            )
        })
        .chain(q.observers.iter().map(|r| (r, "Observer")));
    for (r, status) in rows {
        println!(
            "{:<8} {:<14} {:<10} {:<20} {status}",
            r.id, r.log_end_offset, r.lag, r.last_caught_up_ms_ago
        );
    }
}
