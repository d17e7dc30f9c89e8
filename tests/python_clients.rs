//! kafka-python (3.0, pinned in `scripts/install-test-deps`) against an
//! in-process node, as a Python user would run it: its default producer
//! (idempotent, acks=all, which fails at once on a broker without
//! InitProducerId), then its transactional producer doing
//! consume-transform-produce with `send_offsets_to_transaction`, one
//! transaction aborted and one committed. The client script is
//! `tests/python/exactly_once.py`; it prints what the clients saw as JSON.

mod common;

use std::path::PathBuf;
use std::process::Stdio;

use kraft_testkit::TestCluster;

use common::{create_topic, DEADLINE};

/// The virtualenv's Python that `scripts/install-test-deps` made.
fn python() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python");
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-test-deps (scripts/test does)",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_default_and_transactional_producers_work_exactly_once() {
    let cluster = TestCluster::builder(1)
        .combined()
        .prop("transaction.state.log.replication.factor", 1)
        .prop("transaction.state.log.min.isr", 1)
        .prop("transaction.state.log.num.partitions", 2)
        .prop("offsets.topic.replication.factor", 1)
        .prop("offsets.topic.num.partitions", 2)
        .start()
        .await
        .expect("cluster");
    let bootstrap = cluster.bootstrap_servers();
    for topic in ["py-plain", "py-in", "py-out"] {
        create_topic(&bootstrap, topic, 1, 1, &[]).await;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/exactly_once.py");
    let child = std::process::Command::new(python())
        .arg(script)
        .arg(&bootstrap)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    let pid = child.id().to_string();
    let waited = tokio::time::timeout(
        DEADLINE,
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await;
    let Ok(output) = waited else {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid])
            .status();
        panic!("kafka-python did not finish within {DEADLINE:?}");
    };
    let output = output.expect("wait task").expect("python output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "kafka-python failed:\n{stderr}");
    let seen: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the script prints JSON");

    let plain: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    assert_eq!(seen["plain"], serde_json::json!(plain));
    assert_eq!(seen["committed"], serde_json::json!(["out0", "out1"]));
    assert_eq!(
        seen["uncommitted"],
        serde_json::json!(["aborted", "out0", "out1"])
    );
    // The committed transaction's offset (2), not the aborted one's (3).
    assert_eq!(seen["group_offset"], serde_json::json!(2));
    cluster.shutdown().await;
}
