//! Clusters of real `kraftd` processes, for tests and benchmarks that must
//! see what a user sees: SIGKILL, restarts, exit codes and stderr.
//!
//! The caller passes the path of the `kraftd` binary (integration tests and
//! benches get it from `env!("CARGO_BIN_EXE_kraftd")`). Ports are picked by
//! binding port 0 and releasing it just before the process binds it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use kraft_server::config::format_voters;
use kraft_server::meta_properties;
use tempfile::TempDir;

/// A port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    Ok(free_ports(1)?[0])
}

/// `n` distinct ports that were free a moment ago (all held at once while
/// picking, so no two are the same).
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// Controllers (ids 1..=n) and brokers (after them) running as separate
/// `kraftd` processes.
pub struct ProcessCluster {
    kraftd: PathBuf,
    dir: TempDir,
    pub cluster_id: String,
    /// Controllers' CONTROLLER addresses.
    pub voters: BTreeMap<i32, String>,
    /// Brokers' Kafka addresses.
    pub brokers: BTreeMap<i32, String>,
    extra: Vec<(String, String)>,
    children: BTreeMap<i32, Child>,
}

impl ProcessCluster {
    /// Writes configs for `n` controllers, formats them with `kraftd format`
    /// and starts them. `extra` are additional `server.properties` lines.
    pub fn start(kraftd: &Path, n: usize, extra: &[(&str, &str)]) -> Result<ProcessCluster> {
        Self::start_with_brokers(kraftd, n, 0, extra)
    }

    /// `controllers` controllers and `brokers` broker-only nodes.
    pub fn start_with_brokers(
        kraftd: &Path,
        controllers: usize,
        brokers: usize,
        extra: &[(&str, &str)],
    ) -> Result<ProcessCluster> {
        let mut ports = free_ports(controllers + brokers)?.into_iter();
        let mut voters = BTreeMap::new();
        let mut broker_addrs = BTreeMap::new();
        for id in 1..=(controllers + brokers) as i32 {
            let addr = format!("127.0.0.1:{}", ports.next().unwrap_or_default());
            if id <= controllers as i32 {
                voters.insert(id, addr);
            } else {
                broker_addrs.insert(id, addr);
            }
        }
        Self::launch(kraftd, voters, broker_addrs, extra)
    }

    /// One combined node (id 1, `process.roles=broker,controller`): what
    /// `kraftd` with no config runs.
    pub fn start_combined(kraftd: &Path, extra: &[(&str, &str)]) -> Result<ProcessCluster> {
        let ports = free_ports(2)?;
        let voters = BTreeMap::from([(1, format!("127.0.0.1:{}", ports[0]))]);
        let brokers = BTreeMap::from([(1, format!("127.0.0.1:{}", ports[1]))]);
        Self::launch(kraftd, voters, brokers, extra)
    }

