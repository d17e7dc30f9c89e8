//! Tests of the validated config: defaults, checks, and the keys that
//! default topic configs and the group coordinator.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

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
fn transaction_keys_default_to_kafkas() {
    let config = KraftConfig::from_properties(&props(CONTROLLER)).unwrap();
    let t = &config.transactions;
    assert_eq!(t.state_log_num_partitions, 50);
    assert_eq!(t.state_log_replication_factor, 3);
    assert_eq!(t.state_log_min_isr, 2);
    assert_eq!(t.max_timeout, Duration::from_millis(900_000));
    let config = KraftConfig::from_properties(&props(&format!(
        "{CONTROLLER}transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n"
    )))
    .unwrap();
    assert_eq!(config.transactions.state_log_replication_factor, 1);
    assert_eq!(config.transactions.state_log_min_isr, 1);
    assert!(config.unknown_keys.is_empty());
    let err = KraftConfig::from_properties(&props(&format!(
        "{CONTROLLER}transaction.state.log.num.partitions=0\n"
    )))
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("transaction.state.log.num.partitions"),
        "{err}"
    );
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
    assert_eq!(g.offsets_retention, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(g.offsets_retention_check_interval, Duration::from_secs(600));
    let config = KraftConfig::from_properties(&props(&format!(
        "{CONTROLLER}offsets.topic.replication.factor=1\ngroup.initial.rebalance.delay.ms=0\n"
    )))
    .unwrap();
    assert_eq!(config.groups.offsets_topic_replication_factor, 1);
    assert_eq!(config.groups.initial_rebalance_delay, Duration::ZERO);
    assert!(config.unknown_keys.is_empty());
    let config = KraftConfig::from_properties(&props(&format!(
        "{CONTROLLER}offsets.retention.minutes=1\noffsets.retention.check.interval.ms=250\n"
    )))
    .unwrap();
    assert_eq!(config.groups.offsets_retention, Duration::from_secs(60));
    assert_eq!(
        config.groups.offsets_retention_check_interval,
        Duration::from_millis(250)
    );
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

const BROKER: &str = "process.roles=broker\nnode.id=4\ncontroller.quorum.voters=1@h:9093\nlisteners=PLAINTEXT://:9092\nlog.dirs=/tmp/x\n";

/// Each security key this build does not implement yet, set in an
/// otherwise valid broker config: the node refuses to start and the error
/// names the key and says it is not supported, instead of serving
/// plaintext to a client that was promised TLS or SASL.
#[test]
fn security_keys_that_are_not_implemented_refuse_to_start() {
    let cases: &[(&str, &str, &str)] = &[
        ("listeners", "SSL://:9093", "listeners"),
        (
            "listeners",
            "PLAINTEXT://:9092,SASL_PLAINTEXT://:9094",
            "listeners",
        ),
        ("listeners", "SASL_SSL://:9095", "listeners"),
        (
            "advertised.listeners",
            "SSL://h:9093",
            "advertised.listeners",
        ),
        (
            "listener.security.protocol.map",
            "PLAINTEXT:SSL,CONTROLLER:PLAINTEXT",
            "listener.security.protocol.map",
        ),
        (
            "ssl.keystore.location",
            "/etc/k.jks",
            "ssl.keystore.location",
        ),
        ("ssl.client.auth", "required", "ssl.client.auth"),
        (
            "sasl.enabled.mechanisms",
            "PLAIN",
            "sasl.enabled.mechanisms",
        ),
        (
            "sasl.mechanism.inter.broker.protocol",
            "PLAIN",
            "sasl.mechanism.inter.broker.protocol",
        ),
        (
            "authorizer.class.name",
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "authorizer.class.name",
        ),
        (
            "security.inter.broker.protocol",
            "SSL",
            "security.inter.broker.protocol",
        ),
    ];
    for (key, value, named) in cases {
        let mut p = props(BROKER);
        p.insert(key.to_string(), value.to_string());
        let err = match KraftConfig::from_properties(&p) {
            Ok(config) => panic!(
                "{key}={value} was accepted (unknown keys: {:?}): it must refuse to start",
                config.unknown_keys
            ),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(named) && err.contains("not supported yet"),
            "{key}={value}: {err}"
        );
    }
}

/// Other unknown keys (and the plaintext spelling of the security keys)
/// stay warnings.
#[test]
fn other_unknown_keys_still_only_warn() {
    let mut p = props(BROKER);
    p.insert("some.unknown.key".into(), "1".into());
    p.insert("security.inter.broker.protocol".into(), "PLAINTEXT".into());
    let config = KraftConfig::from_properties(&p).expect("valid");
    assert_eq!(config.unknown_keys, vec!["some.unknown.key".to_string()]);
}
/// The broker's resource limits: Kafka's keys and defaults.
#[test]
fn broker_limits_have_kafkas_defaults_and_can_be_set() {
    let config = KraftConfig::from_properties(&props(BROKER)).expect("valid");
    assert_eq!(config.fetch_max_bytes, 55 * 1024 * 1024);
    assert_eq!(config.replica_fetch_response_max_bytes, 10 * 1024 * 1024);
    assert_eq!(config.connections_max_idle, Duration::from_secs(600));
    assert_eq!(config.max_connections, i32::MAX as usize);
    assert_eq!(config.max_connections_per_ip, i32::MAX as usize);
    let mut p = props(BROKER);
    for (k, v) in [
        ("fetch.max.bytes", "1048576"),
        ("replica.fetch.response.max.bytes", "2097152"),
        ("connections.max.idle.ms", "1500"),
        ("max.connections", "100"),
        ("max.connections.per.ip", "10"),
        ("queued.max.request.bytes", "8388608"),
    ] {
        p.insert(k.into(), v.into());
    }
    let config = KraftConfig::from_properties(&p).expect("valid");
    assert_eq!(config.fetch_max_bytes, 1 << 20);
    assert_eq!(config.replica_fetch_response_max_bytes, 2 << 20);
    assert_eq!(config.connections_max_idle, Duration::from_millis(1500));
    assert_eq!(config.max_connections, 100);
    assert_eq!(config.max_connections_per_ip, 10);
    assert_eq!(config.queued_max_request_bytes, 8 << 20);
    assert!(config.unknown_keys.is_empty(), "{:?}", config.unknown_keys);
}
