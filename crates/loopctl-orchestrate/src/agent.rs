//! An agent is `sh -c CMD`: started in its worktree with a clean environment and the story's
//! `LOOPCTL_*` variables, its output kept in a log file, killed with everything it started
//! when its time is up.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// What an agent may inherit from the orchestrator's environment: enough to find its tools
/// and its own login (an agent CLI keeps its credentials under HOME), never a loopctl key.
const INHERITED: [&str; 7] = ["PATH", "HOME", "USER", "LOGNAME", "LANG", "TERM", "TMPDIR"];

pub struct Launch<'a> {
    pub command: &'a str,
    pub dir: &'a Path,
    pub env: Vec<(&'static str, String)>,
    pub log: PathBuf,
    pub timeout: Duration,
}

#[derive(Debug)]
pub struct Exit {
    /// `exited 0`, `exited 3`, `was killed by signal 9`, `timed out after 30s and was killed`.
    pub ended: String,
    pub elapsed: Duration,
}

pub async fn run(launch: Launch<'_>) -> anyhow::Result<Exit> {
    if let Some(parent) = launch.log.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&launch.log)
        .with_context(|| format!("open the agent's log {}", launch.log.display()))?;
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c").arg(launch.command).current_dir(launch.dir).env_clear();
    for name in INHERITED {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    cmd.envs(launch.env.iter().map(|(k, v)| (*k, v.as_str())));
    cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    // Its own process group, so a timeout takes whatever it started along with it.
    cmd.process_group(0).kill_on_drop(true);
    let started = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("start the agent `{}`", launch.command))?;
    // Whatever it left running in its group goes too, on every way out: its end, its time
    // limit, or the orchestrator giving up on the round (Ctrl-C drops this future).
    let _group = GroupGuard(child.id());
    let waited = tokio::time::timeout(launch.timeout, child.wait()).await;
    let ended = match waited {
        Ok(status) => describe(&status.context("wait for the agent")?),
        Err(_) => {
            let _ = child.kill().await;
            format!("timed out after {}s and was killed", launch.timeout.as_secs())
        }
    };
    Ok(Exit { ended, elapsed: started.elapsed() })
}

/// Kills the agent's process group (its pid: it leads its own group) when dropped.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        use rustix::process::{Pid, Signal, kill_process_group};
        if let Some(pid) = self.0.and_then(|id| i32::try_from(id).ok()).and_then(Pid::from_raw) {
            // ESRCH once the group is empty.
            let _ = kill_process_group(pid, Signal::KILL);
        }
    }
}

fn describe(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "ended without an exit code".into(),
    }
}
