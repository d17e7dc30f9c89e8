//! `kraftd` and `kraftctl` as a user runs them: real processes, SIGKILL,
//! SIGTERM, exit codes and the messages on stderr.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::kraftctl::{kraftctl, KRAFTCTL};
use kraft_testkit::process::{free_ports, ProcessCluster};
use kraft_testkit::DEADLINE;
use serde_json::Value;

const KRAFTD: &str = env!("CARGO_BIN_EXE_kraftd");

/// `kraftctl quorum describe --output json` against `addr`, if it answers.
fn describe(addr: &str) -> Option<Value> {
    let output = Command::new(KRAFTCTL)
        .args([
            "quorum",
            "describe",
            "--status",
            "--timeout-ms",
            "2000",
            "--bootstrap-controller",
            addr,
            "--output",
            "json",
        ])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    serde_json::from_slice(&output.stdout).ok()
}

/// Polls until `check` returns Some, or panics after DEADLINE.
fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn write_config(dir: &Path, node_id: i32, voters: &str, port: u16) -> std::path::PathBuf {
    let path = dir.join(format!("node-{node_id}.properties"));
    let text = format!(
        "process.roles=controller\nnode.id={node_id}\ncontroller.quorum.voters={voters}\n\
         listeners=CONTROLLER://127.0.0.1:{port}\nlog.dirs={}\n",
        dir.join(format!("data-{node_id}")).display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn an_unformatted_or_mismatched_directory_is_refused_with_a_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let [p1, p2] = free_ports(2).unwrap()[..] else {
        unreachable!()
    };
    let voters = format!("1@127.0.0.1:{p1},2@127.0.0.1:{p2}");
    let config = write_config(tmp.path(), 1, &voters, p1);

    let out = Command::new(KRAFTD)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not formatted") && stderr.contains("kraftd format"),
        "{stderr}"
    );

    let id = String::from_utf8(
        Command::new(KRAFTD)
            .arg("random-uuid")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let id = id.trim();
    let out = Command::new(KRAFTD)
        .args(["format", "--cluster-id", id, "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Formatting twice is refused unless told to ignore it.
    let again = Command::new(KRAFTD)
        .args(["format", "--cluster-id", id, "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--ignore-formatted"));

    // The same directory under another node id.
    let out = Command::new(KRAFTD)
        .arg("--config")
        .arg(&config)
        .args(["--override", "node.id=2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("formatted for node.id=1") && stderr.contains("node.id=2"),
        "{stderr}"
    );

    // A bad cluster id and an invalid value are named.
    let out = Command::new(KRAFTD)
        .args(["format", "--cluster-id", "nope", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a cluster id"));
    let out = Command::new(KRAFTD)
        .arg("--config")
        .arg(&config)
        .args(["--override", "metadata.max.idle.interval.ms=soon"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("metadata.max.idle.interval.ms"));
}

#[test]
fn sigterm_stops_a_node_gracefully_and_unknown_keys_only_warn() {
    let mut cluster =
        ProcessCluster::start(Path::new(KRAFTD), 1, &[("some.unknown.key", "1")]).unwrap();
    let addr = cluster.addr(1).to_string();
    let status = wait_until("the node to lead", || {
        describe(&addr).filter(|q| q["leader_id"] == 1)
    });
    assert_eq!(status["cluster_id"], cluster.cluster_id.as_str());
    // --output is global: accepted before the subcommand too; the table
    // output names the leader.
    let before = Command::new(KRAFTCTL)
        .args([
            "--output",
            "json",
            "--bootstrap-controller",
            &addr,
            "quorum",
            "describe",
        ])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&before.stdout).unwrap();
    for key in [
        "cluster_id",
        "leader_id",
        "leader_epoch",
        "high_watermark",
        "snapshot_offset",
        "voters",
        "observers",
    ] {
        assert!(json.get(key).is_some(), "missing {key} in {json}");
    }
    let table = Command::new(KRAFTCTL)
        .args([
            "--bootstrap-controller",
            &addr,
            "quorum",
            "describe",
            "--replication",
        ])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("LogEndOffset") && table.contains("Leader"),
        "{table}"
    );
    let exit = cluster.terminate(1, DEADLINE).unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    let log = cluster.log(1);
    assert!(
        log.contains("unknown config key") && log.contains("some.unknown.key"),
        "{log}"
    );
}

#[test]
fn three_processes_survive_sigkill_of_the_leader() {
    let mut cluster = ProcessCluster::start(Path::new(KRAFTD), 3, &[]).unwrap();
    let addrs: Vec<String> = cluster
        .ids()
        .iter()
        .map(|id| cluster.addr(*id).to_string())
        .collect();
    let any = |addrs: &[String]| addrs.iter().find_map(|a| describe(a));
    let first = wait_until("a leader", || {
        any(&addrs).filter(|q| q["voters"].as_array().is_some_and(|v| v.len() == 3))
    });
    let leader = first["leader_id"].as_i64().unwrap() as i32;
    let epoch = first["leader_epoch"].as_u64().unwrap();

    cluster.kill9(leader).unwrap();
    let survivors: Vec<String> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != leader)
        .map(|id| cluster.addr(id).to_string())
        .collect();
    let next = wait_until("a new leader", || {
        any(&survivors).filter(|q| {
            q["leader_id"].as_i64() != Some(leader as i64)
                && q["leader_epoch"].as_u64() > Some(epoch)
        })
    });
    let hw = next["high_watermark"].as_u64().unwrap();

    // The killed node restarts from its own log and catches up.
    cluster.spawn(leader).unwrap();
    wait_until("the restarted node to catch up", || {
        let q = any(&survivors)?;
        let me = q["voters"]
            .as_array()?
            .iter()
            .find(|v| v["id"] == leader)?
            .clone();
        (me["log_end_offset"].as_u64()? > hw && me["last_caught_up_ms_ago"].as_i64()? < 1000)
            .then_some(())
    });
}

#[test]
fn a_corrupt_metadata_log_is_refused_naming_the_file_and_offset() {
    let mut cluster = ProcessCluster::start(
        Path::new(KRAFTD),
        1,
        &[("metadata.max.idle.interval.ms", "10")],
    )
    .unwrap();
    let addr = cluster.addr(1).to_string();
    // No-ops every 10 ms fill the log with entries.
    wait_until("a log of some length", || {
        describe(&addr).filter(|q| q["high_watermark"].as_u64() > Some(50))
    });
    assert!(cluster.terminate(1, DEADLINE).unwrap().success());

    let dir = cluster.data_dir(1).join("__cluster_metadata-0");
    let segment = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "log"))
        .expect("a segment file");
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&segment, &bytes).unwrap();

    let out = Command::new(KRAFTD)
        .arg("--config")
        .arg(cluster.config_path(1))
        .output()
        .unwrap();
    assert!(!out.status.success(), "kraftd started on a corrupt log");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&segment.display().to_string()) && stderr.contains("at byte"),
        "{stderr}"
    );
}

