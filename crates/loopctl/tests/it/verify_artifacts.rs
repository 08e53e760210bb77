//! `loopctl verify-artifacts` (issue 7, items 2 and 3) against temporary git repositories with
//! real commits (made with the `git` CLI; loopctl reads them with gix): real evidence passes
//! and is recorded as a signed run; a made-up SHA, a path missing at the commit, an empty diff
//! and a commit off the branch each fail by name with exit 5; `--run` re-executes the tests on
//! a clean copy of the commit and passes or fails with them.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::{Lab, Out, git};

/// A repository under the test's directory: `main` with a root commit (README.md).
pub(crate) fn repo(lab: &Lab) -> PathBuf {
    let dir = lab.env.path("repo");
    std::fs::create_dir_all(&dir).expect("repo dir");
    git(&dir, &["-c", "init.defaultBranch=main", "init", "-q"]);
    write(&dir, "README.md", "# shop\n");
    commit(&dir, "root");
    dir
}

pub(crate) fn write(dir: &Path, path: &str, text: &str) {
    let full = dir.join(path);
    if let Some(parent) = full.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(full, text).expect("write");
}

/// Commits everything in the work tree (empty commits allowed); answers the full SHA.
pub(crate) fn commit(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

pub(crate) fn commit_diff(sha: &str, files: &[&str]) -> Value {
    json!({"artifact_type": "commit_diff", "details": {"commit_sha": sha, "files": files}})
}

/// Project `web`; the agent contracts, claims, starts and reports story 1.1 with `artifacts`.
fn reported(lab: &Lab, artifacts: &[Value]) {
    lab.project("Web shop", "web");
    let agent = lab.agent();
    for verb in ["contract", "claim", "start"] {
        lab.run(&agent, &[verb, "1.1", "--project", "web"]).ok();
    }
    let texts: Vec<String> = artifacts.iter().map(Value::to_string).collect();
    let mut args = vec!["report", "1.1", "--project", "web"];
    for text in &texts {
        args.extend(["--artifact", text.as_str()]);
    }
    lab.run(&agent, &args).ok().stdout_has("reported_done");
}

/// `verify-artifacts 1.1 --project web --repo REPO EXTRA…` with a verifier key (the runner's
/// role: the only one whose runs are recorded).
fn verify(lab: &Lab, repo: &Path, extra: &[&str]) -> Out {
    let verifier = lab.new_key("runner", "verifier", None);
    verify_as(lab, &verifier, repo, extra)
}

fn verify_as(lab: &Lab, who: &crate::support::Actor, repo: &Path, extra: &[&str]) -> Out {
    let repo = repo.to_string_lossy().into_owned();
    let mut args = vec!["verify-artifacts", "1.1", "--project", "web", "--repo", repo.as_str()];
    args.extend(extra);
    lab.run(who, &args)
}

/// Exit 5, and the failed checks on stderr are exactly `names`, one `error:` line each.
#[track_caller]
fn fails_naming(out: &Out, names: &[String]) {
    out.exit(5);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), names.len(), "one stderr line per failed check: {out:#?}");
    for (line, name) in lines.iter().zip(names) {
        assert!(line.starts_with("error: check failed: "), "{line}");
        assert!(line.contains(&format!(": {name}: ")), "{name:?} named in {line:?}");
    }
}

/// The verification runs on record for story 1.1 (`GET …/verification-runs`, orchestrator).
pub(crate) fn runs(lab: &Lab) -> Vec<Value> {
    let story = lab.story("web", "1.1");
    let id = story["story"]["id"].as_str().or_else(|| story["id"].as_str()).expect("story id").to_string();
    let url = format!("{}/api/v1/stories/{id}/verification-runs", lab.url());
    // reqwest is built without a crypto provider of its own (STACK.md): the binary's one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let answer: Value = runtime.block_on(async {
        let response = reqwest::Client::new().get(&url).bearer_auth(&lab.keys.orch).send().await.expect("GET runs");
        response.json().await.expect("runs as JSON")
    });
    answer["data"].as_array().cloned().unwrap_or_else(|| panic!("a list of runs: {answer}"))
}

