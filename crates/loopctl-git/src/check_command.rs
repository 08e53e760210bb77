//! A project's check command (`cargo test`) run with `sh -c` in a clean copy of a commit: in its
//! own process group, killed with everything it started at the time limit, stdout and stderr
//! in one pipe of which the tail is kept and the whole is digested.

use std::collections::VecDeque;
use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::sandbox;

/// How many trailing lines of a run's output are kept.
pub const TAIL_LINES: usize = 200;
/// Longest kept output line, in characters.
const TAIL_LINE_CHARS: usize = 400;
/// How long the output may still flow once the command has ended (a process that left the
/// group may hold the pipe open; what was read by then is what is reported).
const OUTPUT_GRACE: Duration = Duration::from_secs(5);

/// The command run with `sh -c` in a clean copy of a commit, and its time limit.
#[derive(Debug, Clone)]
pub struct CheckCommand {
    pub command: String,
    pub timeout: Duration,
    /// Run sealed from the caller (the runner): an empty environment but `PATH`, a temporary
    /// `HOME` and `TMPDIR`, and bubblewrap where it exists, so no key, profile or config of
    /// the caller is reachable. Without it only `LOOPCTL_*` variables are removed (a
    /// reviewer's local check keeps its toolchain's HOME).
    pub sealed: bool,
}

/// How a run ended.
pub struct RunOutcome {
    pub success: bool,
    /// `exited 0`, `exited 1`, `was killed by signal 9`, `timed out after 600s and was killed`.
    pub ended: String,
    pub elapsed: Duration,
    /// The last [`TAIL_LINES`] lines of stdout and stderr, interleaved as written.
    pub tail: Vec<String>,
    /// SHA-256 (hex) of the whole output, and its length in bytes: what was kept is the
    /// tail, what was seen is pinned by the digest.
    pub digest: String,
    pub output_bytes: u64,
}

impl CheckCommand {
    /// Runs the command in `dir`, with `LOOPCTL_VERIFY_COMMIT` set to `commit`. `LOOPCTL_*`
    /// variables (keys among them) are never passed on: the code under test is the
    /// implementer's.
    ///
    /// # Errors
    /// The temporary HOME, the pipe or the process cannot be made.
    pub fn run_in(&self, dir: &Path, commit: &str) -> std::io::Result<RunOutcome> {
        let home = if self.sealed { Some(tempfile::Builder::new().prefix("loopctl-home-").tempdir()?) } else { None };
        let (reader, writer) = std::io::pipe()?;
        let writer_err = writer.try_clone()?;
        let mut cmd = match &home {
            Some(home) if sandbox::bubblewrap_available() => sandbox::command(dir, home.path(), &self.command),
            _ => {
                let mut cmd = Command::new("sh");
                cmd.arg("-c").arg(&self.command);
                cmd
            }
        };
        cmd.current_dir(dir).stdin(Stdio::null()).stdout(writer).stderr(writer_err);
        match &home {
            Some(home) => {
                cmd.env_clear().env("HOME", home.path()).env("TMPDIR", home.path()).env("LANG", "C.UTF-8");
                if let Some(path) = std::env::var_os("PATH") {
                    cmd.env("PATH", path);
                }
            }
            None => {
                for (key, _) in std::env::vars_os() {
                    if key.to_string_lossy().starts_with("LOOPCTL_") {
                        cmd.env_remove(&key);
                    }
                }
            }
        }
        cmd.env("LOOPCTL_VERIFY_COMMIT", commit);
        in_own_process_group(&mut cmd);
        let started = Instant::now();
        let mut child = cmd.spawn()?;
        // Our copies of the pipe's write end go with the command, so the reader sees the end.
        drop(cmd);
        let output = Output::read(reader);
        let deadline = started + self.timeout;
        let (status, timed_out) = loop {
            if let Some(status) = child.try_wait()? {
                break (Some(status), false);
            }
            if Instant::now() >= deadline {
                kill_group(&child);
                let _ = child.kill();
                break (child.wait().ok(), true);
            }
            std::thread::sleep(Duration::from_millis(25));
        };
        let elapsed = started.elapsed();
        // Whatever the command left running in its group goes too (it would hold the pipe open).
        kill_group(&child);
        let (tail, digest, output_bytes) = output.finish();
        let ended = if timed_out {
            format!("timed out after {}s and was killed", self.timeout.as_secs())
        } else {
            match status {
                Some(status) => match status.code() {
                    Some(code) => format!("exited {code}"),
                    None => signal_of(&status),
                },
                None => "ended in an unknown way".into(),
            }
        };
        let success = !timed_out && status.is_some_and(|s| s.success());
        Ok(RunOutcome { success, ended, elapsed, tail, digest, output_bytes })
    }
}