#[test]
fn kraftctl_manages_topics_on_a_combined_node() {
    let tmp = tempfile::tempdir().unwrap();
    let [kafka, controller] = free_ports(2).unwrap()[..] else {
        unreachable!()
    };
    let config = tmp.path().join("server.properties");
    std::fs::write(
        &config,
        format!(
            "process.roles=broker,controller\nnode.id=1\ncontroller.quorum.voters=1@127.0.0.1:{controller}\n\
             listeners=PLAINTEXT://127.0.0.1:{kafka},CONTROLLER://127.0.0.1:{controller}\n\
             controller.listener.names=CONTROLLER\nlog.dirs={}\n",
            tmp.path().join("data").display()
        ),
    )
    .unwrap();
    let id = String::from_utf8(
        Command::new(KRAFTD)
            .arg("random-uuid")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let formatted = Command::new(KRAFTD)
        .args(["format", "--cluster-id", id.trim(), "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(formatted.status.success());
    // Killed if the test fails, so no node outlives it (holding the test
    // runner's output pipe open).
    let mut node = KillOnDrop(
        Command::new(KRAFTD)
            .arg("--config")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let server = format!("127.0.0.1:{kafka}");
    let s = server.as_str();

    let cluster = wait_until("the broker to serve", || {
        let (ok, out, _) = kraftctl(&[
            "--bootstrap-server",
            s,
            "cluster",
            "describe",
            "--output",
            "json",
        ]);
        ok.then(|| serde_json::from_str::<Value>(&out).ok())
            .flatten()
    });
    assert_eq!(cluster["cluster_id"], id.trim());
    assert_eq!(cluster["brokers"][0]["id"], 1);
    assert_eq!(cluster["brokers"][0]["fenced"], false);

    let (ok, _, err) = kraftctl(&[
        "--bootstrap-server",
        s,
        "topics",
        "create",
        "demo",
        "--partitions",
        "3",
        "--replication-factor",
        "1",
        "--config",
        "retention.ms=60000",
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = kraftctl(&[
        "--bootstrap-server",
        s,
        "topics",
        "create",
        "demo",
        "--partitions",
        "1",
    ]);
    assert!(!ok && err.contains("TOPIC_ALREADY_EXISTS"), "{err}");
    let (ok, _, err) = kraftctl(&[
        "--bootstrap-server",
        s,
        "topics",
        "create",
        "bad name",
        "--partitions",
        "1",
    ]);
    assert!(!ok && err.contains("INVALID_TOPIC_EXCEPTION"), "{err}");

    let (_, out, _) = kraftctl(&[
        "--bootstrap-server",
        s,
        "topics",
        "describe",
        "demo",
        "--output",
        "json",
    ]);
    let described: Value = serde_json::from_str(&out).unwrap();
    let partitions = described[0]["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 3);
    for p in partitions {
        assert_eq!(p["leader"], 1);
        assert_eq!(p["isr"], serde_json::json!([1]));
    }
    let (_, table, _) = kraftctl(&["--bootstrap-server", s, "topics", "describe"]);
    assert!(
        table.contains("Topic: demo") && table.contains("Leader: 1"),
        "{table}"
    );

    let (ok, _, err) = kraftctl(&["--bootstrap-server", s, "topics", "delete", "demo"]);
    assert!(ok, "{err}");
    let (_, out, _) = kraftctl(&[
        "--bootstrap-server",
        s,
        "topics",
        "list",
        "--output",
        "json",
    ]);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        serde_json::json!([])
    );
    let (ok, _, err) = kraftctl(&["--bootstrap-server", s, "topics", "delete", "demo"]);
    assert!(!ok && err.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{err}");

    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(node.0.id().to_string())
        .status();
    assert!(node.0.wait().unwrap().success(), "SIGTERM exits cleanly");
}

/// A child process that is SIGKILLed when dropped, unless it has exited.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A broker whose controllers are all gone still stops on SIGTERM: its
/// controlled shutdown gives up once a whole `broker.session.timeout.ms`
/// has passed without an answer (the controller has fenced it by then
/// anyway), says why, and the process exits.
#[test]
fn sigterm_stops_a_broker_whose_controllers_are_gone() {
    const SESSION_MS: u64 = 2_000;
    let session = SESSION_MS.to_string();
    let mut cluster = ProcessCluster::start_with_brokers(
        Path::new(KRAFTD),
        1,
        1,
        &[
            ("broker.session.timeout.ms", session.as_str()),
            ("broker.heartbeat.interval.ms", "200"),
        ],
    )
    .unwrap();
    let broker = cluster.broker_ids()[0];
    let bootstrap = cluster.addr(broker).to_string();
    // The broker serves clients once the controller has unfenced it.
    wait_until("the broker to serve clients", || {
        let (ok, _, _) = kraftctl(&["--bootstrap-server", &bootstrap, "topics", "list"]);
        ok.then_some(())
    });

    for controller in cluster.voters.keys().copied().collect::<Vec<_>>() {
        cluster.kill9(controller).unwrap();
    }
    // Generous: asserts that the broker exits, not how fast.
    let exit = cluster
        .terminate(
            broker,
            Duration::from_millis(SESSION_MS) + Duration::from_secs(20),
        )
        .unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    let log = cluster.log(broker);
    assert!(
        log.contains("could not reach a controller"),
        "the broker says why its controlled shutdown gave up:\n{log}"
    );
}
