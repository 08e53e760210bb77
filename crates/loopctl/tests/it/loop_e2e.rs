//! The seed's loop, with the commands written exactly as `seed-orchestrate-skill.txt` writes
//! them, by separate orchestrator, implementer and reviewer identities; then rejection and
//! re-queue, and escalation.

use serde_json::{Value, json};

use crate::support::{Lab, iso_now, numbers};

#[test]
fn the_seed_loop_as_written_with_separate_identities() {
    let lab = Lab::start();
    let web = lab.project("Web shop", "web");
    // A second project, so every command below that names no project must find `web` in
    // the .loopctl.toml of the working directory (the agent's checkout).
    lab.project("Other", "other");
    let orch = lab.orch();
    let implementer = lab.new_key("impl-1", "agent", None);
    let reviewer = lab.new_key("reviewer-1", "orchestrator", None);
    lab.run(&orch, &["init", "--project", "web"]).ok();

    // Prerequisites: `loopctl auth whoami` returns valid orchestrator credentials.
    lab.run(&orch, &["auth", "whoami"]).ok().stdout_has("orchestrator");

    // 1. Check project state.
    lab.run(&orch, &["status", "--project", "web"]).ok().stdout_has("Web shop (web)").stdout_has("0 of 4 stories");
    let next = lab.run(&orch, &["next", "--project", "web"]).ok().stdout.clone();
    assert!(next.contains("1.1") && next.contains("1.3"), "ready: {next}");
    assert!(!next.contains("1.2") && !next.contains("2.1"), "blocked stories are not ready: {next}");
    let blocked = lab.run(&orch, &["blocked", "--project", "web"]).ok().stdout.clone();
    assert!(blocked.contains("1.2") && blocked.contains("2.1"), "blocked: {blocked}");

    // 3.–4. The implementer contracts, claims, starts and reports.
    let last_poll = iso_now();
    lab.run(&implementer, &["contract", "1.1"]).ok().stdout_has("AC-1.1.2").stdout_has("contracted");
    lab.run(&implementer, &["claim", "1.1"]).ok().stdout_has("assigned");
    lab.run(&implementer, &["start", "1.1"]).ok().stdout_has("implementing");
    let artifact = r#"{"artifact_type": "commit_diff", "details": {"commit_sha": "9f2c1e4b7a6d5c3b2a1f0e9d8c7b6a5f4e3d2c1b", "files": ["lib/accounts/signup.ex", "test/accounts/signup_test.exs"]}}"#;
    lab.run(&implementer, &["report", "1.1", "--artifact", artifact]).ok().stdout_has("reported_done");

    // 5. Poll for completion.
    let changes = lab.run(&orch, &["changes", "--project", "web", "--since", &last_poll]).ok().stdout.clone();
    assert!(changes.contains("reported_done"), "changes since {last_poll}: {changes}");
    let feed = lab.run(&orch, &["changes", "--project", "web", "--since", &last_poll, "--format", "json"]).json();
    let statuses: Vec<&str> = feed["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|e| e["new_state"]["number"] == "1.1")
        .filter_map(|e| e["new_state"]["agent_status"].as_str())
        .collect();
    assert_eq!(statuses, ["contracted", "assigned", "implementing", "reported_done"], "{feed}");
    assert!(
        !feed["data"].as_array().expect("data").iter().any(|e| e["new_state"]["number"] == "1.3"),
        "nothing happened to 1.3 since {last_poll}: {feed}"
    );
    lab.run(&orch, &["status", "1.1"]).ok().stdout_has("reported_done").stdout_has("commit_diff");
    // `$LAST_POLL` as `date -u +%FT%TZ` or with an offset gives it: whole seconds work too.
    for since in ["2020-01-01T00:00:00Z", "2020-01-01T00:00:00+00:00"] {
        let all = lab.run(&orch, &["changes", "--project", "web", "--since", since, "--format", "json"]).json();
        assert!(all["data"].as_array().is_some_and(|d| d.len() > statuses.len()), "since {since}: {all}");
    }

    // 6.–7. The review skills.
    lab.run(&orch, &["skill", "get", "loopctl:review"]).ok().stdout_has("loopctl:review");
    lab.run(&orch, &["skill", "get", "loopctl:verify-artifacts"]).ok().stdout_has("loopctl:verify-artifacts");

    // Custody: the implementer may not verify (its role may not) ...
    let out = lab.run(&implementer, &["verify", "1.1", "--result", "pass", "--summary", "I did it"]);
    out.fails(3);
    // ... nor may an orchestrator key minted for the implementer's own identity.
    let implementer_id = lab.agent_id(&implementer);
    let sneaky = lab.new_key("sneaky", "orchestrator", Some(&implementer_id));
    assert_eq!(lab.agent_id(&sneaky), implementer_id);
    let out = lab.run(&sneaky, &["verify", "1.1", "--result", "pass", "--summary", "looks great", "--format", "json"]);
    out.fails_json(5, "self_verify_blocked");
    let out = lab.run(&sneaky, &["review-complete", "1.1", "--summary", "looks great", "--format", "json"]);
    out.fails_json(5, "self_review_blocked");
    lab.run(&sneaky, &["verify", "1.1", "--result", "pass", "--summary", "looks great"]).fails(5);

    // The independent review, by another identity.
    lab.run(&reviewer, &["review-complete", "1.1", "--summary", "ACs met; tests cover both criteria"]).ok();

    // 8. Record verification.
    lab.run(&orch, &["verify", "1.1", "--result", "pass", "--summary", "All ACs met, tests pass, artifacts verified"])
        .ok()
        .stdout_has("verified");
    let story = lab.story("web", "1.1");
    assert_eq!(story["verified_status"], "verified", "{story}");
    assert_eq!(story["agent_status"], "reported_done", "{story}");
    let reviewer_id = lab.agent_id(&reviewer);
    let reviews = story["reviews"].as_array().expect("reviews");
    assert_eq!(reviews.len(), 1, "{story}");
    assert_eq!(reviews[0]["reviewer_agent_id"], json!(reviewer_id), "{story}");
    assert_ne!(reviewer_id, implementer_id);
    assert_eq!(story["assigned_agent_id"], json!(implementer_id), "{story}");

    // 9. Checkpoint state.
    lab.run(
        &orch,
        &["state", "save", "--project", "web", "--data", r#"{"phase": "epic-1", "last_verified": "US-1.1"}"#],
    )
    .ok();

    // 10. Iterate: 1.2 was waiting for 1.1 and is ready now; this time the verdict is fail.
    let ready = lab.run(&orch, &["next", "--project", "web", "--format", "json"]).json();
    assert_eq!(numbers(&ready), ["1.2", "1.3"], "{ready}");
    lab.run(&implementer, &["contract", "US-1.2"]).ok();
    lab.run(&implementer, &["claim", "1.2"]).ok();
    lab.run(&implementer, &["start", "1.2"]).ok();
    lab.run(&implementer, &["report", "1.2", "--artifact", artifact]).ok();
    lab.run(&orch, &["reject", "1.2", "--reason", "Missing LiveView tests for AC-6.2.3, no tenant isolation test"])
        .ok()
        .stdout_has("pending");
    let story = lab.story("web", "1.2");
    assert_eq!(story["agent_status"], "pending", "rejection auto-resets to pending: {story}");
    assert_eq!(story["rejection_reason"], "Missing LiveView tests for AC-6.2.3, no tenant isolation test");

    // Crash recovery: load the last checkpoint.
    let loaded = lab.run(&orch, &["state", "load", "--project", "web"]).json();
    assert_eq!(loaded, json!({"phase": "epic-1", "last_verified": "US-1.1"}));
    lab.run(&orch, &["auth", "whoami"]).ok().stdout_has("orchestrator");

    // Everything happened in `web`; `other` is untouched.
    let other = lab.run(&orch, &["status", "--project", "other", "--format", "json"]).json();
    assert_eq!(other["progress"]["stories_by_verified_status"]["verified"], json!(0), "{other}");
    assert_ne!(other["project"]["id"], json!(web));
}

#[test]
fn a_rejected_story_goes_back_to_the_queue() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let orch = lab.orch();
    let implementer = lab.new_key("impl-1", "agent", None);
    lab.implement(&implementer, "web", "1.1");
    let ready = lab.run(&orch, &["next", "--project", "web", "--format", "json"]).json();
    assert_eq!(numbers(&ready), ["1.3"], "a reported story is not ready: {ready}");

    lab.run(&orch, &["reject", "1.1", "--project", "web", "--reason", "No test for the duplicate email"]).ok();
    let story = lab.story("web", "1.1");
    assert_eq!(story["agent_status"], "pending", "{story}");
    assert_eq!(story["verified_status"], "rejected", "{story}");
    assert_eq!(story["iteration_count"], 1, "{story}");
    assert_eq!(story["escalated"], false, "{story}");
    let ready = lab.run(&orch, &["next", "--project", "web", "--format", "json"]).json();
    assert_eq!(numbers(&ready), ["1.1", "1.3"], "the rejected story is ready again: {ready}");
    lab.run(&orch, &["next", "--project", "web"]).ok().stdout_has("1.1");

    // The next iteration runs like the first; a pass then verifies it.
    lab.implement(&implementer, "web", "1.1");
    lab.run(&orch, &["verify", "1.1", "--project", "web", "--result", "pass", "--summary", "fixed"]).ok();
    let story = lab.story("web", "1.1");
    assert_eq!(story["verified_status"], "verified", "{story}");
    assert_eq!(story["iteration_count"], 1, "{story}");

    // `verify --result fail` is a rejection with the summary as its reason.
    lab.implement(&implementer, "web", "1.3");
    lab.run(&orch, &["verify", "1.3", "--project", "web", "--result", "fail", "--summary", "no mail sent"]).ok();
    let story = lab.story("web", "1.3");
    assert_eq!((&story["agent_status"], &story["iteration_count"]), (&json!("pending"), &json!(1)), "{story}");
    assert_eq!(story["rejection_reason"], "no mail sent", "{story}");
}

fn escalation_fields(story: &Value) -> (Value, Value, Value) {
    (story["iteration_count"].clone(), story["escalated"].clone(), story["escalation_locked"].clone())
}

#[test]
fn repeated_rejections_escalate_then_lock_until_a_user_clears() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let (orch, user) = (lab.orch(), lab.user());
    let implementer = lab.new_key("impl-1", "agent", None);
    lab.run(&user, &["tenant", "settings", "set", "escalate_after_rejections=2", "max_review_cycles=3"]).ok();
    let reject = |n: usize| {
        lab.implement(&implementer, "web", "1.1");
        let reason = format!("attempt {n} misses AC-1.1.2");
        lab.run(&orch, &["reject", "1.1", "--project", "web", "--reason", &reason]).ok();
        lab.story("web", "1.1")
    };

    let story = reject(1);
    assert_eq!(escalation_fields(&story), (json!(1), json!(false), json!(false)), "{story}");
    let story = reject(2);
    assert_eq!(escalation_fields(&story), (json!(2), json!(true), json!(false)), "escalated: {story}");
    assert!(story["escalated_at"].is_string(), "{story}");
    let overview = lab.run(&orch, &["status", "--project", "web", "--format", "json"]).json();
    assert_eq!(numbers(&json!({"data": overview["escalated"]})), ["1.1"], "{overview}");
    lab.run(&orch, &["status", "--project", "web"]).ok().stdout_has("Escalated");

    // Escalated but not locked: one more round is allowed.
    let story = reject(3);
    assert_eq!(escalation_fields(&story), (json!(3), json!(true), json!(true)), "locked: {story}");
    lab.run(&implementer, &["contract", "1.1", "--project", "web", "--format", "json"])
        .fails_json(5, "escalation_locked");
    lab.run(&implementer, &["claim", "1.1", "--project", "web", "--format", "json"]).fails_json(5, "escalation_locked");
    lab.run(&implementer, &["claim", "1.1", "--project", "web"]).fails(5);
    let ready = lab.run(&orch, &["next", "--project", "web", "--format", "json"]).json();
    assert_eq!(numbers(&ready), ["1.3"], "a locked story leaves the ready list: {ready}");

    // Only a user key clears it.
    lab.run(&orch, &["escalation", "clear", "1.1", "--project", "web", "--note", "x"]).fails(3);
    lab.run(&orch, &["escalation", "clear", "1.1", "--project", "web", "--note", "x", "--format", "json"])
        .fails_json(3, "forbidden");
    lab.run(&user, &["escalation", "clear", "1.1", "--project", "web", "--note", "split into 1.1a/1.1b"]).ok();
    let story = lab.story("web", "1.1");
    assert_eq!((&story["escalated"], &story["escalation_locked"]), (&json!(false), &json!(false)), "{story}");
    let ready = lab.run(&orch, &["next", "--project", "web", "--format", "json"]).json();
    assert_eq!(numbers(&ready), ["1.1", "1.3"], "{ready}");
    lab.run(&implementer, &["contract", "1.1", "--project", "web"]).ok();
    lab.run(&implementer, &["claim", "1.1", "--project", "web"]).ok().stdout_has("assigned");
}

