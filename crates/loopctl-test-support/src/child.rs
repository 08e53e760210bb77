//! A long-running child (`loopctl serve`, `loopctl up`) whose stderr is read line by line on
//! a thread of its own, so the child never blocks on a full pipe and a test can wait for the
//! line that says it is ready.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a child may take to print the line a test waits for.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A child process; killed when dropped.
pub struct Proc {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    rx: Receiver<String>,
}

impl Proc {
    pub fn spawn(mut cmd: Command, what: &str) -> Proc {
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|err| panic!("cannot start {what}: {err}"));
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = channel();
        let seen = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                seen.lock().expect("lines lock").push(line.clone());
                let _ = tx.send(line);
            }
        });
        Proc { child, lines, rx }
    }

    /// Waits for a stderr line that satisfies `pred`; fails the test on timeout or exit.
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("no {what} within {START_TIMEOUT:?}:\n{}", self.log()),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    panic!("the process ended ({status:?}) before {what}:\n{}", self.log())
                }
            }
        }
    }

    /// Every stderr line so far.
    pub fn log(&self) -> String {
        self.lines.lock().expect("lines lock").join("\n")
    }

    /// Kills the process (SIGKILL: nothing gets a chance to flush) and waits for it.
    /// The child's process id (to signal it).
    #[must_use]
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `within` for the child to exit by itself; its status, or `None`.
    pub fn exited_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `http://HOST:PORT` following `marker` in a line.
pub fn url_after(line: &str, marker: &str) -> Option<String> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let url: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
    let url = url.trim_end_matches(['.', ',', ')']).to_string();
    (url.starts_with("http://") && url.rsplit(':').next().is_some_and(|p| p.parse::<u16>().is_ok())).then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_after_takes_the_url_without_trailing_punctuation() {
        let line = "loopctl 0.1.0 listening on http://127.0.0.1:4000 (docs at /docs)";
        assert_eq!(url_after(line, "listening on ").as_deref(), Some("http://127.0.0.1:4000"));
        assert_eq!(url_after("is up on http://127.0.0.1:80.", "is up on ").as_deref(), Some("http://127.0.0.1:80"));
        assert_eq!(url_after("listening on 127.0.0.1:80", "listening on "), None);
        assert_eq!(url_after("listening on http://127.0.0.1", "listening on "), None);
    }

    #[test]
    fn a_child_is_waited_for_by_its_stderr_line() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo starting >&2; echo 'ready on http://127.0.0.1:9' >&2; sleep 30"]);
        let mut proc = Proc::spawn(cmd, "sh");
        let line = proc.wait_for("the ready line", |l| l.contains("ready on"));
        assert_eq!(url_after(&line, "ready on ").as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(proc.log(), "starting\nready on http://127.0.0.1:9");
    }

    #[test]
    #[should_panic(expected = "the process ended")]
    fn a_child_that_exits_first_fails_the_wait() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo bye >&2"]);
        Proc::spawn(cmd, "sh").wait_for("a line that never comes", |l| l.contains("never"));
    }
}
