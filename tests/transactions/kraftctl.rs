//! `kraftctl transactions list | describe` and `kraftctl producers
//! describe`, run as a user runs them, against a node with an open
//! transaction: its tables and JSON, and Kafka's error names for what does
//! not exist.

use serde_json::Value;

use super::*;
use common::kraftctl::kraftctl_async;

/// Runs kraftctl against `server`: (success, stdout, stderr).
async fn ctl(server: &str, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["--bootstrap-server", server];
    all.extend_from_slice(args);
    kraftctl_async(&all).await
}

/// Runs kraftctl with `--output json`, which must succeed.
async fn ctl_json(server: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let (ok, out, err) = ctl(server, &all).await;
    assert!(ok, "kraftctl {args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// A table's lines split into cells (header first).
fn cells(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraftctl_lists_and_describes_an_open_transaction_and_its_producer() {
    let cluster = single_node().await;
    let bootstrap = cluster.bootstrap_servers();
    let server = cluster.broker_addr(1).to_string();
    create_topic(&bootstrap, "ledger", 1, 1, &[]).await;
    let producer = transactional_producer(&bootstrap, "ledger-tx", &[]);
    init(&producer).await;
    producer.begin_transaction().expect("begin");
    send(&producer, "ledger", &["l-0", "l-1"]).await;

    // transactions list: the id, its coordinator, producer and state.
    let (ok, table, err) = ctl(&server, &["transactions", "list"]).await;
    assert!(ok, "{err}");
    let listed = cells(&table);
    assert_eq!(
        listed[0],
        [
            "TransactionalId",
            "Coordinator",
            "ProducerId",
            "TransactionState"
        ]
    );
    assert_eq!(listed.len(), 2, "{table}");
    assert_eq!(listed[1][0], "ledger-tx");
    assert_eq!(listed[1][1], "1");
    assert_eq!(listed[1][3], "Ongoing");
    let producer_id: i64 = listed[1][2].parse().expect("a producer id");
    let json = ctl_json(&server, &["transactions", "list"]).await;
    assert_eq!(json[0]["transactional_id"], "ledger-tx");
    assert_eq!(json[0]["producer_id"], producer_id);

    // transactions describe: one row at the coordinator.
    let (ok, table, err) = ctl(&server, &["transactions", "describe", "ledger-tx"]).await;
    assert!(ok, "{err}");
    let described = cells(&table);
    assert_eq!(described[0][0], "CoordinatorId");
    assert_eq!(described[0].len(), 9, "{table}");
    let id = producer_id.to_string();
    assert_eq!(
        described[1][..5],
        ["1", "ledger-tx", id.as_str(), "0", "Ongoing"]
    );
    assert_eq!(described[1][8], "ledger-0");
    let json = ctl_json(&server, &["transactions", "describe", "ledger-tx"]).await;
    assert_eq!(json["state"], "Ongoing");
    assert_eq!(json["timeout_ms"], 60_000);
    assert!(json["start_time_ms"].as_i64().is_some(), "{json}");
    assert_eq!(json["partitions"][0]["topic"], "ledger");

    // producers describe: the producer, two records in, its transaction
    // open from offset 0, no marker yet.
    let args = [
        "producers",
        "describe",
        "--topic",
        "ledger",
        "--partition",
        "0",
    ];
    let (ok, table, err) = ctl(&server, &args).await;
    assert!(ok, "{err}");
    let producers = cells(&table);
    assert_eq!(producers[0][0], "ProducerId");
    assert_eq!(producers.len(), 2, "{table}");
    let row = &producers[1];
    let picked: Vec<&str> = [0, 1, 2, 3, 5].iter().map(|i| row[*i].as_str()).collect();
    assert_eq!(picked, [id.as_str(), "0", "None", "1", "0"]);
    let json = ctl_json(&server, &args).await;
    assert_eq!(json["broker"], 1);
    assert_eq!(json["producers"][0]["producer_id"], producer_id);
    assert_eq!(json["producers"][0]["last_sequence"], 1);
    assert_eq!(json["producers"][0]["current_txn_start_offset"], 0);

    // After the commit: the transaction is complete and closed in the log.
    commit(&producer).await.expect("commit");
    let deadline = Instant::now() + DEADLINE;
    loop {
        let listed = ctl_json(&server, &["transactions", "list"]).await;
        let json = ctl_json(&server, &args).await;
        let closed = json["producers"][0]["current_txn_start_offset"].is_null();
        if listed[0]["state"] == "CompleteCommit" && closed {
            assert!(json["producers"][0]["coordinator_epoch"].as_i64().is_some());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never completed: {listed} {json}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(producer);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraftctl_names_kafkas_errors_for_what_does_not_exist() {
    let cluster = single_node().await;
    let bootstrap = cluster.bootstrap_servers();
    let server = cluster.broker_addr(1).to_string();
    create_topic(&bootstrap, "present", 1, 1, &[]).await;

    // No transactional id yet: an empty table (and an empty JSON list).
    let (ok, table, err) = ctl(&server, &["transactions", "list"]).await;
    assert!(ok, "{err}");
    assert_eq!(cells(&table).len(), 1, "{table}");
    assert_eq!(
        ctl_json(&server, &["transactions", "list"]).await,
        Value::Array(vec![])
    );
    // The first lookup creates `__transaction_state`: kraftctl waits for
    // its coordinator.
    let args = [
        "--timeout-ms",
        "120000",
        "transactions",
        "describe",
        "nobody",
    ];
    let (ok, _, err) = ctl(&server, &args).await;
    assert!(!ok && err.contains("TRANSACTIONAL_ID_NOT_FOUND"), "{err}");
    for (topic, partition) in [("absent", "0"), ("present", "3")] {
        let args = [
            "producers",
            "describe",
            "--topic",
            topic,
            "--partition",
            partition,
        ];
        let (ok, _, err) = ctl(&server, &args).await;
        assert!(!ok && err.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{err}");
    }
    // A broker that is not in the cluster.
    let args = [
        "producers",
        "describe",
        "--topic",
        "present",
        "--partition",
        "0",
        "--broker-id",
        "7",
    ];
    let (ok, _, err) = ctl(&server, &args).await;
    assert!(!ok && err.contains("broker 7"), "{err}");
    cluster.shutdown().await;
}
