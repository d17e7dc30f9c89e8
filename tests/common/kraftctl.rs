//! Running the `kraftctl` binary the way a user does, for the tests of its
//! commands.
//!
//! In: command-line arguments (and, for [`kraftctl_json`], the cluster and
//! broker to point it at). Out: whether it succeeded, with its stdout and
//! stderr as text or its JSON output parsed. A `kraftctl` that cannot be
//! started at all fails the test.

use std::process::Command;

use kraft_testkit::TestCluster;
use serde_json::Value;

/// The `kraftctl` binary Cargo built for these tests.
pub const KRAFTCTL: &str = env!("CARGO_BIN_EXE_kraftctl");

/// Runs kraftctl with `args`; (success, stdout, stderr).
pub fn kraftctl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(KRAFTCTL)
        .args(args)
        .output()
        .expect("kraftctl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs kraftctl with `args` off the runtime; (success, stdout, stderr).
pub async fn kraftctl_async(args: &[&str]) -> (bool, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        kraftctl(&args)
    })
    .await
    .expect("kraftctl thread")
}

/// Runs `kraftctl --bootstrap-server <broker> --output json <args>` and
/// returns (success, parsed stdout or the raw text as a JSON string).
pub async fn kraftctl_json(cluster: &TestCluster, broker: i32, args: &[&str]) -> (bool, Value) {
    let mut all = vec!["--bootstrap-server", cluster.broker_addr(broker)];
    all.extend(["--output", "json"]);
    all.extend_from_slice(args);
    let (ok, stdout, stderr) = kraftctl_async(&all).await;
    let value = serde_json::from_str(&stdout).unwrap_or(Value::String(stdout));
    if !ok {
        eprintln!("kraftctl: {stderr}");
    }
    (ok, value)
}
