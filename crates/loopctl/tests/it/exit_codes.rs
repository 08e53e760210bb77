//! SPEC exit codes: 0 success, 1 other error, 2 usage (the CLI's, clap's, or the server's
//! `validation_failed`), 3 authentication/permission, 4 not found, 5 conflict (state, custody,
//! race, limit), 6 server unreachable. Errors are one line on stderr, or `{"error":{…}}` on
//! stderr with `--format json`.

use std::process::Stdio;

use serde_json::json;

use crate::support::{Env, Lab};

#[test]
fn exit_0_on_success() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let out = lab.run(&lab.orch(), &["status", "--project", "web"]);
    out.ok();
    assert!(out.stderr.is_empty(), "a success prints nothing on stderr: {out:?}");
}

#[test]
fn a_server_side_validation_error_exits_2_like_other_usage_errors() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let orch = lab.orch();
    let out = lab.run(&orch, &["story", "create", "3.1", " ", "--epic", "1", "--project", "web"]);
    out.fails(2).stderr_has("title");
    let body = lab
        .run(&orch, &["story", "create", "3.1", "", "--epic", "1", "--project", "web", "--format", "json"])
        .fails_json(2, "validation_failed");
    assert_eq!(body["error"]["status"], 422, "{body}");
    lab.run(&orch, &["story", "create", "3.1", "Refunds", "--epic", "99", "--project", "web", "--format", "json"])
        .fails_json(2, "validation_failed");
    let stories = lab.run(&orch, &["pending", "--project", "web", "--format", "json"]).json();
    assert!(!crate::support::numbers(&stories).contains(&"3.1".to_string()), "nothing was created: {stories}");
}

#[test]
fn verify_without_result_is_a_usage_error_and_changes_nothing() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let orch = lab.orch();
    let implementer = lab.new_key("impl-1", "agent", None);
    lab.implement(&implementer, "web", "1.1");
    let no_result = lab.run(&orch, &["verify", "1.1", "--project", "web", "--summary", "looks done"]);
    no_result.exit(2).stderr_has("--result");
    lab.run(&orch, &["verify", "1.1", "--project", "web", "--result", "partial", "--summary", "half"])
        .exit(2)
        .stderr_has("pass, fail");
    lab.run(&orch, &["--format", "json", "verify", "1.1", "--project", "web", "--result", "maybe"])
        .fails_json(2, "usage");
    let story = lab.story("web", "1.1");
    assert_eq!((&story["agent_status"], &story["verified_status"]), (&json!("reported_done"), &json!("unverified")));
    assert_eq!(story["verifications"], json!([]), "no verdict was recorded: {story}");
    // Said out loud, either verdict works.
    lab.run(&orch, &["verify", "1.1", "--project", "web", "--result", "pass", "--summary", "AC met"])
        .ok()
        .stdout_has("verified");
}

#[test]
fn force_unclaim_without_a_reason_is_a_usage_error_and_changes_nothing() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let orch = lab.orch();
    let agent = lab.agent();
    lab.run(&agent, &["contract", "1.1", "--project", "web"]).ok();
    lab.run(&agent, &["claim", "1.1", "--project", "web"]).ok();
    let epoch = lab.story("web", "1.1")["claim_epoch"].clone();
    lab.run(&orch, &["force-unclaim", "1.1", "--project", "web"]).exit(2).stderr_has("--reason");
    for blank in ["", "   "] {
        lab.run(&orch, &["force-unclaim", "1.1", "--project", "web", "--reason", blank]).exit(2).stderr_has("--reason");
    }
    let story = lab.story("web", "1.1");
    assert_eq!((&story["agent_status"], &story["claim_epoch"]), (&json!("assigned"), &epoch), "still held: {story}");
    lab.run(&agent, &["start", "1.1", "--project", "web"]).ok().stdout_has("implementing");
}

#[test]
fn exit_2_on_usage_errors() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let orch = lab.orch();
    // clap: an unknown flag, a bad value, a missing argument.
    let out = lab.run(&orch, &["status", "--bogus"]);
    out.exit(2);
    assert!(out.stderr.starts_with("error: "), "{out:?}");
    lab.run(&orch, &["status", "--project", "web", "--format", "yaml"]).exit(2);
    lab.run(&orch, &["contract"]).exit(2);
    // The CLI's own checks of what it is given.
    lab.run(&orch, &["report", "1.1", "--project", "web", "--artifact", "not json"]).fails(2);
    lab.run(&orch, &["state", "save", "--project", "web", "--data", "[1, 2]"]).fails(2);
    lab.run(&orch, &["init"]).fails(2);
    lab.env.run(&["--profile", "nope", "auth", "whoami"]).fails(2).stderr_has("nope");
}