#[test]
fn a_real_sha_and_real_paths_pass_and_the_run_is_recorded_signed() {
    let lab = Lab::start();
    let dir = repo(&lab);
    write(&dir, "lib/signup.rs", "pub fn signup() {}\n");
    write(&dir, "tests/signup.rs", "#[test] fn creates_user() {}\n");
    write(&dir, "migrations/001_users.sql", "CREATE TABLE users (id INT);\n");
    let sha = commit(&dir, "signup");
    reported(
        &lab,
        &[
            commit_diff(&sha, &["lib/signup.rs", "tests/signup.rs"]),
            json!({"artifact_type": "test", "path": "tests/signup.rs::creates_user"}),
            json!({"artifact_type": "migration", "path": "migrations/001_users.sql", "details": {"commit_sha": sha}}),
            json!({"artifact_type": "file", "path": "README.md"}),
            json!({"artifact_type": "ci_run", "details": {"url": "https://ci.example/1"}}),
        ],
    );

    // Human output: one row per check, the unknown type listed as not checked, the run recorded.
    let out = verify(&lab, &dir, &[]);
    out.ok()
        .stdout_has(&format!("commit {sha} exists"))
        .stdout_has(&format!("commit {sha} reachable from main"))
        .stdout_has(&format!("diff of {sha} is not empty"))
        .stdout_has(&format!("diff of {sha} touches lib/signup.rs"))
        .stdout_has(&format!("tests/signup.rs::creates_user exists at {sha}"))
        .stdout_has(&format!("migrations/001_users.sql exists at {sha}"))
        .stdout_has(&format!("README.md exists at {sha}"))
        .stdout_has("not checked")
        .stdout_has("artifacts verified")
        .stdout_has("signature valid: true");
    assert!(out.stderr.trim().is_empty(), "nothing on stderr when every check passes: {out:#?}");

    // JSON, from inside the repository (the default --repo) with --no-record.
    let json = lab
        .run_in(
            &lab.orch(),
            &dir.join("lib"),
            &["verify-artifacts", "1.1", "--project", "web", "--no-record", "--format", "json"],
        )
        .json();
    assert_eq!(json["result"], "pass", "{json}");
    assert_eq!(json["branch"], "main", "{json}");
    assert_eq!(json["commit_sha"], sha.as_str(), "{json}");
    assert!(json["verification_run"].is_null(), "--no-record records nothing: {json}");
    let checks = json["checks"].as_array().expect("checks");
    assert!(checks.iter().all(|c| c["ok"] == true || c["status"] == "not_checked"), "{json}");
    assert!(checks.iter().any(|c| c["artifact"] == "ci_run" && c["ok"].is_null()), "{json}");

    // With the run recorded: the server signed it.
    let json = verify(&lab, &dir, &["--format", "json"]).json();
    let run = &json["verification_run"];
    assert_eq!(run["result"], "pass", "{json}");
    assert_eq!(run["signature_valid"], true, "{json}");
    assert_eq!(run["commit_sha"], sha.as_str(), "{json}");
    let on_record = runs(&lab);
    assert_eq!(on_record.len(), 2, "the human run and the JSON run: {on_record:?}");
    assert!(on_record.iter().all(|r| r["signature_valid"] == true && r["result"] == "pass"), "{on_record:?}");
    assert!(
        on_record[1]["checks"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["name"] == format!("commit {sha} exists"))),
        "{on_record:?}"
    );
}

#[test]
fn a_made_up_sha_fails_and_is_named() {
    let lab = Lab::start();
    let dir = repo(&lab);
    let made_up = "0123456789abcdef0123456789abcdef01234567";
    reported(&lab, &[commit_diff(made_up, &[])]);
    let out = verify(&lab, &dir, &[]);
    fails_naming(&out, &[format!("commit {made_up} exists"), format!("diff of {made_up} is not empty")]);
    out.stdout_has("NO").stdout_has("artifacts NOT verified").stdout_has("(fail), signature valid: true");
    let on_record = runs(&lab);
    assert_eq!(on_record.len(), 1, "{on_record:?}");
    assert_eq!(on_record[0]["result"], "fail", "a failing run is recorded as such: {on_record:?}");
}

