//! One combined `kraftd` process for the single-node mode: it writes the
//! config, formats the data directory, spawns the process with its stderr
//! in a temp dir, and reads back its log. Killed on drop.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};
use kraft_testkit::process::free_ports;
use tempfile::TempDir;

/// One `kraftd` with both roles, a PLAINTEXT and a CONTROLLER listener, its
/// data and stderr in a temp dir. Killed on drop.
pub struct Node {
    dir: TempDir,
    pub child: Child,
    pub bootstrap: String,
}

impl Node {
    pub fn start(kraftd: &Path) -> Result<Node> {
        let dir = tempfile::Builder::new().prefix("kraft-produce").tempdir()?;
        let [kafka, controller] = free_ports(2)?[..] else {
            bail!("two free ports");
        };
        let config = dir.path().join("server.properties");
        std::fs::write(
            &config,
            format!(
                "process.roles=broker,controller\nnode.id=1\n\
                 controller.quorum.voters=1@127.0.0.1:{controller}\n\
                 listeners=PLAINTEXT://127.0.0.1:{kafka},CONTROLLER://127.0.0.1:{controller}\n\
                 controller.listener.names=CONTROLLER\nlog.dirs={}\n",
                dir.path().join("data").display()
            ),
        )?;
        let uuid = Command::new(kraftd).arg("random-uuid").output()?;
        let cluster_id = String::from_utf8(uuid.stdout)?.trim().to_string();
        let format = Command::new(kraftd)
            // `=`: an id may start with '-' (base64url), which clap would
            // take for a flag after a separate `--cluster-id`.
            .arg("format")
            .arg(format!("--cluster-id={cluster_id}"))
            .arg("--config")
            .arg(&config)
            .output()?;
        if !format.status.success() {
            bail!("kraftd format: {}", String::from_utf8_lossy(&format.stderr));
        }
        let child = Command::new(kraftd)
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info,raft=warn")
            .stdout(Stdio::null())
            .stderr(File::create(dir.path().join("kraftd.log"))?)
            .spawn()
            .with_context(|| format!("spawning {}", kraftd.display()))?;
        let bootstrap = format!("127.0.0.1:{kafka}");
        Ok(Node {
            dir,
            child,
            bootstrap,
        })
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("kraftd.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// How the process ended, if it has.
    pub fn exit(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(status) => status.map(|s| s.to_string()),
            Err(e) => Some(format!("unknown ({e})")),
        }
    }

    pub fn check_alive(&mut self) -> Result<()> {
        match self.exit() {
            Some(exit) => bail!("kraftd exited ({exit}):\n{}", self.log()),
            None => Ok(()),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("KRAFT_KEEP_LOGS").is_some() {
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("a temp dir"));
            eprintln!("kept the broker's directory: {}", dir.keep().display());
        }
    }
}
