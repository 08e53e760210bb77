//! Completions, version, and help that shows how to call each command.

use assert_cmd::Command;
use predicates::prelude::*;

use crate::support::{BIN, Env};

#[test]
fn completions_bash_prints_a_completion_script() {
    let env = Env::new();
    env.cmd()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("complete -F").and(predicate::str::contains("loopctl")))
        .stdout(predicate::str::contains("verify").and(predicate::str::contains("--project")));
    for shell in ["zsh", "fish"] {
        env.cmd().args(["completions", shell]).assert().success().stdout(predicate::str::contains("loopctl"));
    }
    env.cmd().args(["completions", "cmd.exe"]).assert().code(2);
}

#[test]
fn version_prints_the_version() {
    let version = format!("loopctl {}\n", env!("CARGO_PKG_VERSION"));
    Command::new(BIN).arg("--version").assert().success().stdout(version.clone());
    Command::new(BIN).arg("-V").assert().success().stdout(version);
}

/// Every command the seed skill names (and the server faces) shows an example in its help.
#[test]
fn help_shows_an_example_for_the_seed_commands() {
    let env = Env::new();
    let commands: &[&[&str]] = &[
        &["status"],
        &["next"],
        &["blocked"],
        &["contract"],
        &["claim"],
        &["start"],
        &["report"],
        &["changes"],
        &["skill", "get"],
        &["review-complete"],
        &["verify"],
        &["reject"],
        &["state", "save"],
        &["state", "load"],
        &["auth", "whoami"],
        &["auth", "login"],
        &["escalation", "clear"],
        &["init"],
        &["serve"],
        &["up"],
        &["admin", "init"],
    ];
    let mut missing = Vec::new();
    for command in commands {
        let out = env.run(&[*command, &["--help"][..]].concat());
        out.ok();
        if !out.stdout.contains("Example") {
            missing.push(command.join(" "));
        }
    }
    assert!(missing.is_empty(), "no `Example` in the --help of: {missing:?}");
    Command::new(BIN).arg("--help").assert().success().stdout(predicate::str::contains("loopctl up"));
}