#[test]
fn claim_and_start_say_when_the_lease_ends() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let agent = lab.agent();
    lab.run(&agent, &["contract", "1.1", "--project", "web"]).ok();
    let claimed = lab.run(&agent, &["claim", "1.1", "--project", "web"]);
    let lease = lab.story("web", "1.1")["lease_expires_at"].as_str().expect("a claimed story has a lease").to_string();
    // Shown to the second: `2026-12-01T22:40:00.123Z` reads `2026-12-01T22:40:00Z`.
    let until = format!("{}Z", &lease[..19]);
    claimed.ok().stdout_has(&format!(
        "Claimed 1.1 Sign-up endpoint: assigned / unverified (lease until {until}; renew with loopctl heartbeat 1.1)"
    ));
    let started = lab.run(&agent, &["start", "1.1", "--project", "web"]);
    started.ok().stdout_has("Started 1.1 Sign-up endpoint: implementing / unverified (lease until ");
    started.stdout_has("renew with loopctl heartbeat 1.1)");

    // Programs get the answer as it was: the story with its lease.
    let json = lab.run(&agent, &["heartbeat", "1.1", "--project", "web", "--format", "json"]).json();
    assert!(json["story"]["lease_expires_at"].is_string(), "{json}");
    assert_eq!(json["story"]["agent_status"], "implementing", "{json}");
    // A story given back has no lease to speak of.
    let unclaimed = lab.run(&agent, &["unclaim", "1.1", "--project", "web"]);
    assert!(!unclaimed.ok().stdout.contains("lease until"), "{unclaimed:?}");
}

