//! The keys this build reads, their defaults, and typed, checked access
//! to them: numbers with minimums, booleans, durations, the group
//! coordinator's keys and the broker's `log.*` defaults for topic configs.
//!
//! In: the raw key/value map from [`super::properties`]. Out: typed values
//! or a [`ConfigError::Invalid`] naming the key, its value and why.

use std::collections::BTreeMap;
use std::time::Duration;

use kraft_broker::replica::CleanerSettings;
use kraft_broker::{GroupCoordinatorConfig, TransactionCoordinatorConfig};
use kraft_metadata::{ConfigKind, TOPIC_CONFIGS};

use super::ConfigError;

/// Every key this build reads (besides the topic configs' broker keys in
/// kraft-metadata's table), with its default (None: no default).
pub(super) const KNOWN_KEYS: &[(&str, Option<&str>)] = &[
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
    ("producer.id.expiration.ms", Some("86400000")),
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
    ("offsets.retention.minutes", Some("10080")),
    ("offsets.retention.check.interval.ms", Some("600000")),
    ("offset.metadata.max.bytes", Some("4096")),
    ("group.initial.rebalance.delay.ms", Some("3000")),
    ("group.min.session.timeout.ms", Some("6000")),
    ("group.max.session.timeout.ms", Some("1800000")),
    ("transaction.state.log.num.partitions", Some("50")),
    ("transaction.state.log.replication.factor", Some("3")),
    ("transaction.state.log.min.isr", Some("2")),
    ("transaction.state.log.segment.bytes", Some("104857600")),
    ("transaction.max.timeout.ms", Some("900000")),
    (
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        Some("10000"),
    ),
    ("transactional.id.expiration.ms", Some("604800000")),
    (
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        Some("3600000"),
    ),
    // Refused unless PLAINTEXT (see `unsupported`), so known.
    ("security.inter.broker.protocol", Some("PLAINTEXT")),
    ("fetch.max.bytes", Some("57671680")),
    ("replica.fetch.response.max.bytes", Some("10485760")),
    ("connections.max.idle.ms", Some("600000")),
    ("max.connections", Some("2147483647")),
    ("max.connections.per.ip", Some("2147483647")),
    // Kafka's default, -1, is unbounded; Kraft's pool is 512 MiB: it bounds
    // the memory of requests read and Fetch answers in flight together.
    ("queued.max.request.bytes", Some("536870912")),
    ("log.cleaner.enable", Some("true")),
    ("log.cleaner.threads", Some("1")),
    ("log.cleaner.dedupe.buffer.size", Some("134217728")),
    (
        "log.cleaner.io.max.bytes.per.second",
        Some("1.7976931348623157E308"),
    ),
    ("log.cleaner.backoff.ms", Some("15000")),
];

/// The log cleaner's keys (`log.cleaner.*`), checked.
pub(super) fn cleaner_settings(p: &Props<'_>) -> Result<CleanerSettings, ConfigError> {
    let key = "log.cleaner.io.max.bytes.per.second";
    let value = p.required(key)?;
    let io_max_bytes_per_second = value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| *v > 0.0)
        .ok_or_else(|| invalid(key, value, "expected a positive number"))?;
    Ok(CleanerSettings {
        enable: p.boolean("log.cleaner.enable")?,
        threads: p.number::<usize>("log.cleaner.threads", 0)?,
        // Each thread's offset map needs room for at least a few keys.
        dedupe_buffer_bytes: p.number::<u64>("log.cleaner.dedupe.buffer.size", 1 << 16)?,
        io_max_bytes_per_second,
        backoff: p.millis("log.cleaner.backoff.ms", 0)?,
    })
}

