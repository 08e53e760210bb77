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

/// `serve --database-url mysql://x` used to create a SQLite file named `mysql:/x`; now it is
/// refused, names the supported stores, and leaves nothing behind.
#[test]
fn serve_refuses_a_database_url_of_an_unsupported_scheme() {
    let env = Env::new();
    for url in ["mysql://x", "mariadb://root@localhost/db", "redis:x"] {
        let out = env.run(&["serve", "--listen", "127.0.0.1:0", "--database-url", url]);
        assert_ne!(out.code, Some(0), "{out:?}");
        assert!(out.stderr.contains("unsupported database URL scheme"), "{out:?}");
        assert!(out.stderr.contains("sqlite:") && out.stderr.contains("postgres://"), "{out:?}");
    }
    let left: Vec<_> = std::fs::read_dir(env.work()).expect("work dir").collect();
    assert!(left.is_empty(), "no file was created: {left:?}");
}
