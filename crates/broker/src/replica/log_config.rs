//! A partition's effective log settings: the topic's dynamic configs over
//! the broker's static `log.*` defaults over Kafka's defaults.
//!
//! In: the topic's keys from the metadata image ([`ResourceConfigs`]) and the
//! broker's [`LogDefaults`] (from `server.properties`, already translated to
//! topic key names). Out: a [`kraft_log::LogConfig`] for the partition log
//! (with its compaction settings when `cleanup.policy` includes `compact`;
//! retention by time and size only when it includes `delete`, as in Kafka)
//! and the few settings the replica manager itself applies
//! (`min.insync.replicas`, `message.timestamp.after.max.ms`).
//!
//! A value that does not parse falls back to the next layer with a warning:
//! the controller validates configs on the way in, so this only happens
//! with hand-edited broker files, and a bad value must not take a partition
//! offline.

use std::collections::BTreeMap;

use kraft_log::{CompactionConfig, LogConfig, TimestampType};
use kraft_metadata::{topic_config, ResourceConfigs};

/// Broker-wide defaults for topic configs, keyed by the topic config name
/// (`segment.bytes`, not `log.segment.bytes`).
pub type LogDefaults = BTreeMap<String, String>;

/// What the replica manager needs to know about a partition's topic.
#[derive(Clone, Debug)]
pub struct PartitionSettings {
    pub log: LogConfig,
    /// `min.insync.replicas`: acks=all needs this many in-sync replicas.
    pub min_insync_replicas: usize,
    /// `message.timestamp.after.max.ms`: how far in the future a CreateTime
    /// batch's largest timestamp may be.
    pub timestamp_after_max_ms: i64,
}

/// The effective settings of a topic with dynamic keys `topic`.
pub fn partition_settings(
    topic: Option<&ResourceConfigs>,
    defaults: &LogDefaults,
) -> PartitionSettings {
    let lookup = Lookup { topic, defaults };
    let positive = |key: &str| lookup.long(key).filter(|v| *v >= 0);
    let policy = lookup.get("cleanup.policy").unwrap_or("delete");
    let policies = || policy.split(',').map(str::trim);
    let delete = policies().any(|p| p == "delete");
    let compaction = policies().any(|p| p == "compact").then(|| {
        let kafka = CompactionConfig::default();
        CompactionConfig {
            // The cleaner sets its own share of log.cleaner.dedupe.buffer.size.
            dedupe_buffer_bytes: kafka.dedupe_buffer_bytes,
            delete_retention_ms: positive("delete.retention.ms")
                .unwrap_or(kafka.delete_retention_ms),
            min_compaction_lag_ms: positive("min.compaction.lag.ms")
                .unwrap_or(kafka.min_compaction_lag_ms),
            max_compaction_lag_ms: lookup
                .long("max.compaction.lag.ms")
                .filter(|v| *v > 0)
                .unwrap_or(kafka.max_compaction_lag_ms),
            min_cleanable_dirty_ratio: lookup
                .ratio("min.cleanable.dirty.ratio")
                .unwrap_or(kafka.min_cleanable_dirty_ratio),
        }
    });
    let log = LogConfig {
        segment_bytes: lookup
            .long("segment.bytes")
            .map_or(1 << 30, |v| v.max(14) as u64),
        // As Kafka: a compacted log also rolls by max.compaction.lag.ms, so
        // that its records become cleanable within it.
        segment_ms: positive("segment.ms")
            .map(|v| v as u64)
            .into_iter()
            .chain(
                compaction
                    .as_ref()
                    .map(|c| c.max_compaction_lag_ms)
                    .filter(|lag| *lag < i64::MAX)
                    .map(|lag| lag as u64),
            )
            .min(),
        segment_index_bytes: lookup
            .long("segment.index.bytes")
            .map_or(10 << 20, |v| v.max(8) as u64),
        index_interval_bytes: lookup
            .long("index.interval.bytes")
            .map_or(4096, |v| v.clamp(0, i64::from(u32::MAX)) as u32),
        retention_ms: positive("retention.ms").filter(|_| delete),
        retention_bytes: positive("retention.bytes")
            .filter(|_| delete)
            .map(|v| v as u64),
        flush_interval_messages: positive("flush.messages")
            .filter(|v| *v != i64::MAX)
            .map(|v| v as u64),
        flush_interval_ms: positive("flush.ms")
            .filter(|v| *v != i64::MAX)
            .map(|v| v as u64),
        max_message_bytes: lookup
            .long("max.message.bytes")
            .map_or(1_048_588, |v| v.clamp(0, i64::from(u32::MAX)) as u32),
        timestamp_type: match lookup.get("message.timestamp.type") {
            Some("LogAppendTime") => TimestampType::LogAppendTime,
            _ => TimestampType::CreateTime,
        },
        compaction,
    };
    PartitionSettings {
        log,
        min_insync_replicas: lookup
            .long("min.insync.replicas")
            .map_or(1, |v| v.max(1) as usize),
        timestamp_after_max_ms: positive("message.timestamp.after.max.ms").unwrap_or(3_600_000),
    }
}

