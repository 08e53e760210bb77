//! A real `loopctl serve` process on a fresh SQLite file, with a tenant whose keys the CLI
//! calls use: what `scale` and `peers` measure, one process per call as an agent's shell
//! makes them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::stats::Rss;

pub struct Lab {
    pub dir: tempfile::TempDir,
    server: Child,
    pub url: String,
    pub user: String,
    pub orchestrator: String,
    pub agent: String,
    bin: PathBuf,
}

/// The `loopctl` next to the running bench binary (`target/release/loopctl`).
pub fn default_loopctl() -> anyhow::Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name("loopctl");
    if !path.exists() {
        bail!(
            "no loopctl binary at {}; build it (`cargo build --release -p loopctl`) or pass --loopctl",
            path.display()
        );
    }
    Ok(path)
}

impl Lab {
    /// `admin init`, then `serve` on an ephemeral port, then tenant settings that let a
    /// benchmark's agents work (1,000 in flight, no rate limit to speak of).
    pub fn start(bin: &Path) -> anyhow::Result<Lab> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("loopctl.db");
        let init = Command::new(bin)
            .args(["admin", "init", "--tenant", "bench", "--format", "json", "--database-url"])
            .arg(&db)
            .env("HOME", dir.path())
            .output()?;
        if !init.status.success() {
            bail!("loopctl admin init failed: {}", String::from_utf8_lossy(&init.stderr));
        }
        let keys: Value = serde_json::from_slice(&init.stdout).context("admin init prints JSON")?;
        let key = |role: &str| {
            keys.pointer(&format!("/keys/{role}")).and_then(Value::as_str).map(str::to_string).context("a key")
        };
        let mut server = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url"])
            .arg(&db)
            .env("HOME", dir.path())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start `loopctl serve`")?;
        let url = listening_url(&mut server)?;
        let lab = Lab {
            dir,
            server,
            url,
            user: key("user")?,
            orchestrator: key("orchestrator")?,
            agent: key("agent")?,
            bin: bin.to_path_buf(),
        };
        let settings =
            ["tenant", "settings", "set", "max_concurrent_agents=1000", "rate_limit_requests_per_minute=10000000"];
        lab.run_ok(&lab.user, "user", "", &settings)?;
        Ok(lab)
    }

    /// A `loopctl` command as an agent's shell runs it: its own process, the key, server and
    /// project in an otherwise empty environment, no profile, and a claim-epoch state
    /// directory of its own per `who` (as separate agents on separate machines have).
    pub fn cli(&self, key: &str, who: &str, project: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("LOOPCTL_CONFIG", self.dir.path().join("no-config.toml"))
            .env("LOOPCTL_STATE_DIR", self.dir.path().join(format!("state-{who}")))
            .env("LOOPCTL_SERVER", &self.url)
            .env("LOOPCTL_API_KEY", key)
            .current_dir(self.dir.path());
        if !project.is_empty() {
            cmd.env("LOOPCTL_PROJECT", project);
        }
        cmd
    }

    /// Runs a command to its end and answers its stdout; a failed call fails the bench.
    pub fn run_ok(&self, key: &str, who: &str, project: &str, args: &[&str]) -> anyhow::Result<String> {
        let out = self.cli(key, who, project, args).stdin(Stdio::null()).output()?;
        if !out.status.success() {
            bail!("`loopctl {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The wall time of one call, its output discarded.
    pub fn time(&self, key: &str, who: &str, project: &str, args: &[&str]) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let out = self.cli(key, who, project, args).stdin(Stdio::null()).stdout(Stdio::null()).output()?;
        let took = started.elapsed();
        if !out.status.success() {
            bail!("`loopctl {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(took)
    }

    /// The server's resident memory, now and at its peak.
    pub fn rss(&self) -> anyhow::Result<Rss> {
        Rss::of(self.server.id())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// Reads the server's `listening on http://…` line (on stderr, with the log).
fn listening_url(server: &mut Child) -> anyhow::Result<String> {
    let stderr = server.stderr.take().context("server stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line?;
        if let Some(at) = line.find("listening on ") {
            let url = line[at + "listening on ".len()..].split_whitespace().next().unwrap_or_default().to_string();
            // Keep draining the server's output so it never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return Ok(url);
        }
    }
    bail!("the server exited before it listened")
}
