//! README's walk-through of the seed's loop runs exactly as written: every line of its
//! `readme-walkthrough` block, in order, through `sh -c` with `loopctl` on PATH, against a
//! fresh `loopctl up`, with no project named on any command.

use std::path::Path;
use std::process::Command as StdCommand;

use crate::support::{BIN, Env, start_up};

const MARKER: &str = "# readme-walkthrough";

/// The command lines of README's walk-through block.
fn walkthrough() -> Vec<String> {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let text = std::fs::read_to_string(&readme).expect("README.md is readable");
    let start = text.find(MARKER).expect("README has the walk-through block");
    let block = &text[start..];
    let end = block.find("```").expect("the walk-through block is closed");
    block[..end].lines().skip(1).map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

#[test]
fn the_readme_walkthrough_of_the_seed_loop_runs_as_written() {
    let lines = walkthrough();
    assert!(lines.len() >= 15, "the walk-through covers the loop: {lines:?}");
    assert!(lines.iter().all(|l| l.starts_with("loopctl ")), "only loopctl commands: {lines:?}");
    assert!(
        lines.iter().skip(1).all(|l| !l.contains("--project")),
        "after `init`, the seed's commands name no project: {lines:?}"
    );
    let env = Env::new();
    let (mut up, _url, _printed) = start_up(&env);
    let bin_dir = Path::new(BIN).parent().expect("the binary has a directory");
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut transcript = String::new();
    for line in &lines {
        let mut cmd = StdCommand::new("sh");
        env.apply_std(&mut cmd);
        let out = cmd.env("PATH", &path).arg("-c").arg(line).output().expect("sh runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        transcript.push_str(&format!("$ {line}\n{stdout}{stderr}"));
        assert!(out.status.success(), "README line failed ({}):\n{transcript}", out.status);
    }
    // What the loop left behind is what the README says it does.
    assert!(transcript.contains("Verified 1.1"), "{transcript}");
    assert!(transcript.contains("Rejected 1.2"), "{transcript}");
    assert!(transcript.contains("\"phase\": \"epic-1\""), "state load prints the saved state: {transcript}");
    let story = env.run(&["status", "1.2", "--format", "json"]).json();
    assert_eq!((&story["agent_status"], &story["verified_status"]), (&"pending".into(), &"rejected".into()));
    up.kill();
}
