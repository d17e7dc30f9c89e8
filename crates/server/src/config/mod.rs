//! `server.properties`: Kafka's config file format and key names, parsed
//! into a validated [`KraftConfig`].
//!
//! In: the file's text plus `--override key=value` pairs (overrides win).
//! Out: a `KraftConfig`, or a [`ConfigError`] naming the key at fault.
//! Keys this build does not know are returned as warnings, not errors, so a
//! Kafka config file can be reused as it is.
//!
//! The file's syntax is [`properties`]; the keys, their defaults and typed
//! checks are [`settings`]; roles, voters and listeners are [`listeners`].
//! This module puts them together and checks the settings against each
//! other.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use kraft_broker::{GroupCoordinatorConfig, TransactionCoordinatorConfig};
use kraft_metadata::topic_config::topic_config_for_broker_key;

mod listeners;
mod properties;
mod settings;
mod unsupported;

pub use listeners::{format_voters, parse_voters, Listener, Roles};
use listeners::{parse_listeners, parse_roles};
pub use properties::{apply_overrides, parse_properties};
use settings::{
    cleaner_settings, group_settings, invalid, log_defaults, transaction_settings, Props,
    KNOWN_KEYS,
};

/// Why a config file or an override was rejected; each names the key or
/// line at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid value '{value}' for {key}: {reason}")]
    Invalid {
        key: &'static str,
        value: String,
        reason: String,
    },
    #[error("missing required config {0}")]
    Missing(&'static str),
    #[error("line {line} of the config file is not 'key=value': {text}")]
    Syntax { line: usize, text: String },
    #[error("--override '{0}' is not key=value")]
    Override(String),
    #[error("{key}={value}: {reason}")]
    Unsupported {
        key: String,
        value: String,
        reason: String,
    },
}

/// A node's validated configuration.
#[derive(Clone, Debug)]
pub struct KraftConfig {
    pub roles: Roles,
    pub node_id: i32,
    /// `controller.quorum.voters`: id -> host:port.
    pub voters: BTreeMap<i32, String>,
    pub listeners: Vec<Listener>,
    pub controller_listener_names: Vec<String>,
    pub log_dirs: Vec<PathBuf>,
    pub metadata_log_dir: PathBuf,
    pub election_timeout: Duration,
    pub max_idle_interval: Duration,
    pub snapshot_max_bytes: u64,
    pub snapshot_max_interval: Duration,
    pub metadata_segment_bytes: u64,
    pub heartbeat_interval: Duration,
    pub session_timeout: Duration,
    pub rack: Option<String>,
    /// `advertised.listeners`, or `listeners` when unset: what brokers
    /// register and clients are told to connect to.
    pub advertised_listeners: Vec<Listener>,
    pub auto_create_topics_enable: bool,
    pub num_partitions: i32,
    pub default_replication_factor: i32,
    /// The broker's `log.*` defaults for topic configs, keyed by the topic
    /// config they default (`segment.bytes` for `log.segment.bytes`).
    pub log_defaults: BTreeMap<String, String>,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval: Duration,
    /// `producer.id.expiration.ms`: a partition forgets an idempotent
    /// producer whose last batch is older.
    pub producer_id_expiration: Duration,
    /// `auto.leader.rebalance.enable`.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds`, or the Kraft extension
    /// `leader.imbalance.check.interval.ms` when set (it wins).
    pub leader_imbalance_check_interval: Duration,
    /// `leader.imbalance.per.broker.percentage`.
    pub leader_imbalance_per_broker_percentage: u32,
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max: Duration,
    /// The log cleaner's keys (`log.cleaner.*`).
    pub cleaner: kraft_broker::replica::CleanerSettings,
    /// The group coordinator's keys (`offsets.topic.*`, `group.*`).
    pub groups: GroupCoordinatorConfig,
    /// The transaction coordinator's keys (`transaction.*`).
    pub transactions: TransactionCoordinatorConfig,
    /// `fetch.max.bytes`: the most record bytes one Fetch response carries
    /// (a consumer's `max_bytes` is capped to it).
    pub fetch_max_bytes: usize,
    /// `replica.fetch.response.max.bytes`: the same cap for a follower's
    /// fetch.
    pub replica_fetch_response_max_bytes: usize,
    /// `connections.max.idle.ms`: a client connection with no request for
    /// this long is closed.
    pub connections_max_idle: Duration,
    /// `max.connections`: client connections the Kafka listener keeps open.
    pub max_connections: usize,
    /// `max.connections.per.ip`: the same, from one IP address.
    pub max_connections_per_ip: usize,
    /// `queued.max.request.bytes`: the memory pool that every connection's
    /// request bytes (and the records of Fetch answers in flight) come from.
    pub queued_max_request_bytes: usize,
    /// Keys present in the file that this build does not use.
    pub unknown_keys: Vec<String>,
}

