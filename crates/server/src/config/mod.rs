//! `server.properties`: Kafka's config file format and key names, parsed
//! into a validated [`KraftConfig`].
//!
//! In: the file's text plus `--override key=value` pairs (overrides win).
//! Out: a `KraftConfig`, or a [`ConfigError`] naming the key at fault.
//! Keys this build does not know are returned as warnings, not errors, so a
//! Kafka config file can be reused as it is.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    pub broker: bool,
    pub controller: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl Listener {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
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
    /// `auto.leader.rebalance.enable`.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds`, or the Kraft extension
    /// `leader.imbalance.check.interval.ms` when set (it wins).
    pub leader_imbalance_check_interval: Duration,
    /// `leader.imbalance.per.broker.percentage`.
    pub leader_imbalance_per_broker_percentage: u32,
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max: Duration,
    /// The group coordinator's keys (`offsets.topic.*`, `group.*`).
    pub groups: GroupSettings,
    /// Keys present in the file that this build does not use.
    pub unknown_keys: Vec<String>,
}

/// Every key this build reads, with its default (None: no default).
const KNOWN_KEYS: &[(&str, Option<&str>)] = &[
    ("process.roles", None),
    ("node.id", None),
    ("controller.quorum.voters", None),
    ("listeners", None),
    ("controller.listener.names", Some("CONTROLLER")),
    ("log.dirs", None),
    ("log.dir", Some("/tmp/kraft-logs")),
    ("metadata.log.dir", None),
    // Kafka's default is 1000 ms; see README "Failover" for why Kraft's is lower.
    ("controller.quorum.election.timeout.ms", Some("300")),
    ("metadata.max.idle.interval.ms", Some("500")),
    (
        "metadata.log.max.record.bytes.between.snapshots",
        Some("20971520"),
    ),
    ("metadata.log.max.snapshot.interval.ms", Some("3600000")),
    ("metadata.log.segment.bytes", Some("16777216")),
    ("broker.heartbeat.interval.ms", Some("2000")),
    ("broker.session.timeout.ms", Some("9000")),
    ("broker.rack", None),
    ("advertised.listeners", None),
    ("auto.create.topics.enable", Some("true")),
    ("num.partitions", Some("1")),
    ("default.replication.factor", Some("1")),
    ("log.retention.check.interval.ms", Some("300000")),
    ("replica.lag.time.max.ms", Some("30000")),
    ("log.retention.hours", None),
    ("log.retention.minutes", None),
    ("log.roll.hours", None),
    ("auto.leader.rebalance.enable", Some("true")),
    ("leader.imbalance.check.interval.seconds", Some("300")),
    // Kraft extension (tests, small clusters): the interval in ms; wins
    // over the seconds key when set.
    ("leader.imbalance.check.interval.ms", None),
    ("leader.imbalance.per.broker.percentage", Some("10")),
    ("offsets.topic.num.partitions", Some("50")),
    ("offsets.topic.replication.factor", Some("3")),
    ("offsets.topic.segment.bytes", Some("104857600")),
    ("offsets.commit.timeout.ms", Some("5000")),
    ("offset.metadata.max.bytes", Some("4096")),
    ("group.initial.rebalance.delay.ms", Some("3000")),
    ("group.min.session.timeout.ms", Some("6000")),
    ("group.max.session.timeout.ms", Some("1800000")),
];

/// The group coordinator's settings, as Kafka names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSettings {
    /// `offsets.topic.num.partitions`.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor`.
    pub offsets_topic_replication_factor: i16,
    /// `offsets.topic.segment.bytes`.
    pub offsets_topic_segment_bytes: i64,
    /// `offsets.commit.timeout.ms`.
    pub offsets_commit_timeout: Duration,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay: Duration,
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
}

