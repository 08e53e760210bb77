//! Where the CLI finds server, key and project: profiles from `auth login`, `.loopctl.toml`
//! from `loopctl init` (found from subdirectories and from every git worktree), and
//! `report --commit` building its artifact from the real repository.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{Lab, git};

#[test]
fn auth_login_saves_a_profile_that_later_commands_use() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let implementer = lab.new_key("impl-1", "agent", None);
    let env = &lab.env;

    let out = env.run(&["auth", "login", "--server", lab.url(), "--key", &implementer.key, "--profile", "impl-1"]);
    out.ok().stdout_has("impl-1");
    assert!(env.config_file().is_file(), "auth login writes {}", env.config_file().display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.config_file()).expect("config").permissions().mode();
        assert_eq!(mode & 0o077, 0, "the config holds keys: owner only, got {mode:o}");
    }

    let me = env.run(&["--profile", "impl-1", "auth", "whoami", "--format", "json"]).json();
    assert_eq!((&me["role"], &me["key_name"]), (&json!("agent"), &json!("impl-1")), "{me}");
    assert_eq!((&me["profile"], &me["server"]), (&json!("impl-1"), &json!(lab.url())), "{me}");
    env.run(&["auth", "whoami", "--profile", "impl-1"]).ok().stdout_has("impl-1");
    // The first profile saved is the default one.
    env.run(&["auth", "whoami"]).ok().stdout_has("impl-1");
    env.run(&["next", "--project", "web"]).ok().stdout_has("1.1");

    // A second profile; flags and env still win over it.
    env.run(&["auth", "login", "--server", lab.url(), "--key", &lab.keys.orch, "--profile", "orch"]).ok();
    let me = env.run(&["--profile", "orch", "auth", "whoami", "--format", "json"]).json();
    assert_eq!(me["role"], "orchestrator", "{me}");
    let out = env
        .cmd()
        .env("LOOPCTL_API_KEY", &lab.keys.user)
        .args(["--profile", "orch", "auth", "whoami", "--format", "json"])
        .output();
    let me: Value = serde_json::from_slice(&out.expect("runs").stdout).expect("json");
    assert_eq!(me["role"], "user", "LOOPCTL_API_KEY beats the profile: {me}");

    // A bad key is refused at login and nothing is saved.
    let before = std::fs::read_to_string(env.config_file()).expect("config");
    env.run(&["auth", "login", "--server", lab.url(), "--key", "lc_wrong", "--profile", "bad"]).fails(3);
    assert_eq!(std::fs::read_to_string(env.config_file()).expect("config"), before);
}

/// A tenant with two projects, so the only-project fallback can never be what resolves one.
fn two_projects(lab: &Lab) -> (String, String) {
    (lab.project("Web shop", "web"), lab.project("Other", "other"))
}

fn project_of(lab: &Lab, dir: &Path) -> Value {
    lab.run_in(&lab.orch(), dir, &["status", "--format", "json"]).json()["project"]["slug"].clone()
}

#[test]
fn loopctl_init_pins_the_project_for_the_directory_and_below() {
    let lab = Lab::start();
    let (web, _) = two_projects(&lab);
    let orch = lab.orch();
    let repo = lab.env.work().join("repo");
    let deep = repo.join("lib").join("accounts");
    std::fs::create_dir_all(&deep).expect("dirs");

    lab.run_in(&orch, &deep, &["status"]).fails(2);
    lab.run_in(&orch, &repo, &["init", "--project", "web"]).ok();
    let file = std::fs::read_to_string(repo.join(".loopctl.toml")).expect(".loopctl.toml written");
    assert!(file.contains("project = \"web\""), "{file}");

    assert_eq!(project_of(&lab, &deep), json!("web"));
    lab.run_in(&orch, &deep, &["status"]).ok().stdout_has("Web shop (web)");
    let story = lab.run_in(&orch, &deep, &["status", "1.1", "--format", "json"]).json();
    assert_eq!(story["project_id"], json!(web), "story numbers resolve in the pinned project: {story}");

    // Precedence: flag > env > .loopctl.toml.
    let out =
        lab.cmd(&orch).current_dir(&deep).env("LOOPCTL_PROJECT", "other").args(["status", "--format", "json"]).output();
    let status: Value = serde_json::from_slice(&out.expect("runs").stdout).expect("json");
    assert_eq!(status["project"]["slug"], "other", "env beats the file");
    let out = lab
        .cmd(&orch)
        .current_dir(&deep)
        .env("LOOPCTL_PROJECT", "other")
        .args(["status", "--project", "web", "--format", "json"])
        .output();
    let status: Value = serde_json::from_slice(&out.expect("runs").stdout).expect("json");
    assert_eq!(status["project"]["slug"], "web", "the flag beats env");
    // Outside the repository nothing is pinned.
    lab.run(&orch, &["status"]).fails(2);
}