/// The group coordinator's keys (`offsets.topic.*`, `group.*`), checked.
pub(super) fn group_settings(p: &Props<'_>) -> Result<GroupCoordinatorConfig, ConfigError> {
    let settings = GroupCoordinatorConfig {
        offsets_topic_num_partitions: p.number::<i32>("offsets.topic.num.partitions", 1)?,
        offsets_topic_replication_factor: p.number::<i16>("offsets.topic.replication.factor", 1)?,
        offsets_topic_segment_bytes: p.number::<i64>("offsets.topic.segment.bytes", 14)?,
        offsets_commit_timeout: p.millis("offsets.commit.timeout.ms", 1)?,
        offset_metadata_max_bytes: p.number::<usize>("offset.metadata.max.bytes", 0)?,
        initial_rebalance_delay: p.millis("group.initial.rebalance.delay.ms", 0)?,
        min_session_timeout_ms: p.number::<i32>("group.min.session.timeout.ms", 0)?,
        max_session_timeout_ms: p.number::<i32>("group.max.session.timeout.ms", 0)?,
        offsets_retention: Duration::from_secs(
            p.number::<u64>("offsets.retention.minutes", 1)?
                .saturating_mul(60),
        ),
        offsets_retention_check_interval: p.millis("offsets.retention.check.interval.ms", 1)?,
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

/// The transaction coordinator's keys (`transaction.*`), checked.
pub(super) fn transaction_settings(
    p: &Props<'_>,
) -> Result<TransactionCoordinatorConfig, ConfigError> {
    Ok(TransactionCoordinatorConfig {
        state_log_num_partitions: p.number::<i32>("transaction.state.log.num.partitions", 1)?,
        state_log_replication_factor: p
            .number::<i16>("transaction.state.log.replication.factor", 1)?,
        state_log_min_isr: p.number::<i32>("transaction.state.log.min.isr", 1)?,
        state_log_segment_bytes: p.number::<i64>("transaction.state.log.segment.bytes", 14)?,
        max_timeout: p.millis("transaction.max.timeout.ms", 1)?,
        abort_timed_out_interval: p.millis(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            1,
        )?,
        id_expiration: p.millis("transactional.id.expiration.ms", 1)?,
        remove_expired_interval: p.millis(
            "transaction.remove.expired.transaction.cleanup.interval.ms",
            1,
        )?,
        write_timeout: Duration::from_secs(30),
    })
}

/// The topic-config defaults set in `props`, keyed by topic key: each
/// topic config's broker key (kraft-metadata's table, e.g.
/// `log.segment.bytes` for `segment.bytes`), checked for its shape. Kafka's precedence holds:
/// `log.retention.ms` over `.minutes` over `.hours`, `log.roll.ms` over
/// `log.roll.hours`.
pub(super) fn log_defaults(
    props: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for def in TOPIC_CONFIGS {
        let Some(key) = def.broker_key else {
            continue;
        };
        let Some(value) = props.get(key) else {
            continue;
        };
        let value = value.trim();
        match def.kind {
            ConfigKind::OneOf(allowed) => {
                if !allowed.contains(&value) {
                    let expected = format!("expected {}", allowed.join(" or "));
                    return Err(invalid(key, value, &expected));
                }
            }
            _ => {
                if value.parse::<i64>().is_err() {
                    return Err(invalid(key, value, "expected a whole number"));
                }
            }
        }
        out.insert(def.name.to_string(), value.to_string());
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

/// Typed access to the raw map: a missing key falls back to its default
/// in [`KNOWN_KEYS`].
pub(super) struct Props<'a>(pub(super) &'a BTreeMap<String, String>);

impl Props<'_> {
    pub(super) fn get(&self, key: &'static str) -> Option<&str> {
        self.0.get(key).map(String::as_str).or_else(|| {
            KNOWN_KEYS
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, d)| *d)
        })
    }

    pub(super) fn required(&self, key: &'static str) -> Result<&str, ConfigError> {
        self.get(key).ok_or(ConfigError::Missing(key))
    }

    pub(super) fn number<T>(&self, key: &'static str, min: T) -> Result<T, ConfigError>
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

    pub(super) fn boolean(&self, key: &'static str) -> Result<bool, ConfigError> {
        let value = self.required(key)?;
        match value.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(invalid(key, value, "expected true or false")),
        }
    }

    pub(super) fn millis(&self, key: &'static str, min: u64) -> Result<Duration, ConfigError> {
        self.number::<u64>(key, min).map(Duration::from_millis)
    }
}

/// The error for `key`'s `value`, saying why.
pub(super) fn invalid(key: &'static str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}