fn group_settings(p: &Props<'_>) -> Result<GroupSettings, ConfigError> {
    let settings = GroupSettings {
        offsets_topic_num_partitions: p.number::<i32>("offsets.topic.num.partitions", 1)?,
        offsets_topic_replication_factor: p.number::<i16>("offsets.topic.replication.factor", 1)?,
        offsets_topic_segment_bytes: p.number::<i64>("offsets.topic.segment.bytes", 14)?,
        offsets_commit_timeout: p.millis("offsets.commit.timeout.ms", 1)?,
        offset_metadata_max_bytes: p.number::<usize>("offset.metadata.max.bytes", 0)?,
        initial_rebalance_delay: p.millis("group.initial.rebalance.delay.ms", 0)?,
        min_session_timeout_ms: p.number::<i32>("group.min.session.timeout.ms", 0)?,
        max_session_timeout_ms: p.number::<i32>("group.max.session.timeout.ms", 0)?,
    };
    if settings.min_session_timeout_ms > settings.max_session_timeout_ms {
        return Err(invalid(
            "group.min.session.timeout.ms",
            &settings.min_session_timeout_ms.to_string(),
            "must not be larger than group.max.session.timeout.ms",
        ));
    }
    Ok(settings)
}

/// Broker keys that default a topic config, with the topic key and whether
/// the value is a number (else it is a timestamp type).
const LOG_DEFAULT_KEYS: &[(&str, &str, bool)] = &[
    ("log.segment.bytes", "segment.bytes", true),
    ("log.roll.ms", "segment.ms", true),
    ("log.retention.ms", "retention.ms", true),
    ("log.retention.bytes", "retention.bytes", true),
    ("log.flush.interval.messages", "flush.messages", true),
    ("log.flush.interval.ms", "flush.ms", true),
    ("message.max.bytes", "max.message.bytes", true),
    ("log.index.interval.bytes", "index.interval.bytes", true),
    ("log.index.size.max.bytes", "segment.index.bytes", true),
    ("min.insync.replicas", "min.insync.replicas", true),
    (
        "log.message.timestamp.after.max.ms",
        "message.timestamp.after.max.ms",
        true,
    ),
    (
        "log.message.timestamp.type",
        "message.timestamp.type",
        false,
    ),
];

/// The topic-config defaults set in `props`. Kafka's precedence holds:
/// `log.retention.ms` over `.minutes` over `.hours`, `log.roll.ms` over
/// `log.roll.hours`.
fn log_defaults(props: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for &(key, topic_key, numeric) in LOG_DEFAULT_KEYS {
        let Some(value) = props.get(key) else {
            continue;
        };
        let value = value.trim();
        if numeric && value.parse::<i64>().is_err() {
            return Err(invalid(key, value, "expected a whole number"));
        }
        if !numeric && value != "CreateTime" && value != "LogAppendTime" {
            return Err(invalid(key, value, "expected CreateTime or LogAppendTime"));
        }
        out.insert(topic_key.to_string(), value.to_string());
    }
    let scaled: [(&'static str, &str, i64); 3] = [
        ("log.retention.minutes", "retention.ms", 60_000),
        ("log.retention.hours", "retention.ms", 3_600_000),
        ("log.roll.hours", "segment.ms", 3_600_000),
    ];
    for (key, topic_key, scale) in scaled {
        let Some(value) = props.get(key) else {
            continue;
        };
        let n: i64 = value
            .trim()
            .parse()
            .map_err(|_| invalid(key, value, "expected a whole number"))?;
        out.entry(topic_key.to_string()).or_insert_with(|| {
            if n < 0 {
                "-1".to_string()
            } else {
                n.saturating_mul(scale).to_string()
            }
        });
    }
    Ok(out)
}

/// Parses Java-properties text: `key=value` or `key: value` lines, `#` and
/// `!` comments, and `\` line continuations.
pub fn parse_properties(text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    let mut start_line = 0;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if logical.is_empty() {
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            start_line = n + 1;
        }
        if let Some(body) = line.strip_suffix('\\') {
            logical.push_str(body);
            continue;
        }
        logical.push_str(line);
        let entry = std::mem::take(&mut logical);
        let Some(split) = entry.find(['=', ':']) else {
            return Err(ConfigError::Syntax {
                line: start_line,
                text: entry,
            });
        };
        let key = entry[..split].trim().to_string();
        let value = entry[split + 1..].trim().to_string();
        out.insert(key, value);
    }
    Ok(out)
}