/// WIRE.md: "errors go to stderr, in JSON with `--format json`" — a program reading the
/// JSON must not get clap's text for a usage error.
#[test]
fn usage_errors_are_json_with_format_json() {
    let env = Env::new();
    env.run(&["status", "--bogus", "--format", "json"]).fails_json(2, "usage");
    env.run(&["--format", "json", "contract"]).fails_json(2, "usage");
}

#[test]
fn exit_2_names_the_projects_when_none_is_given_and_there_are_several() {
    let lab = Lab::start();
    lab.project("Alpha", "alpha");
    let orch = lab.orch();
    // One project: it is used without saying.
    lab.run(&orch, &["next"]).ok().stdout_has("1.1");
    lab.project("Beta", "beta");
    for args in [&["next"][..], &["status"], &["blocked"], &["claim", "1.1"], &["state", "load"]] {
        let out = lab.run(&orch, args);
        out.fails(2).stderr_has("alpha").stderr_has("beta");
    }
    let body = lab.run(&orch, &["next", "--format", "json"]).fails_json(2, "usage");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("alpha") && message.contains("beta"), "{body}");
}

#[test]
fn exit_3_on_a_bad_key_or_a_forbidden_call() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let mut bad = lab.orch();
    bad.key = "lc_not_a_real_key_at_all_000000000000000".into();
    lab.run(&bad, &["status", "--project", "web"]).fails(3);
    lab.run(&bad, &["auth", "whoami", "--format", "json"]).fails_json(3, "unauthorized");
    let out = lab.env.run(&["--server", lab.url(), "status", "--project", "web", "--format", "json"]);
    out.fails_json(3, "unauthorized");

    // An agent may not verify, not even a story that is not its own.
    let agent = lab.agent();
    lab.run(&agent, &["verify", "1.1", "--project", "web", "--result", "pass", "--summary", "x"]).fails(3);
    let out = lab
        .run(&agent, &["verify", "1.1", "--project", "web", "--result", "pass", "--summary", "x", "--format", "json"]);
    out.fails_json(3, "forbidden");
    lab.run(&agent, &["keys", "create", "mine", "--role", "orchestrator"]).fails(3);
}

#[test]
fn exit_4_when_something_is_not_there() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let orch = lab.orch();
    lab.run(&orch, &["status", "99.9", "--project", "web"]).fails(4).stderr_has("99.9");
    lab.run(&orch, &["status", "99.9", "--project", "web", "--format", "json"]).fails_json(4, "not_found");
    lab.run(&orch, &["status", "--project", "nowhere"]).fails(4);

    // `next --claim` with nothing ready: a project whose only story is taken.
    lab.run(&orch, &["project", "create", "Solo", "--slug", "solo"]).ok();
    lab.run(&orch, &["epic", "create", "1", "Only", "--project", "solo"]).ok();
    lab.run(&orch, &["story", "create", "1.1", "The one", "--epic", "1", "--ac", "it works", "--project", "solo"]).ok();
    let agent = lab.agent();
    lab.run(&agent, &["next", "--project", "solo", "--claim"]).ok().stdout_has("1.1");
    lab.run(&agent, &["next", "--project", "solo", "--claim"]).fails(4);
    lab.run(&agent, &["next", "--project", "solo", "--claim", "--format", "json"]).fails_json(4, "nothing_ready");
}

#[test]
fn exit_5_on_contract_mismatch_and_claim_conflicts() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let first = lab.new_key("impl-1", "agent", None);
    let second = lab.new_key("impl-2", "agent", None);

    let body = lab
        .run(&first, &["contract", "1.1", "--project", "web", "--ac-count", "5", "--format", "json"])
        .fails_json(5, "contract_mismatch");
    assert!(body.to_string().contains('2'), "the error says how many criteria there are: {body}");
    lab.run(&first, &["contract", "1.1", "--project", "web", "--ac-count", "5"]).exit(5);

    // A story is claimed once; the second claimant gets a conflict.
    lab.run(&first, &["contract", "1.1", "--project", "web", "--ac-count", "2"]).ok();
    lab.run(&first, &["claim", "1.1", "--project", "web"]).ok();
    lab.run(&second, &["claim", "1.1", "--project", "web"]).fails(5);
    lab.run(&second, &["claim", "1.1", "--project", "web", "--format", "json"]).exit(5);
    lab.run(&second, &["contract", "1.1", "--project", "web"]).exit(5);
    // Claiming needs a contract first.
    lab.run(&second, &["claim", "1.3", "--project", "web", "--format", "json"]).fails_json(5, "must_contract_first");
}

