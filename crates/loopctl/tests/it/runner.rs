//! `loopctl runner`, the verifier: a real git repository, a commit whose tests pass, one whose
//! tests fail and a report naming a commit that does not exist. The runner records pass, fail
//! and fail in its own mirror, and `verify` under `require_artifact_verification` follows them.
//! Its check command cannot see the runner's key.

use crate::support::{Actor, Lab, Out};
use crate::verify_artifacts::{commit, commit_diff, repo, write};

/// `test.sh` at this commit exits `code`; it also fails when it can find any loopctl key in
/// its environment or under its HOME.
fn tests_that(dir: &std::path::Path, code: i32, name: &str, key_file: &std::path::Path) -> String {
    write(
        dir,
        "test.sh",
        &format!(
            "if env | grep -q lc_; then echo key in the environment; exit 9; fi\n\
             if grep -rqs lc_ \"$HOME\"; then echo key under HOME; exit 9; fi\n\
             if grep -qs lc_ {key_file}; then echo key file read; exit 9; fi\n\
             echo {name}; exit {code}\n",
            key_file = key_file.display()
        ),
    );
    write(dir, &format!("src/{name}.rs"), "// work\n");
    commit(dir, name)
}

fn report(lab: &Lab, agent: &Actor, number: &str, sha: &str) {
    for verb in ["contract", "claim", "start"] {
        lab.run(agent, &[verb, number, "--project", "web"]).ok();
    }
    let artifact = commit_diff(sha, &[]).to_string();
    lab.run(agent, &["report", number, "--project", "web", "--artifact", &artifact]).ok();
}

#[test]
fn the_runner_records_pass_fail_and_fail_and_verify_follows_them() {
    let lab = Lab::start();
    let dir = repo(&lab);
    // The runner's key is within reach of the runner: in a variable of its environment and in
    // a file under its HOME. The code under test finds it in neither, not even by the file's
    // absolute path (bubblewrap hides the runner's home); test.sh exits 9 if it does.
    // Outside /tmp (the sandbox gets a fresh one anyway), so only hiding the home hides it.
    let runner_home = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a home outside /tmp");
    let key_file = runner_home.path().join("verifier-key.txt");
    let passing = tests_that(&dir, 0, "passing", &key_file);
    lab.project("Web shop", "web");
    let (user, orch, agent) = (lab.user(), lab.orch(), lab.agent());
    lab.run(&user, &["tenant", "settings", "set", "require_artifact_verification=true", "max_concurrent_agents=5"])
        .ok();
    let repo_path = dir.to_string_lossy().into_owned();
    // Only a user configures what the runner checks.
    let configure = ["project", "runner", "web", "--repo", repo_path.as_str(), "--check", "sh test.sh"];
    lab.run(&orch, &configure).fails(3);
    lab.run(&user, &configure).ok();
    let verifier = lab.new_key("runner", "verifier", None);

    report(&lab, &agent, "1.1", &passing);
    report(&lab, &agent, "1.3", "0123456789abcdef0123456789abcdef01234567");
    // Before any run, verify is refused.
    let verify =
        |number: &str| lab.run(&orch, &["verify", number, "--result", "pass", "--summary", "ok", "--project", "web"]);
    verify("1.1").fails(5);

    let runner_dir = lab.env.path("runner").to_string_lossy().into_owned();
    let once = ["runner", "--project", "web", "--once", "--work-dir", runner_dir.as_str()];
    std::fs::write(&key_file, &verifier.key).expect("a key file under HOME");
    let look = || {
        let mut cmd = lab.cmd(&verifier);
        cmd.env("RUNNER_TOKEN", &verifier.key).env("HOME", runner_home.path());
        let out = Out::of(cmd.args(once), &once);
        out.ok();
        assert!(out.stdout.contains("Sandbox: bubblewrap"), ".ci/run installs bubblewrap: {out:?}");
        out.stdout.clone()
    };
    let line =
        |stdout: &str, number: &str| stdout.lines().find(|l| l.starts_with(number)).unwrap_or_default().to_string();
    let first = look();
    assert!(line(&first, "1.1").contains(&format!(": pass at {passing}")), "{first}");
    assert!(line(&first, "1.3").contains(": fail at"), "a commit that does not exist fails: {first}");
    // A second look finds nothing new: every reported commit has its run.
    assert!(look().contains("Nothing waits"), "runs are not repeated");
    // The run keeps the command, how it ended, its duration and the output's tail and digest.
    let run = crate::verify_artifacts::runs(&lab).pop().expect("1.1 has its run");
    let detail = run["checks"].to_string();
    assert!(detail.contains("sh test.sh") && detail.contains("exited 0") && detail.contains("sha256 "), "{run}");
    verify("1.1").ok();
    verify("1.3").fails(5);

    // 1.2 (waiting for 1.1 until now) is reported at a new commit whose tests fail; the runner
    // fetches it into its mirror and fails it.
    let failing = tests_that(&dir, 1, "failing", &key_file);
    report(&lab, &agent, "1.2", &failing);
    let second = look();
    assert!(line(&second, "1.2").contains(&format!(": fail at {failing}")), "{second}");
    verify("1.2").fails(5);
}

#[test]
fn the_runner_refuses_to_start_without_a_verifier_key_or_a_configured_project() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    lab.run(&lab.orch(), &["runner", "--project", "web", "--once"]).fails(3).stderr_has("verifier key");
    let verifier = lab.new_key("runner", "verifier", None);
    lab.run(&verifier, &["runner", "--project", "web", "--once"]).fails(2).stderr_has("no runner configured");
}