impl KraftConfig {
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<KraftConfig, ConfigError> {
        unsupported::check_unsupported(props)?;
        let p = Props(props);
        let roles = parse_roles(p.required("process.roles")?)?;
        let node_id = p.number::<i32>("node.id", 0)?;
        let voters = match p.get("controller.quorum.voters") {
            Some(v) => parse_voters(v)?,
            None => return Err(ConfigError::Missing("controller.quorum.voters")),
        };
        let listeners = parse_listeners("listeners", p.get("listeners").unwrap_or(""))?;
        let advertised_listeners = match p.get("advertised.listeners") {
            Some(v) => parse_listeners("advertised.listeners", v)?,
            None => listeners.clone(),
        };
        let controller_listener_names: Vec<String> = p
            .required("controller.listener.names")?
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let log_dirs: Vec<PathBuf> = p
            .get("log.dirs")
            .or_else(|| p.get("log.dir"))
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
        if log_dirs.is_empty() {
            return Err(ConfigError::Missing("log.dirs"));
        }
        let metadata_log_dir = p
            .get("metadata.log.dir")
            .map(PathBuf::from)
            .unwrap_or_else(|| log_dirs[0].clone());
        let config = KraftConfig {
            roles,
            node_id,
            voters,
            listeners,
            controller_listener_names,
            log_dirs,
            metadata_log_dir,
            election_timeout: p.millis("controller.quorum.election.timeout.ms", 10)?,
            max_idle_interval: p.millis("metadata.max.idle.interval.ms", 0)?,
            snapshot_max_bytes: p
                .number::<u64>("metadata.log.max.record.bytes.between.snapshots", 1)?,
            snapshot_max_interval: p.millis("metadata.log.max.snapshot.interval.ms", 1)?,
            metadata_segment_bytes: p.number::<u64>("metadata.log.segment.bytes", 4096)?,
            heartbeat_interval: p.millis("broker.heartbeat.interval.ms", 1)?,
            session_timeout: p.millis("broker.session.timeout.ms", 1)?,
            rack: p
                .get("broker.rack")
                .filter(|r| !r.is_empty())
                .map(str::to_string),
            advertised_listeners,
            auto_create_topics_enable: p.boolean("auto.create.topics.enable")?,
            num_partitions: p.number::<i32>("num.partitions", 1)?,
            default_replication_factor: p.number::<i32>("default.replication.factor", 1)?,
            log_defaults: log_defaults(props)?,
            retention_check_interval: p.millis("log.retention.check.interval.ms", 1)?,
            producer_id_expiration: p.millis("producer.id.expiration.ms", 1)?,
            auto_leader_rebalance_enable: p.boolean("auto.leader.rebalance.enable")?,
            leader_imbalance_check_interval: match p.get("leader.imbalance.check.interval.ms") {
                Some(_) => p.millis("leader.imbalance.check.interval.ms", 1)?,
                None => Duration::from_secs(
                    p.number::<u64>("leader.imbalance.check.interval.seconds", 1)?,
                ),
            },
            leader_imbalance_per_broker_percentage: p
                .number::<u32>("leader.imbalance.per.broker.percentage", 0)?,
            replica_lag_time_max: p.millis("replica.lag.time.max.ms", 1)?,
            cleaner: cleaner_settings(&p)?,
            groups: group_settings(&p)?,
            transactions: transaction_settings(&p)?,
            fetch_max_bytes: p.number::<usize>("fetch.max.bytes", 1024)?,
            replica_fetch_response_max_bytes: p
                .number::<usize>("replica.fetch.response.max.bytes", 1024)?,
            connections_max_idle: p.millis("connections.max.idle.ms", 1)?,
            max_connections: p.number::<usize>("max.connections", 1)?,
            max_connections_per_ip: p.number::<usize>("max.connections.per.ip", 1)?,
            queued_max_request_bytes: p.number::<usize>("queued.max.request.bytes", 1 << 20)?,
            unknown_keys: props
                .keys()
                .filter(|k| !KNOWN_KEYS.iter().any(|(known, _)| known == k))
                .filter(|k| topic_config_for_broker_key(k).is_none())
                .cloned()
                .collect(),
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.roles.controller {
            if !self.voters.contains_key(&self.node_id) {
                return Err(invalid(
                    "controller.quorum.voters",
                    &format_voters(&self.voters),
                    &format!(
                        "a controller's node.id ({}) must be one of the voters",
                        self.node_id
                    ),
                ));
            }
            if self.controller_listener().is_none() {
                return Err(invalid(
                    "listeners",
                    &self
                        .listeners
                        .iter()
                        .map(|l| format!("{}://{}", l.name, l.address()))
                        .collect::<Vec<_>>()
                        .join(","),
                    &format!(
                        "a controller needs a listener named in controller.listener.names ({})",
                        self.controller_listener_names.join(",")
                    ),
                ));
            }
        }
        if self.roles.broker && self.broker_listener().is_none() {
            return Err(invalid(
                "listeners",
                &self.listeners.iter().map(|l| format!("{}://{}", l.name, l.address())).collect::<Vec<_>>().join(","),
                "a broker needs a listener that is not a controller listener (e.g. PLAINTEXT://host:9092)",
            ));
        }
        if !self.roles.controller && self.voters.contains_key(&self.node_id) {
            return Err(invalid(
                "node.id",
                &self.node_id.to_string(),
                "a broker-only node must not be one of controller.quorum.voters",
            ));
        }
        Ok(())
    }

    /// The listener controllers serve on: the first one named in
    /// `controller.listener.names`.
    pub fn controller_listener(&self) -> Option<&Listener> {
        self.controller_listener_names
            .iter()
            .find_map(|name| self.listeners.iter().find(|l| &l.name == name))
    }

    /// The listener a broker serves Kafka clients on: the first one that is
    /// not a controller listener.
    pub fn broker_listener(&self) -> Option<&Listener> {
        self.listeners
            .iter()
            .find(|l| !self.controller_listener_names.contains(&l.name))
    }

    /// Every directory that must hold a matching `meta.properties`.
    pub fn all_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = self.log_dirs.clone();
        if !dirs.contains(&self.metadata_log_dir) {
            dirs.push(self.metadata_log_dir.clone());
        }
        dirs
    }

    /// Where the Raft log of `__cluster_metadata` lives.
    pub fn cluster_metadata_dir(&self) -> PathBuf {
        self.metadata_log_dir.join("__cluster_metadata-0")
    }
}

#[cfg(test)]
mod tests;