#[test]
fn exit_5_on_a_claim_over_the_concurrency_limit() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    lab.run(&lab.user(), &["tenant", "settings", "set", "max_concurrent_agents=1"]).ok();
    let first = lab.new_key("impl-1", "agent", None);
    let second = lab.new_key("impl-2", "agent", None);
    lab.run(&first, &["contract", "1.1", "--project", "web"]).ok();
    lab.run(&first, &["claim", "1.1", "--project", "web"]).ok();
    lab.run(&second, &["contract", "1.3", "--project", "web"]).ok();
    let body =
        lab.run(&second, &["claim", "1.3", "--project", "web", "--format", "json"]).fails_json(5, "concurrency_limit");
    assert!(body.to_string().contains("1.1"), "the refusal names the stories in flight: {body}");
}

#[test]
fn exit_5_stale_claim_after_the_story_was_reclaimed_by_another_agent() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let orch = lab.orch();
    let old = lab.new_key("impl-1", "agent", None);
    let new = lab.new_key("impl-2", "agent", None);
    lab.run(&old, &["contract", "1.1", "--project", "web"]).ok();
    lab.run(&old, &["claim", "1.1", "--project", "web"]).ok();
    lab.run(&orch, &["force-unclaim", "1.1", "--project", "web", "--reason", "agent stalled"]).ok();
    lab.run(&new, &["contract", "1.1", "--project", "web"]).ok();
    lab.run(&new, &["claim", "1.1", "--project", "web"]).ok();
    lab.run(&old, &["start", "1.1", "--project", "web", "--format", "json"]).fails_json(5, "stale_claim");
    lab.run(&old, &["start", "1.1", "--project", "web"]).fails(5);
    // The new holder carries on.
    lab.run(&new, &["start", "1.1", "--project", "web"]).ok().stdout_has("implementing");
}

/// WIRE.md: "force-unclaim (reclaim) … new claim epoch; the old holder's writes then get
/// `stale_claim`" — also before anyone claims the story again.
#[test]
fn exit_5_stale_claim_right_after_a_force_unclaim() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let orch = lab.orch();
    let old = lab.new_key("impl-1", "agent", None);
    lab.run(&old, &["contract", "1.1", "--project", "web"]).ok();
    lab.run(&old, &["claim", "1.1", "--project", "web"]).ok();
    lab.run(&orch, &["force-unclaim", "1.1", "--project", "web", "--reason", "agent crashed"]).ok();
    lab.run(&old, &["start", "1.1", "--project", "web", "--format", "json"]).fails_json(5, "stale_claim");
}

#[test]
fn exit_6_when_the_server_is_unreachable() {
    let env = Env::new();
    let args = ["--server", "http://127.0.0.1:1", "--api-key", "lc_x", "status", "--project", "web"];
    env.run(&args).fails(6).stderr_has("127.0.0.1:1");
    let mut json_args = args.to_vec();
    json_args.extend(["--format", "json"]);
    env.run(&json_args).fails_json(6, "unreachable");
    // Through the environment as well.
    let out = env
        .cmd()
        .env("LOOPCTL_SERVER", "http://127.0.0.1:1")
        .env("LOOPCTL_API_KEY", "lc_x")
        .args(["next", "-p", "web"])
        .output();
    assert_eq!(out.expect("runs").status.code(), Some(6));
}

/// No command ends in a panic (exit 101 and a stack trace) when its reader goes away
/// (`loopctl … | head -1`).
#[test]
fn a_closed_stdout_never_panics() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let mut panicked = Vec::new();
    for args in [
        &["completions", "bash"][..],
        &["skill", "get", "loopctl:review"],
        &["next", "--project", "web", "--format", "json"],
        &["state", "load", "--project", "web"],
        &["--help"],
    ] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let mut cmd = std::process::Command::new(crate::support::BIN);
        lab.env.apply_std(&mut cmd);
        cmd.env("LOOPCTL_SERVER", lab.url()).env("LOOPCTL_API_KEY", &lab.keys.orch);
        let out = cmd.args(args).stdout(writer).stderr(Stdio::piped()).output().expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() == Some(101) || stderr.contains("panicked") {
            panicked.push(format!("`loopctl {}`: {:?}: {}", args.join(" "), out.status, stderr.trim()));
        }
    }
    assert!(panicked.is_empty(), "panics on a closed stdout:\n{}", panicked.join("\n"));
}