#[test]
fn a_path_missing_at_the_commit_fails_and_is_named() {
    let lab = Lab::start();
    let dir = repo(&lab);
    write(&dir, "lib/signup.rs", "pub fn signup() {}\n");
    let sha = commit(&dir, "signup");
    // The test file exists only in a later commit: it is missing at the reported one.
    write(&dir, "tests/signup.rs", "#[test] fn creates_user() {}\n");
    commit(&dir, "tests, later");
    reported(
        &lab,
        &[
            commit_diff(&sha, &["lib/signup.rs"]),
            json!({"artifact_type": "test", "path": "tests/signup.rs", "details": {"commit_sha": sha}}),
        ],
    );
    let out = verify(&lab, &dir, &["--format", "json"]);
    out.exit(5);
    let json: Value = serde_json::from_str(&out.stdout).expect("stdout is the checks as JSON");
    assert_eq!(json["result"], "fail", "{json}");
    let failed: Vec<&str> = json["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["ok"] == false)
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(failed, [format!("tests/signup.rs exists at {sha}")], "{json}");
    let error: Value = serde_json::from_str(out.stderr.trim()).expect("stderr is one JSON error");
    assert_eq!(error["error"]["failed_checks"][0]["name"], format!("tests/signup.rs exists at {sha}"), "{error}");
    assert_eq!(json["verification_run"]["result"], "fail", "{json}");

    let out = verify(&lab, &dir, &["--no-record"]);
    fails_naming(&out, &[format!("tests/signup.rs exists at {sha}")]);
}

#[test]
fn an_empty_diff_fails_and_is_named() {
    let lab = Lab::start();
    let dir = repo(&lab);
    let sha = commit(&dir, "nothing changed");
    reported(&lab, &[commit_diff(&sha, &["lib/signup.rs"])]);
    let out = verify(&lab, &dir, &["--no-record"]);
    fails_naming(&out, &[format!("diff of {sha} is not empty"), format!("diff of {sha} touches lib/signup.rs")]);
}

#[test]
fn a_commit_not_reachable_from_the_branch_fails_and_is_named() {
    let lab = Lab::start();
    let dir = repo(&lab);
    git(&dir, &["checkout", "-q", "-b", "story-1.1"]);
    write(&dir, "lib/signup.rs", "pub fn signup() {}\n");
    let sha = commit(&dir, "signup, never merged");
    git(&dir, &["checkout", "-q", "main"]);
    reported(&lab, &[commit_diff(&sha, &["lib/signup.rs"])]);

    // HEAD is on main: the default branch is main, and the commit is not in it.
    let out = verify(&lab, &dir, &["--no-record"]);
    fails_naming(&out, &[format!("commit {sha} reachable from main")]);
    let out = verify(&lab, &dir, &["--branch", "main", "--no-record"]);
    fails_naming(&out, &[format!("commit {sha} reachable from main")]);
    // On its own branch it is reachable.
    verify(&lab, &dir, &["--branch", "story-1.1", "--no-record"]).ok().stdout_has("reachable from story-1.1");
    // A branch that does not exist is a usage error, not a verdict.
    verify(&lab, &dir, &["--branch", "nope", "--no-record"]).fails(2).stderr_has("no branch nope");
}

/// A repository whose `test.sh` exits `code`, with an executable helper and a symbolic link
/// that the script needs (so the clean copy must keep exec bits and links).
fn test_repo(lab: &Lab, code: i32) -> (PathBuf, String) {
    let dir = repo(lab);
    write(&dir, "tool.sh", "#!/bin/sh\necho tool ran\n");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("tool.sh"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::os::unix::fs::symlink("tool.sh", dir.join("tool-link")).expect("symlink");
    write(
        &dir,
        "test.sh",
        &format!(
            "set -e\ntest -x tool.sh\ntest -L tool-link\n./tool-link\n\
             test -z \"$LOOPCTL_API_KEY\" || {{ echo key leaked; exit 9; }}\n\
             test ! -e .git\necho tests done\nexit {code}\n"
        ),
    );
    let sha = commit(&dir, "tests");
    (dir, sha)
}

#[test]
fn run_passes_on_a_commit_whose_tests_pass() {
    let lab = Lab::start();
    let (dir, sha) = test_repo(&lab, 0);
    // The work tree changes after the commit: the run must use the commit, not the checkout.
    write(&dir, "test.sh", "exit 1\n");
    reported(&lab, &[commit_diff(&sha, &["test.sh"])]);
    let json = verify(&lab, &dir, &["--run", "sh test.sh", "--format", "json"]).json();
    let run = json["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == format!("tests pass at {sha}"))
        .cloned()
        .unwrap_or_else(|| panic!("a tests check: {json}"));
    assert_eq!(run["ok"], true, "{json}");
    let detail = run["detail"].as_str().expect("detail");
    assert!(detail.contains("exited 0") && detail.contains("tool ran") && detail.contains("tests done"), "{detail}");
    assert_eq!(json["verification_run"]["result"], "pass", "{json}");
    assert_eq!(json["verification_run"]["signature_valid"], true, "{json}");
}

#[test]
fn run_fails_on_a_commit_whose_tests_fail() {
    let lab = Lab::start();
    let (dir, sha) = test_repo(&lab, 1);
    reported(&lab, &[commit_diff(&sha, &["test.sh"])]);
    let out = verify(&lab, &dir, &["--run", "sh test.sh"]);
    fails_naming(&out, &[format!("tests pass at {sha}")]);
    out.stderr_has("exited 1").stdout_has("tests done").stdout_has("(fail), signature valid: true");

    // A command that outlives --timeout is killed and fails.
    let out = verify(&lab, &dir, &["--run", "sleep 20", "--timeout", "1", "--no-record"]);
    fails_naming(&out, &[format!("tests pass at {sha}")]);
    out.stderr_has("timed out after 1s");
}

/// A reviewer's (or orchestrator's) own check proves nothing to the server: it is printed,
/// and no run is recorded, so it can never satisfy `require_artifact_verification`.
#[test]
fn an_orchestrators_check_is_local_and_records_no_run() {
    let lab = Lab::start();
    let dir = repo(&lab);
    write(&dir, "lib/signup.rs", "pub fn signup() {}\n");
    let sha = commit(&dir, "signup");
    reported(&lab, &[commit_diff(&sha, &["lib/signup.rs"])]);
    let out = verify_as(&lab, &lab.orch(), &dir, &[]);
    out.ok().stdout_has("artifacts verified").stdout_has("Not recorded: only the runner's verifier key records runs");
    assert!(runs(&lab).is_empty(), "nothing on record");
}