/// Looks a key up in the topic's configs, then the broker's defaults, then
/// Kafka's defaults.
struct Lookup<'a> {
    topic: Option<&'a ResourceConfigs>,
    defaults: &'a LogDefaults,
}

impl Lookup<'_> {
    fn layers(&self, key: &str) -> impl Iterator<Item = &str> {
        let topic = self.topic.and_then(|t| t.get(key)).map(String::as_str);
        let broker = self.defaults.get(key).map(String::as_str);
        let kafka = topic_config(key).map(|d| d.default);
        [topic, broker, kafka].into_iter().flatten()
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.layers(key).next()
    }

    /// A number in [0, 1].
    fn ratio(&self, key: &str) -> Option<f64> {
        for value in self.layers(key) {
            match value.trim().parse::<f64>() {
                Ok(v) if (0.0..=1.0).contains(&v) => return Some(v),
                _ => tracing::warn!(key, value, "ignoring a config value that is not a ratio"),
            }
        }
        None
    }

    fn long(&self, key: &str) -> Option<i64> {
        for value in self.layers(key) {
            match value.trim().parse::<i64>() {
                Ok(v) => return Some(v),
                Err(_) => {
                    tracing::warn!(key, value, "ignoring a config value that is not a number")
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_overrides_broker_overrides_kafka() {
        let mut defaults = LogDefaults::new();
        defaults.insert("segment.bytes".into(), "1000".into());
        defaults.insert("retention.ms".into(), "5000".into());
        let mut topic = ResourceConfigs::new();
        topic.insert("retention.ms".into(), "-1".into());
        topic.insert("message.timestamp.type".into(), "LogAppendTime".into());
        topic.insert("min.insync.replicas".into(), "2".into());
        let s = partition_settings(Some(&topic), &defaults);
        assert_eq!(s.log.segment_bytes, 1000);
        assert_eq!(s.log.retention_ms, None);
        assert!(matches!(s.log.timestamp_type, TimestampType::LogAppendTime));
        assert_eq!(s.min_insync_replicas, 2);
        assert_eq!(s.log.max_message_bytes, 1_048_588);
        assert_eq!(s.log.flush_interval_messages, None);

        let s = partition_settings(None, &LogDefaults::new());
        assert_eq!(s.log.segment_bytes, 1 << 30);
        assert_eq!(s.log.retention_ms, Some(604_800_000));
        assert!(matches!(s.log.timestamp_type, TimestampType::CreateTime));
    }

    #[test]
    fn cleanup_policy_chooses_compaction_and_retention() {
        let mut topic = ResourceConfigs::new();
        topic.insert("cleanup.policy".into(), "compact".into());
        topic.insert("delete.retention.ms".into(), "100".into());
        topic.insert("min.cleanable.dirty.ratio".into(), "0.25".into());
        let s = partition_settings(Some(&topic), &LogDefaults::new());
        let compaction = s.log.compaction.expect("compacted");
        assert_eq!(compaction.delete_retention_ms, 100);
        assert_eq!(compaction.min_cleanable_dirty_ratio, 0.25);
        assert_eq!(compaction.max_compaction_lag_ms, i64::MAX);
        assert_eq!(
            s.log.retention_ms, None,
            "compact alone deletes nothing by age"
        );

        topic.insert("cleanup.policy".into(), "compact,delete".into());
        let s = partition_settings(Some(&topic), &LogDefaults::new());
        assert!(s.log.compaction.is_some());
        assert_eq!(s.log.retention_ms, Some(604_800_000));

        topic.insert("max.compaction.lag.ms".into(), "60000".into());
        let s = partition_settings(Some(&topic), &LogDefaults::new());
        assert_eq!(
            s.log.segment_ms,
            Some(60_000),
            "rolls by max.compaction.lag.ms"
        );

        let s = partition_settings(None, &LogDefaults::new());
        assert!(s.log.compaction.is_none());
    }

    #[test]
    fn an_unparseable_value_falls_through() {
        let mut topic = ResourceConfigs::new();
        topic.insert("segment.bytes".into(), "lots".into());
        let s = partition_settings(Some(&topic), &LogDefaults::new());
        assert_eq!(s.log.segment_bytes, 1 << 30);
    }
}