/// The command's output as a thread reads it: the tail so far, and the digest and length once
/// the pipe closes.
struct Output {
    tail: Arc<Mutex<VecDeque<String>>>,
    done: Receiver<(String, u64)>,
}

impl Output {
    fn read(reader: std::io::PipeReader) -> Output {
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (done_tx, done) = std::sync::mpsc::channel();
        let sink = tail.clone();
        std::thread::spawn(move || {
            use sha2::Digest;
            let mut reader = std::io::BufReader::new(reader);
            let mut line = Vec::new();
            let mut digest = sha2::Sha256::new();
            let mut seen = 0u64;
            while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                digest.update(&line);
                seen += line.len() as u64;
                let text = String::from_utf8_lossy(&line);
                let kept: String = text.trim_end_matches(['\n', '\r']).chars().take(TAIL_LINE_CHARS).collect();
                if let Ok(mut lines) = sink.lock() {
                    if lines.len() == TAIL_LINES {
                        lines.pop_front();
                    }
                    lines.push_back(kept);
                }
                line.clear();
            }
            let hex: String = digest.finalize().iter().map(|b| format!("{b:02x}")).collect();
            let _ = done_tx.send((hex, seen));
        });
        Output { tail, done }
    }

    /// The tail, the digest and the byte count (empty and 0 when the pipe did not close in
    /// time).
    fn finish(self) -> (Vec<String>, String, u64) {
        let (digest, bytes) = self.done.recv_timeout(OUTPUT_GRACE).unwrap_or_default();
        let tail = self.tail.lock().map(|lines| lines.iter().cloned().collect()).unwrap_or_default();
        (tail, digest, bytes)
    }
}

#[cfg(unix)]
fn in_own_process_group(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
}

#[cfg(not(unix))]
fn in_own_process_group(_: &mut Command) {}

/// SIGKILL to the child's process group (its pid, see [`in_own_process_group`]): the command
/// and everything it started that stayed in the group.
#[cfg(unix)]
fn kill_group(child: &Child) {
    use rustix::process::{Pid, Signal, kill_process_group};
    // ESRCH once the group is empty: nothing is left to kill.
    let _ = kill_process_group(Pid::from_child(child), Signal::KILL);
}

#[cfg(not(unix))]
fn kill_group(_: &Child) {}

#[cfg(unix)]
fn signal_of(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    status.signal().map_or_else(|| "ended without an exit code".into(), |s| format!("was killed by signal {s}"))
}

#[cfg(not(unix))]
fn signal_of(_: &ExitStatus) -> String {
    "ended without an exit code".into()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// Whether `pid` is gone (or only a zombie waiting for whoever adopted it), within 5 s.
    fn ends(pid: &str) -> bool {
        let stat = format!("/proc/{pid}/stat");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let state = std::fs::read_to_string(&stat).ok().and_then(|s| {
                s.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_string))
            });
            match state.as_deref() {
                None | Some("Z" | "X") => return true,
                Some(_) if Instant::now() >= deadline => return false,
                Some(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    #[test]
    fn a_check_command_that_outlives_its_time_limit_is_killed_with_its_children() {
        let dir = tempfile::tempdir().expect("temp dir");
        let command = "sleep 60 & echo $! >> pids; sleep 60 & echo $! >> pids; echo $$ >> pids; echo started; wait";
        let check = CheckCommand { command: command.into(), timeout: Duration::from_millis(500), sealed: false };
        let started = Instant::now();
        let outcome = check.run_in(dir.path(), "0").expect("ran");
        assert!(!outcome.success);
        assert!(outcome.ended.contains("timed out"), "{}", outcome.ended);
        assert!(started.elapsed() < Duration::from_secs(10), "the group was killed");
        assert_eq!(outcome.tail, vec!["started".to_string()]);
        let pids = std::fs::read_to_string(dir.path().join("pids")).expect("the shell wrote its pids");
        let pids: Vec<&str> = pids.lines().collect();
        assert_eq!(pids.len(), 3, "two sleeps and their shell: {pids:?}");
        for pid in pids {
            assert!(ends(pid), "process {pid} was killed with the command");
        }
    }
}