/// Applies `key=value` overrides on top of `props`.
pub fn apply_overrides(
    props: &mut BTreeMap<String, String>,
    overrides: &[String],
) -> Result<(), ConfigError> {
    for item in overrides {
        let Some((key, value)) = item.split_once('=') else {
            return Err(ConfigError::Override(item.clone()));
        };
        props.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(())
}

struct Props<'a>(&'a BTreeMap<String, String>);

impl Props<'_> {
    fn get(&self, key: &'static str) -> Option<&str> {
        self.0.get(key).map(String::as_str).or_else(|| {
            KNOWN_KEYS
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, d)| *d)
        })
    }

    fn required(&self, key: &'static str) -> Result<&str, ConfigError> {
        self.get(key).ok_or(ConfigError::Missing(key))
    }

    fn number<T>(&self, key: &'static str, min: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let value = self.required(key)?;
        let parsed: T = value
            .parse()
            .map_err(|_| invalid(key, value, "expected a whole number"))?;
        if parsed < min {
            return Err(invalid(key, value, &format!("must be at least {min}")));
        }
        Ok(parsed)
    }

    fn boolean(&self, key: &'static str) -> Result<bool, ConfigError> {
        let value = self.required(key)?;
        match value.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(invalid(key, value, "expected true or false")),
        }
    }

    fn millis(&self, key: &'static str, min: u64) -> Result<Duration, ConfigError> {
        self.number::<u64>(key, min).map(Duration::from_millis)
    }
}

fn invalid(key: &'static str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

impl KraftConfig {
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<KraftConfig, ConfigError> {
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
            groups: group_settings(&p)?,
            unknown_keys: props
                .keys()
                .filter(|k| !KNOWN_KEYS.iter().any(|(known, _)| known == k))
                .filter(|k| !LOG_DEFAULT_KEYS.iter().any(|(known, _, _)| known == k))
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

fn parse_roles(value: &str) -> Result<Roles, ConfigError> {
    let mut roles = Roles {
        broker: false,
        controller: false,
    };
    for role in value.split(',').map(str::trim) {
        match role {
            "broker" => roles.broker = true,
            "controller" => roles.controller = true,
            _ => {
                return Err(invalid(
                    "process.roles",
                    value,
                    "expected broker, controller or broker,controller",
                ))
            }
        }
    }
    Ok(roles)
}

/// `1@host:port,2@host:port`.
pub fn parse_voters(value: &str) -> Result<BTreeMap<i32, String>, ConfigError> {
    let bad = |reason: &str| invalid("controller.quorum.voters", value, reason);
    let mut voters = BTreeMap::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addr) = item
            .split_once('@')
            .ok_or_else(|| bad("expected id@host:port entries"))?;
        let id: i32 = id
            .trim()
            .parse()
            .map_err(|_| bad(&format!("'{id}' is not a node id")))?;
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| bad(&format!("'{addr}' has no port")))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(bad(&format!("'{addr}' is not host:port")));
        }
        if voters.insert(id, addr.to_string()).is_some() {
            return Err(bad(&format!("node {id} is listed twice")));
        }
    }
    if voters.is_empty() {
        return Err(bad("no voters"));
    }
    Ok(voters)
}

