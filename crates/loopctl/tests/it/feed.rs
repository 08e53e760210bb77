//! `changes --since`: a cursor, an RFC 3339 time, a date or a time ago; and the `next:` hint
//! it prints is a value that works when passed back.

use serde_json::Value;

use crate::support::{Lab, Out};

/// The value after `next: --since ` in a human `changes` answer.
#[track_caller]
fn next_since(out: &Out) -> String {
    let line = out.ok().stdout.lines().find_map(|line| line.strip_prefix("next: --since "));
    let line = line.unwrap_or_else(|| panic!("no `next: --since` line: {out:?}"));
    line.split_whitespace().next().unwrap_or_default().to_string()
}

#[test]
fn changes_since_a_time_ago_works_and_its_next_hint_works_when_passed_back() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let orch = lab.orch();
    lab.implement(&lab.agent(), "web", "1.1");

    let recent = lab.run(&orch, &["changes", "--project", "web", "--since", "10m"]);
    recent.ok().stdout_has("imported").stdout_has("1.1: reported_done");
    let next = next_since(&recent);
    let cursor: i64 = next.parse().unwrap_or_else(|_| panic!("the hint after events is a cursor: {next:?}"));
    let last = lab.run(&orch, &["changes", "--project", "web", "--format", "json"]).json()["next_cursor"].clone();
    assert_eq!(last, cursor, "the hint is the last event's cursor");
    let after = lab.run(&orch, &["changes", "--project", "web", "--since", &next]);
    assert_eq!(after.ok().stdout.lines().nth(1), Some(""), "nothing after the last event: {after:?}");
    assert_eq!(next_since(&after), next, "with nothing new, the same cursor again");

    // A time after every event: nothing to show, and the hint is the cursor the feed stands at
    // (the server answers one), which works when passed back.
    let future = lab.run(&orch, &["changes", "--project", "web", "--since", "2099-12-01"]);
    assert_eq!(future.ok().stdout.lines().nth(1), Some(""), "nothing after 2099: {future:?}");
    let hint = next_since(&future);
    assert_eq!(hint, next, "a date with nothing newer continues from the feed's cursor: {future:?}");
    assert_eq!(next_since(&lab.run(&orch, &["changes", "--project", "web", "--since", &hint])), hint);

    for since in ["45s", "2h", "3d", "2020-01-01", "2020-01-01T00:00:00+02:00", "0"] {
        let page = lab.run(&orch, &["changes", "--project", "web", "--since", since, "--format", "json"]).json();
        let events = page["data"].as_array().map_or(0, Vec::len);
        assert!(events >= 6, "--since {since}: every event of this test is newer: {page}");
        let hint = next_since(&lab.run(&orch, &["changes", "--project", "web", "--since", since]));
        assert_ne!(hint, "-", "--since {since}");
    }
}

#[test]
fn a_bad_since_is_a_usage_error_naming_the_accepted_forms() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let orch = lab.orch();
    for bad in ["yesterday", "10x", "2026-13-01", "-"] {
        lab.run(&orch, &["changes", "--project", "web", "--since", bad])
            .fails(2)
            .stderr_has(&format!("`{bad}`"))
            .stderr_has("a cursor")
            .stderr_has("RFC 3339")
            .stderr_has("a date")
            .stderr_has("10m");
    }
    lab.run(&orch, &["changes", "--project", "web", "--since", "soon", "--format", "json"]).fails_json(2, "usage");
}