#[test]
fn every_git_worktree_resolves_the_main_checkouts_project() {
    let lab = Lab::start();
    two_projects(&lab);
    let orch = lab.orch();
    let main = lab.env.work().join("main");
    std::fs::create_dir_all(&main).expect("dirs");
    git(&main, &["-c", "init.defaultBranch=main", "init", "-q"]);
    std::fs::write(main.join("README.md"), "# web\n").expect("write");
    git(&main, &["add", "README.md"]);
    git(&main, &["commit", "-q", "-m", "initial"]);
    lab.run_in(&orch, &main, &["init", "--project", "web"]).ok();
    assert!(git(&main, &["status", "--porcelain"]).contains(".loopctl.toml"), "the file is untracked");

    let worktree = lab.env.work().join("wt-1.1");
    let worktree_arg = worktree.to_string_lossy().into_owned();
    git(&main, &["worktree", "add", "-q", "-b", "story-1.1", &worktree_arg]);
    assert!(!worktree.join(".loopctl.toml").exists(), "an untracked file is not in the worktree");
    let inside = worktree.join("lib");
    std::fs::create_dir_all(&inside).expect("dirs");
    assert_eq!(project_of(&lab, &worktree), json!("web"));
    assert_eq!(project_of(&lab, &inside), json!("web"));

    // An implementer in the worktree works the seed's commands without naming the project.
    let implementer = lab.new_key("impl-1", "agent", None);
    lab.run_in(&implementer, &inside, &["contract", "1.1"]).ok();
    lab.run_in(&implementer, &inside, &["claim", "1.1"]).ok();
    let web = lab.story("web", "1.1");
    let other = lab.story("other", "1.1");
    assert_eq!((&web["agent_status"], &other["agent_status"]), (&json!("assigned"), &json!("pending")));
}

#[test]
fn report_commit_sends_the_full_sha_and_the_changed_files() {
    let lab = Lab::start();
    two_projects(&lab);
    let implementer = lab.new_key("impl-1", "agent", None);
    let repo = lab.env.work().join("repo");
    std::fs::create_dir_all(repo.join("lib")).expect("dirs");
    std::fs::create_dir_all(repo.join("test")).expect("dirs");
    git(&repo, &["-c", "init.defaultBranch=main", "init", "-q"]);
    std::fs::write(repo.join("README.md"), "# web\n").expect("write");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "initial"]);
    std::fs::write(repo.join("lib").join("signup.ex"), "defmodule Signup do\nend\n").expect("write");
    std::fs::write(repo.join("test").join("signup_test.exs"), "# tests\n").expect("write");
    std::fs::write(repo.join("README.md"), "# web\n\nSign-up.\n").expect("write");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "Sign-up endpoint"]);
    let sha = git(&repo, &["rev-parse", "HEAD"]);
    assert_eq!(sha.len(), 40);
    lab.run_in(&lab.orch(), &repo, &["init", "--project", "web"]).ok();

    for verb in ["contract", "claim", "start"] {
        lab.run_in(&implementer, &repo, &[verb, "1.1"]).ok();
    }
    let short = &sha[..8];
    lab.run_in(&implementer, &repo, &["report", "1.1", "--commit", short]).ok().stdout_has("reported_done");

    let story = lab.story("web", "1.1");
    let artifacts = story["artifacts"].as_array().expect("artifacts");
    let diff = artifacts.iter().find(|a| a["artifact_type"] == "commit_diff").expect("a commit_diff artifact");
    assert_eq!(diff["details"]["commit_sha"], json!(sha), "the full SHA: {story}");
    let mut files: Vec<&str> =
        diff["details"]["files"].as_array().expect("files").iter().filter_map(Value::as_str).collect();
    files.sort_unstable();
    assert_eq!(files, ["README.md", "lib/signup.ex", "test/signup_test.exs"], "{story}");

    // A commit that does not exist is the caller's mistake: usage, nothing sent.
    lab.run_in(&implementer, &repo, &["report", "1.3", "--commit", "deadbeefdeadbeef"]).fails(2);
}
