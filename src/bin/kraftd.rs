//! `kraftd`: runs a Kraft node.
//!
//! - `kraftd` with no arguments: a single combined node for development
//!   (controller on 127.0.0.1:9093, broker listener 127.0.0.1:9092, data in
//!   `./kraft-data`), formatted on first start.
//! - `kraftd --config server.properties [--override key=value ...]`
//! - `kraftd format --config FILE --cluster-id ID [--ignore-formatted]`
//! - `kraftd random-uuid`
//!
//! SIGTERM or Ctrl-C stops the node gracefully.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use kraft_server::config::{apply_overrides, parse_properties};
use kraft_server::meta_properties::{self, MetaProperties};
use kraft_server::node::BoundListeners;
use kraft_server::{KraftConfig, KraftNode, NodeOptions};

#[derive(Parser)]
#[command(
    name = "kraftd",
    version,
    about = "Kraft: a Kafka-compatible broker in KRaft mode"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// server.properties; without it, a development node starts (see --help).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// key=value, applied on top of the config file (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Write meta.properties into every log directory of this node.
    Format {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long = "override", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// The cluster id, the same on every node (from `kraftd random-uuid`).
        #[arg(long, short = 't')]
        cluster_id: String,
        /// Leave already-formatted directories as they are instead of failing.
        #[arg(long, short = 'g')]
        ignore_formatted: bool,
    },
    /// Print a new random cluster id.
    RandomUuid,
}

/// The development node `kraftd` runs with no arguments. Like Kafka's
/// sample `server.properties`, it keeps `__consumer_offsets` and
/// `__transaction_state` on its one broker and starts a group's first
/// rebalance without delay.
const DEV_CONFIG: &str = "\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:9093
listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093
controller.listener.names=CONTROLLER
log.dirs=./kraft-data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
";

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,raft=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::RandomUuid) => {
            println!("{}", meta_properties::random_cluster_id());
            Ok(())
        }
        Some(Command::Format {
            config,
            overrides,
            cluster_id,
            ignore_formatted,
        }) => format(&config, &overrides, &cluster_id, ignore_formatted),
        None => run(cli.config, &cli.overrides),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kraftd: {}", kraft::error_report(&e));
            ExitCode::FAILURE
        }
    }
}

fn load_config(path: Option<&PathBuf>, overrides: &[String]) -> Result<KraftConfig> {
    let mut props: BTreeMap<String, String> = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            parse_properties(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => parse_properties(DEV_CONFIG)?,
    };
    apply_overrides(&mut props, overrides)?;
    let config = KraftConfig::from_properties(&props)?;
    for key in &config.unknown_keys {
        tracing::warn!(key = %key, "unknown config key ignored");
    }
    Ok(config)
}

fn format(
    path: &PathBuf,
    overrides: &[String],
    cluster_id: &str,
    ignore_formatted: bool,
) -> Result<()> {
    let config = load_config(Some(path), overrides)?;
    let meta = MetaProperties {
        cluster_id: cluster_id.to_string(),
        node_id: config.node_id,
    };
    let written = meta_properties::format(&config.all_dirs(), &meta, ignore_formatted)?;
    for dir in &written {
        println!(
            "Formatted {} for cluster {cluster_id}, node {}",
            dir.display(),
            config.node_id
        );
    }
    if written.is_empty() {
        println!("All directories were already formatted.");
    }
    Ok(())
}

fn run(path: Option<PathBuf>, overrides: &[String]) -> Result<()> {
    let dev_mode = path.is_none();
    let config = load_config(path.as_ref(), overrides)?;
    if dev_mode {
        // Development mode formats for you, once.
        let dirs = config.all_dirs();
        if dirs
            .iter()
            .all(|d| matches!(meta_properties::read(d), Ok(None)))
        {
            let meta = MetaProperties {
                cluster_id: meta_properties::random_cluster_id(),
                node_id: config.node_id,
            };
            meta_properties::format(&dirs, &meta, true)?;
            tracing::info!(cluster_id = %meta.cluster_id, "formatted ./kraft-data for a development node");
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(config))
}

async fn serve(config: KraftConfig) -> Result<()> {
    let node = KraftNode::start(&config, BoundListeners::default(), NodeOptions::default()).await?;
    tracing::info!(
        node = config.node_id,
        cluster_id = %node.cluster_id,
        controller = ?node.controller_addr(),
        broker = ?node.broker_addr(),
        "kraftd started"
    );
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let fatal = tokio::select! {
        _ = sigterm.recv() => None,
        _ = tokio::signal::ctrl_c() => None,
        reason = node.wait_fatal() => Some(reason),
    };
    tracing::info!("shutting down");
    node.stop().await;
    match fatal {
        Some(reason) => anyhow::bail!("stopped on an error: {reason}"),
        None => Ok(()),
    }
}