/// Nothing vanishes: a contract refused a slot waits in `next` (marked contracted, by whom)
/// and is claimed once a slot frees; when everything is verified, `next` and `status` say the
/// project is complete instead of showing an empty table.
#[test]
fn a_contract_refused_a_slot_stays_in_next_and_a_finished_project_says_so() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let (user, orch) = (lab.user(), lab.orch());
    let first = lab.new_key("impl-1", "agent", None);
    let second = lab.new_key("impl-2", "agent", None);
    lab.run(&user, &["tenant", "settings", "set", "max_concurrent_agents=1"]).ok();
    lab.run(&orch, &["init", "--project", "web"]).ok();

    lab.run(&first, &["contract", "1.1"]).ok();
    lab.run(&first, &["claim", "1.1"]).ok();
    lab.run(&second, &["contract", "1.3"]).ok();
    lab.run(&second, &["claim", "1.3"]).fails(5).stderr_has("1.1");
    let next = lab.run(&orch, &["next"]).ok().stdout.clone();
    let row = next.lines().find(|l| l.starts_with("1.3")).unwrap_or_else(|| panic!("1.3 is still in next: {next}"));
    assert!(row.contains("contracted by"), "{next}");

    let finish = |agent: &crate::support::Actor, number: &str| {
        lab.run(agent, &["start", number]).ok();
        let artifact = r#"{"artifact_type": "commit_diff", "details": {"commit_sha": "abc123"}}"#;
        lab.run(agent, &["report", number, "--artifact", artifact]).ok();
        lab.run(&orch, &["verify", number, "--result", "pass", "--summary", "done"]).ok();
    };
    finish(&first, "1.1");
    lab.run(&second, &["claim", "1.3"]).ok().stdout_has("assigned");
    finish(&second, "1.3");
    for number in ["1.2", "2.1"] {
        lab.run(&first, &["contract", number]).ok();
        lab.run(&first, &["claim", number]).ok();
        finish(&first, number);
    }
    lab.run(&orch, &["next"]).ok().stdout_has("the project is complete");
    lab.run(&orch, &["status"]).ok().stdout_has("4 of 4 stories verified").stdout_has("the project is complete");
}