/// `controller.quorum.voters` text for a voter map: `1@host:port,2@host:port`.
pub fn format_voters(voters: &BTreeMap<i32, String>) -> String {
    voters
        .iter()
        .map(|(id, a)| format!("{id}@{a}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `PLAINTEXT://host:port,CONTROLLER://host:port`.
fn parse_listeners(key: &'static str, value: &str) -> Result<Vec<Listener>, ConfigError> {
    let bad = |reason: String| invalid(key, value, &reason);
    let mut listeners: Vec<Listener> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, addr) = item
            .split_once("://")
            .ok_or_else(|| bad(format!("'{item}' is not NAME://host:port")))?;
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| bad(format!("'{item}' has no port")))?;
        let port: u16 = port
            .parse()
            .map_err(|_| bad(format!("'{port}' is not a port")))?;
        if listeners.iter().any(|l| l.name == name) {
            return Err(bad(format!("listener {name} is defined twice")));
        }
        listeners.push(Listener {
            name: name.to_string(),
            host: if host.is_empty() {
                "0.0.0.0".to_string()
            } else {
                host.to_string()
            },
            port,
        });
    }
    Ok(listeners)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(text: &str) -> BTreeMap<String, String> {
        parse_properties(text).unwrap()
    }

    const CONTROLLER: &str = "process.roles=controller\nnode.id=1\ncontroller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.1:9094\nlisteners=CONTROLLER://127.0.0.1:9093\nlog.dirs=/tmp/x\n";

    #[test]
    fn parses_a_controller_config_with_defaults() {
        let config = KraftConfig::from_properties(&props(CONTROLLER)).unwrap();
        assert!(config.roles.controller && !config.roles.broker);
        assert_eq!(config.voters.len(), 2);
        assert_eq!(config.controller_listener().unwrap().port, 9093);
        assert_eq!(config.metadata_log_dir, PathBuf::from("/tmp/x"));
        assert_eq!(config.snapshot_max_bytes, 20 * 1024 * 1024);
        assert_eq!(config.max_idle_interval, Duration::from_millis(500));
        assert!(config.unknown_keys.is_empty());
    }

    #[test]
    fn properties_syntax_comments_colons_and_continuations() {
        let p = props("# c\n! c\n a = 1 \nb: 2\nc=x,\\\n  y\n");
        assert_eq!(p["a"], "1");
        assert_eq!(p["b"], "2");
        assert_eq!(p["c"], "x,y");
        assert!(matches!(
            parse_properties("novalue\n"),
            Err(ConfigError::Syntax { line: 1, .. })
        ));
    }

    #[test]
    fn invalid_values_name_the_key() {
        let mut p = props(CONTROLLER);
        p.insert("node.id".into(), "one".into());
        let err = KraftConfig::from_properties(&p).unwrap_err().to_string();
        assert!(err.contains("node.id") && err.contains("one"), "{err}");

        let mut p = props(CONTROLLER);
        apply_overrides(&mut p, &["metadata.max.idle.interval.ms=-5".into()]).unwrap();
        let err = KraftConfig::from_properties(&p).unwrap_err().to_string();
        assert!(err.contains("metadata.max.idle.interval.ms"), "{err}");

        let mut p = props(CONTROLLER);
        p.insert("controller.quorum.voters".into(), "1@nohost".into());
        let err = KraftConfig::from_properties(&p).unwrap_err().to_string();
        assert!(err.contains("controller.quorum.voters"), "{err}");

        let mut p = props(CONTROLLER);
        p.insert("node.id".into(), "3".into());
        let err = KraftConfig::from_properties(&p).unwrap_err().to_string();
        assert!(err.contains("must be one of the voters"), "{err}");
    }

    #[test]
    fn broker_log_keys_default_topic_configs() {
        let base = "process.roles=broker\nnode.id=4\ncontroller.quorum.voters=1@h:9093\nlisteners=PLAINTEXT://:9092\n";
        let config = KraftConfig::from_properties(&props(&format!(
            "{base}log.segment.bytes=1000\nlog.retention.hours=2\nlog.roll.ms=60000\nlog.roll.hours=1\nlog.message.timestamp.type=LogAppendTime\n"
        )))
        .expect("valid");
        let d = &config.log_defaults;
        assert_eq!(d.get("segment.bytes").map(String::as_str), Some("1000"));
        assert_eq!(d.get("retention.ms").map(String::as_str), Some("7200000"));
        assert_eq!(d.get("segment.ms").map(String::as_str), Some("60000"));
        assert_eq!(
            d.get("message.timestamp.type").map(String::as_str),
            Some("LogAppendTime")
        );
        assert!(config.unknown_keys.is_empty(), "{:?}", config.unknown_keys);
        let err = KraftConfig::from_properties(&props(&format!("{base}log.segment.bytes=big\n")))
            .expect_err("not a number");
        assert!(err.to_string().contains("log.segment.bytes"), "{err}");
    }

    #[test]
    fn leader_balance_keys_default_to_kafkas_and_ms_wins() {
        let config = KraftConfig::from_properties(&props(CONTROLLER)).unwrap();
        assert!(config.auto_leader_rebalance_enable);
        assert_eq!(
            config.leader_imbalance_check_interval,
            Duration::from_secs(300)
        );
        assert_eq!(config.leader_imbalance_per_broker_percentage, 10);
        let config = KraftConfig::from_properties(&props(&format!(
            "{CONTROLLER}auto.leader.rebalance.enable=false
leader.imbalance.check.interval.seconds=5
leader.imbalance.per.broker.percentage=0
"
        )))
        .unwrap();
        assert!(!config.auto_leader_rebalance_enable);
        assert_eq!(
            config.leader_imbalance_check_interval,
            Duration::from_secs(5)
        );
        assert_eq!(config.leader_imbalance_per_broker_percentage, 0);
        let config = KraftConfig::from_properties(&props(&format!(
            "{CONTROLLER}leader.imbalance.check.interval.seconds=5
leader.imbalance.check.interval.ms=250
"
        )))
        .unwrap();
        assert_eq!(
            config.leader_imbalance_check_interval,
            Duration::from_millis(250)
        );
        assert!(config.unknown_keys.is_empty());
        let err = KraftConfig::from_properties(&props(&format!(
            "{CONTROLLER}leader.imbalance.check.interval.seconds=0
"
        )))
        .unwrap_err();
        assert!(err
            .to_string()
            .contains("leader.imbalance.check.interval.seconds"));
    }

    #[test]
    fn group_keys_default_to_kafkas() {
        let config = KraftConfig::from_properties(&props(CONTROLLER)).unwrap();
        let g = &config.groups;
        assert_eq!(g.offsets_topic_num_partitions, 50);
        assert_eq!(g.offsets_topic_replication_factor, 3);
        assert_eq!(g.initial_rebalance_delay, Duration::from_secs(3));
        assert_eq!(g.min_session_timeout_ms, 6000);
        assert_eq!(g.max_session_timeout_ms, 1_800_000);
        assert_eq!(g.offsets_commit_timeout, Duration::from_secs(5));
        let config = KraftConfig::from_properties(&props(&format!(
            "{CONTROLLER}offsets.topic.replication.factor=1\ngroup.initial.rebalance.delay.ms=0\n"
        )))
        .unwrap();
        assert_eq!(config.groups.offsets_topic_replication_factor, 1);
        assert_eq!(config.groups.initial_rebalance_delay, Duration::ZERO);
        assert!(config.unknown_keys.is_empty());
        let err = KraftConfig::from_properties(&props(&format!(
            "{CONTROLLER}group.min.session.timeout.ms=10\ngroup.max.session.timeout.ms=5\n"
        )))
        .unwrap_err();
        assert!(
            err.to_string().contains("group.min.session.timeout.ms"),
            "{err}"
        );
        let err = KraftConfig::from_properties(&props(&format!(
            "{CONTROLLER}offsets.topic.num.partitions=0\n"
        )))
        .unwrap_err();
        assert!(
            err.to_string().contains("offsets.topic.num.partitions"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_reported_not_rejected() {
        let mut p = props(CONTROLLER);
        p.insert("some.future.key".into(), "1".into());
        let config = KraftConfig::from_properties(&p).unwrap();
        assert_eq!(config.unknown_keys, vec!["some.future.key".to_string()]);
    }
}