    /// Writes, formats and starts every node.
    fn launch(
        kraftd: &Path,
        voters: BTreeMap<i32, String>,
        broker_addrs: BTreeMap<i32, String>,
        extra: &[(&str, &str)],
    ) -> Result<ProcessCluster> {
        let dir = tempfile::Builder::new().prefix("kraft-procs").tempdir()?;
        let mut cluster = ProcessCluster {
            kraftd: kraftd.to_path_buf(),
            dir,
            cluster_id: meta_properties::random_cluster_id(),
            voters,
            brokers: broker_addrs,
            extra: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            children: BTreeMap::new(),
        };
        for id in cluster.ids() {
            std::fs::write(cluster.config_path(id), cluster.properties(id))?;
            let output = Command::new(&cluster.kraftd)
                .arg("format")
                .arg("--config")
                .arg(cluster.config_path(id))
                .arg("--cluster-id")
                .arg(&cluster.cluster_id)
                .output()?;
            if !output.status.success() {
                bail!(
                    "kraftd format failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
        for id in cluster.ids() {
            cluster.spawn(id)?;
        }
        Ok(cluster)
    }

    /// Every node: controllers, then brokers (a combined node once).
    pub fn ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.voters.keys().copied().collect();
        ids.extend(
            self.brokers
                .keys()
                .filter(|id| !self.voters.contains_key(id)),
        );
        ids
    }

    pub fn broker_ids(&self) -> Vec<i32> {
        self.brokers.keys().copied().collect()
    }

    /// `bootstrap.servers` for a Kafka client.
    pub fn bootstrap_servers(&self) -> String {
        self.brokers.values().cloned().collect::<Vec<_>>().join(",")
    }

    /// A controller's CONTROLLER address, or a broker's Kafka address (a
    /// combined node: its CONTROLLER address).
    pub fn addr(&self, id: i32) -> &str {
        self.voters
            .get(&id)
            .or_else(|| self.brokers.get(&id))
            .map(String::as_str)
            .unwrap_or("")
    }

    pub fn config_path(&self, id: i32) -> PathBuf {
        self.dir.path().join(format!("node-{id}.properties"))
    }

    pub fn data_dir(&self, id: i32) -> PathBuf {
        self.dir.path().join(format!("node-{id}"))
    }

    fn properties(&self, id: i32) -> String {
        let voters = format_voters(&self.voters);
        let (roles, listeners) = match (self.voters.get(&id), self.brokers.get(&id)) {
            (Some(controller), Some(broker)) => (
                "broker,controller",
                format!("PLAINTEXT://{broker},CONTROLLER://{controller}"),
            ),
            (Some(addr), None) => ("controller", format!("CONTROLLER://{addr}")),
            (None, broker) => (
                "broker",
                format!("PLAINTEXT://{}", broker.map_or("", String::as_str)),
            ),
        };
        let mut text = format!(
            "process.roles={roles}\nnode.id={id}\ncontroller.quorum.voters={voters}\n\
             listeners={listeners}\ncontroller.listener.names=CONTROLLER\nlog.dirs={}\n",
            self.data_dir(id).display()
        );
        for (k, v) in &self.extra {
            text.push_str(&format!("{k}={v}\n"));
        }
        text
    }

    /// Starts (or restarts) node `id`; its stderr goes to `node-<id>.log`.
    pub fn spawn(&mut self, id: i32) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))?;
        let child = Command::new(&self.kraftd)
            .arg("--config")
            .arg(self.config_path(id))
            .env("RUST_LOG", "info,raft=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {}", self.kraftd.display()))?;
        self.children.insert(id, child);
        Ok(())
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self, id: i32) -> Result<()> {
        if let Some(mut child) = self.children.remove(&id) {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGSTOP (`stop = true`) or SIGCONT: the process freezes, its
    /// sockets stay open, and it wakes with the state it had.
    pub fn signal_stop(&mut self, id: i32, stop: bool) -> Result<()> {
        let Some(child) = self.children.get(&id) else {
            bail!("node {id} is not running");
        };
        let signal = if stop { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()?;
        if !status.success() {
            bail!("kill {signal} failed");
        }
        Ok(())
    }

    /// SIGTERM, then waits up to `timeout` for the exit status.
    pub fn terminate(&mut self, id: i32, timeout: Duration) -> Result<ExitStatus> {
        let Some(mut child) = self.children.remove(&id) else {
            bail!("node {id} is not running");
        };
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()?;
        if !status.success() {
            bail!("kill -TERM failed");
        }
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if std::time::Instant::now() >= deadline {
                child.kill()?;
                bail!("node {id} did not exit within {timeout:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The OS process id of node `id`, if it is running (for reading
    /// `/proc/<pid>/status`).
    pub fn pid(&self, id: i32) -> Option<u32> {
        self.children.get(&id).map(Child::id)
    }

    /// What node `id` has logged so far.
    pub fn log(&self, id: i32) -> String {
        std::fs::read_to_string(self.log_path(id)).unwrap_or_default()
    }

    /// Where node `id`'s stderr goes (appended to across restarts).
    pub fn log_path(&self, id: i32) -> PathBuf {
        self.dir.path().join(format!("node-{id}.log"))
    }

    /// How node `id` ended, if it was started and has exited on its own
    /// since (`None` while it runs, and after `kill9` or `terminate`).
    pub fn exit_status(&mut self, id: i32) -> Result<Option<ExitStatus>> {
        match self.children.get_mut(&id) {
            Some(child) => Ok(child.try_wait()?),
            None => Ok(None),
        }
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::env::var_os("KRAFT_KEEP_LOGS").is_some() {
            let dir =
                std::mem::replace(&mut self.dir, tempfile::tempdir().expect("a temp dir")).keep();
            eprintln!("kept the cluster's directory: {}", dir.display());
        }
    }
}