/// A command left running that prints as it reads: its stdout, line by line, as it comes.
struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Running {
    fn start(lab: &Lab, args: &[&str]) -> Running {
        use std::io::BufRead;
        let mut cmd = lab.env.std_cmd();
        cmd.env("LOOPCTL_SERVER", lab.url())
            .env("LOOPCTL_API_KEY", &lab.orch().key)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = cmd.spawn().expect("start the command");
        let stdout = child.stdout.take().expect("its stdout");
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// Lines until one contains `needle` (fails after `within`).
    fn until(&self, needle: &str, within: std::time::Duration) -> Vec<String> {
        let deadline = std::time::Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    seen.push(line);
                    if found {
                        return seen;
                    }
                }
                Err(_) => panic!("no line with {needle:?} within {within:?}; saw:\n{}", seen.join("\n")),
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `changes --follow` prints the backlog, then each event as it is committed, from the live
/// stream: well under the second a poll would take, and each event once.
#[test]
fn changes_follow_prints_each_event_as_it_is_committed_once() {
    let lab = Lab::start();
    lab.project("Web", "web");
    let follow = Running::start(&lab, &["changes", "--project", "web", "--follow", "--format", "json"]);
    let backlog = follow.until("\"imported\"", std::time::Duration::from_secs(10));
    let mut cursors: Vec<i64> = backlog
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|e| e["cursor"].as_i64())
        .collect();
    for verb in ["contract", "claim", "unclaim"] {
        lab.run(&lab.agent(), &[verb, "1.1", "--project", "web"]).ok();
        let started = std::time::Instant::now();
        let lines = follow.until("\"status_changed\"", std::time::Duration::from_secs(5));
        assert!(
            started.elapsed() < std::time::Duration::from_millis(900),
            "{verb} took {:?} to arrive",
            started.elapsed()
        );
        cursors.extend(
            lines.iter().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter_map(|e| e["cursor"].as_i64()),
        );
    }
    let mut sorted = cursors.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(cursors, sorted, "each event once, in order");
}

/// The server restarts under a running `changes --follow`: the follower reconnects by itself
/// and resumes after the last event it printed, so what happened while it was away comes
/// once, and nothing it printed comes again.
#[test]
fn changes_follow_resumes_across_a_server_restart_without_repeating_or_losing_an_event() {
    let mut lab = Lab::start();
    lab.project("Web", "web");
    let follow = Running::start(&lab, &["changes", "--project", "web", "--follow", "--format", "json"]);
    let cursors_in = |lines: &[String]| -> Vec<i64> {
        lines
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|e| e["cursor"].as_i64())
            .collect()
    };
    let mut seen = cursors_in(&follow.until("\"imported\"", std::time::Duration::from_secs(10)));
    let listen = lab.url().trim_start_matches("http://").to_owned();
    lab.server.proc.kill();
    lab.server = crate::support::Server::start_at(&lab.env, &lab.env.db(), &listen, &[]);
    lab.run(&lab.agent(), &["contract", "1.1", "--project", "web"]).ok();
    lab.run(&lab.agent(), &["claim", "1.1", "--project", "web"]).ok();
    let lines = follow.until("\"assigned\"", std::time::Duration::from_secs(15));
    seen.extend(cursors_in(&lines));
    let mut once = seen.clone();
    once.sort_unstable();
    once.dedup();
    assert_eq!(seen, once, "each event once, in order, across the restart: {seen:?}");
}

/// SIGTERM stops a server within seconds even while a follower holds a live stream open
/// (a stream never ends by itself; the server gives open connections a short grace).
#[test]
fn a_server_stops_promptly_on_sigterm_while_a_follower_is_connected() {
    let mut lab = Lab::start();
    lab.project("Web", "web");
    let follow = Running::start(&lab, &["changes", "--project", "web", "--follow", "--format", "json"]);
    follow.until("\"imported\"", std::time::Duration::from_secs(10));
    let pid = lab.server.proc.id().to_string();
    let signalled = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
    assert!(signalled.success());
    let status = lab.server.proc.exited_within(std::time::Duration::from_secs(10));
    let status = status.expect("the server exits within 10 s of SIGTERM with a stream open");
    assert!(status.success(), "a clean stop: {status:?}");
}

/// `loopctl watch` draws the overview and draws it again when the project changes.
#[test]
fn watch_redraws_the_overview_when_a_story_is_claimed() {
    let lab = Lab::start();
    lab.project("Web", "web");
    let watch = Running::start(&lab, &["watch", "--project", "web"]);
    watch.until("stories verified", std::time::Duration::from_secs(10));
    lab.run(&lab.agent(), &["contract", "1.1", "--project", "web"]).ok();
    lab.run(&lab.agent(), &["claim", "1.1", "--project", "web"]).ok();
    watch.until("In flight", std::time::Duration::from_secs(5));
    let listed = watch.until("Sign-up endpoint", std::time::Duration::from_secs(2));
    assert!(listed.last().is_some_and(|l| l.starts_with("1.1")), "the claimed story is listed: {listed:?}");
}
