//! "Verified" means checked by something the implementer does not control: attacks on
//! verification runs and on strict custody, each written as the attack, on both stores.

use loopctl_store::WriteOp;
use serde_json::{Value, json};

use crate::support::*;

both!(a_fabricated_pass_run_is_refused_from_every_identity_but_the_verifier
    => fabricated_runs_sqlite, fabricated_runs_postgres);
both!(a_run_of_an_older_reports_commit_does_not_count_after_a_new_report
    => older_commit_run_sqlite, older_commit_run_postgres);
both!(a_failing_run_after_a_passing_one_blocks_verify
    => failing_after_passing_sqlite, failing_after_passing_postgres);
both!(a_run_copied_with_its_result_changed_no_longer_verifies
    => edited_run_sqlite, edited_run_postgres);
both!(signed_checks_survive_the_databases_json_normalisation
    => normalised_checks_sqlite, normalised_checks_postgres);
both!(in_strict_custody_backfill_is_for_humans_and_shows_as_backfilled
    => strict_backfill_sqlite, strict_backfill_postgres);
both!(in_strict_custody_a_plain_agent_cannot_report_a_story_it_does_not_hold
    => strict_report_sqlite, strict_report_postgres);
both!(verifier_keys_come_only_from_a_user
    => verifier_keys_sqlite, verifier_keys_postgres);
both!(an_orchestrator_cannot_repoint_the_runner_through_project_metadata
    => runner_config_sqlite, runner_config_postgres);

fn runs_path(story: &str) -> String {
    format!("/api/v1/stories/{story}/verification-runs")
}

fn run_body(result: &str) -> Value {
    json!({"result": result, "checks": [{"name": "tests", "ok": result == "pass"}]})
}

/// A tenant that requires a passing run, a verifier key, and story 1.1 reported at `commit`.
async fn reported(server: &Server, name: &str, commit: &str) -> (Tenant, String, String) {
    let t = server.tenant(name).await;
    set_settings(server, &t.user, json!({"require_artifact_verification": true})).await;
    let (verifier, _, _) = new_key(server, &t.user, "verifier", "runner").await;
    let ids = seed(server, &t, name).await;
    let story = ids.story("1.1").to_string();
    claim(server, &t.agent, &story).await;
    server.post(&t.agent, &format!("/api/v1/stories/{story}/start"), Value::Null).await.ok(200);
    server.post(&t.agent, &format!("/api/v1/stories/{story}/report"), commit_artifact(commit)).await.ok(200);
    (t, verifier, story)
}

async fn a_fabricated_pass_run_is_refused_from_every_identity_but_the_verifier(server: Server) {
    let (t, verifier, story) = reported(&server, "Forgers", "abc123").await;
    let dispatch = json!({"story_id": story, "role": "reviewer", "expires_in_seconds": 600});
    let token = server.post(&t.orch, "/api/v1/dispatches", dispatch).await;
    let reviewer = s(&token.ok(201)["data"]["api_key"]["raw_key"]);
    let trust_me = json!({"result": "pass", "commit_sha": "abc123", "checks": [{"name": "trust me", "ok": true}]});
    for (who, key) in [("orchestrator", &t.orch), ("user", &t.user), ("reviewer token", &reviewer), ("agent", &t.agent)]
    {
        let resp = server.post(key, &runs_path(&story), trust_me.clone()).await;
        assert!(matches!(resp.code(), Some("forbidden" | "scope_violation")), "{who}: {} {}", resp.status, resp.body);
    }
    let runs = server.get(&t.orch, &runs_path(&story)).await;
    assert_eq!(runs.ok(200)["data"], json!([]), "no fabricated run was recorded");
    server.post(&t.orch, &format!("/api/v1/stories/{story}/verify"), json!({})).await.err(422, "acceptance_incomplete");
    // The runner's verifier key can, and then verify goes through.
    server.post(&verifier, &runs_path(&story), run_body("pass")).await.ok(201);
    server.post(&t.orch, &format!("/api/v1/stories/{story}/verify"), json!({})).await.ok(202);
}

async fn a_run_of_an_older_reports_commit_does_not_count_after_a_new_report(server: Server) {
    let (t, verifier, story) = reported(&server, "Old commits", "aaaa1111").await;
    server.post(&verifier, &runs_path(&story), run_body("pass")).await.ok(201);
    server.post(&t.orch, &format!("/api/v1/stories/{story}/reject"), json!({"reason": "missing a test"})).await.ok(200);
    claim(&server, &t.agent, &story).await;
    server.post(&t.agent, &format!("/api/v1/stories/{story}/start"), Value::Null).await.ok(200);
    server.post(&t.agent, &format!("/api/v1/stories/{story}/report"), commit_artifact("bbbb2222")).await.ok(200);

    // The pass of round one's commit does not carry over to the new report.
    server.post(&t.orch, &format!("/api/v1/stories/{story}/verify"), json!({})).await.err(422, "acceptance_incomplete");
    // A runner that checked the old commit is told so and records nothing.
    let old = json!({"result": "pass", "commit_sha": "aaaa1111", "checks": [{"name": "tests", "ok": true}]});
    server.post(&verifier, &runs_path(&story), old).await.err(409, "commit_mismatch");
    let run = server.post(&verifier, &runs_path(&story), run_body("pass")).await;
    assert_eq!(run.ok(201)["verification_run"]["commit_sha"], "bbbb2222");
    server.post(&t.orch, &format!("/api/v1/stories/{story}/verify"), json!({})).await.ok(202);
}

async fn a_failing_run_after_a_passing_one_blocks_verify(server: Server) {
    let (t, verifier, story) = reported(&server, "Flaky", "cccc3333").await;
    server.post(&verifier, &runs_path(&story), run_body("pass")).await.ok(201);
    server.post(&verifier, &runs_path(&story), run_body("fail")).await.ok(201);
    let resp = server.post(&t.orch, &format!("/api/v1/stories/{story}/verify"), json!({})).await;
    resp.err(422, "acceptance_incomplete");
    server.post(&verifier, &runs_path(&story), run_body("pass")).await.ok(201);
    server.post(&t.orch, &format!("/api/v1/stories/{story}/verify"), json!({})).await.ok(202);
}

/// Someone with database access copies a failing run's signed bytes and signature into a row
/// that says `pass`: the row no longer matches what was signed.
async fn a_run_copied_with_its_result_changed_no_longer_verifies(server: Server) {
    let (t, verifier, story) = reported(&server, "Editors", "dddd4444").await;
    server.post(&verifier, &runs_path(&story), run_body("fail")).await.ok(201);
    let tenant = t.id.parse().expect("tenant id");
    let stored = server.store.verification_runs(tenant, story.parse().expect("story id")).await.expect("runs");
    let mut edited = stored[0].clone();
    edited.id = uuid::Uuid::now_v7();
    edited.result = "pass".into();
    server.store.commit(vec![WriteOp::InsertVerificationRun(edited)]).await.expect("written around the server");
    let runs = server.get(&t.orch, &runs_path(&story)).await;
    let valid: Vec<(String, bool)> = runs.ok(200)["data"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| (s(&r["result"]), r["signature_valid"] == true))
        .collect();
    assert_eq!(valid, vec![("fail".into(), true), ("pass".into(), false)]);
    server.post(&t.orch, &format!("/api/v1/stories/{story}/verify"), json!({})).await.err(422, "acceptance_incomplete");
}

async fn signed_checks_survive_the_databases_json_normalisation(server: Server) {
    let (t, verifier, story) = reported(&server, "Jsonb", "eeee5555").await;
    // jsonb reorders keys and rewrites numbers (1e2 → 100): the signature is over the bytes
    // kept as sent, so it still checks out.
    let body = json!({"result": "pass", "checks": [
        {"ok": true, "name": "coverage", "detail": {"zeta": 1, "ratio": 1e2, "alpha": [0.5, -0.0]}}]});
    server.post(&verifier, &runs_path(&story), body).await.ok(201);
    let runs = server.get(&t.orch, &runs_path(&story)).await;
    let run = &runs.ok(200)["data"][0];
    assert_eq!(run["signature_valid"], true, "{run}");
    assert_eq!(run["checks"][0]["detail"]["ratio"], json!(1e2));
    server.post(&t.orch, &format!("/api/v1/stories/{story}/verify"), json!({})).await.ok(202);
}

async fn in_strict_custody_backfill_is_for_humans_and_shows_as_backfilled(server: Server) {
    let t = server.tenant("Strict backfill").await;
    set_settings(&server, &t.user, json!({"custody_mode": "strict"})).await;
    let ids = seed(&server, &t, "Strict backfill").await;
    let story = ids.story("1.1");
    let path = format!("/api/v1/stories/{story}/backfill");
    let resp = server.post(&t.orch, &path, json!({"reason": "trust me"})).await;
    assert!(s(&resp.err(403, "forbidden")["message"]).contains("only a user"), "{}", resp.body);
    assert_eq!(crate::support::story(&server, &t.orch, story).await["verified_status"], "unverified");
    let done = server.post(&t.user, &path, json!({"reason": "shipped before loopctl"})).await;
    let st = &done.ok(200)["story"];
    assert_eq!((st["verified_status"].clone(), st["backfilled"].clone()), (json!("verified"), json!(true)));
    let export = server.get(&t.orch, &format!("/api/v1/projects/{}/export", ids.project)).await;
    assert!(export.ok(200).to_string().contains("shipped before loopctl"), "the export says it was backfilled");
}

async fn in_strict_custody_a_plain_agent_cannot_report_a_story_it_does_not_hold(server: Server) {
    let t = server.tenant("Strict report").await;
    set_settings(&server, &t.user, json!({"custody_mode": "strict"})).await;
    let (stranger, _, _) = new_key(&server, &t.user, "agent", "stranger").await;
    let ids = seed(&server, &t, "Strict report").await;
    let story = ids.story("1.1");
    claim(&server, &t.agent, story).await;
    server.post(&t.agent, &format!("/api/v1/stories/{story}/start"), Value::Null).await.ok(200);
    let resp = server.post(&stranger, &format!("/api/v1/stories/{story}/report"), commit_artifact("f00d")).await;
    resp.err(403, "forbidden");
    let st = crate::support::story(&server, &t.orch, story).await;
    assert_eq!(st["agent_status"], "implementing", "the implementer keeps its story and its lease");
    assert!(st["lease_expires_at"].is_string());
}

async fn verifier_keys_come_only_from_a_user(server: Server) {
    let t = server.tenant("Verifier keys").await;
    let mint = json!({"name": "my runner", "role": "verifier"});
    server.post(&t.orch, "/api/v1/api_keys", mint.clone()).await.err(403, "forbidden");
    let ids = seed(&server, &t, "Verifier keys").await;
    let dispatch = json!({"story_id": ids.story("1.1"), "role": "verifier"});
    let resp = server.post(&t.orch, "/api/v1/dispatches", dispatch).await;
    assert!(resp.status == 422 || resp.status == 403, "dispatch never mints a verifier: {} {}", resp.status, resp.body);
    let (verifier, _, agent) = new_key(&server, &t.user, "verifier", "runner").await;
    assert_eq!(agent, Value::Null, "a verifier has no agent identity: it implements nothing");
    // A verifier reads what it checks, and takes part in no lifecycle call.
    server.get(&verifier, &format!("/api/v1/stories?project_id={}", ids.project)).await.ok(200);
    let resp = server.post(&verifier, &format!("/api/v1/stories/{}/contract", ids.story("1.1")), json!({})).await;
    resp.err(403, "forbidden");
}

async fn an_orchestrator_cannot_repoint_the_runner_through_project_metadata(server: Server) {
    let t = server.tenant("Runner config").await;
    let project = create_project(&server, &t.orch, "Runner config").await;
    let runner = format!("/api/v1/projects/{project}/runner");
    let config = json!({"repo": "/srv/git/web.git", "check_command": "cargo test"});
    server.put(&t.orch, &runner, config.clone()).await.err(403, "forbidden");
    server.put(&t.user, &runner, config).await.ok(200);
    // The orchestrator tries the side door: project metadata.
    let evil = json!({"metadata": {"runner": {"repo": "/tmp/evil", "check_command": "true"}, "team": "a"}});
    server.patch(&t.orch, &format!("/api/v1/projects/{project}"), evil).await.ok(200);
    let got = server.get(&t.orch, &format!("/api/v1/projects/{project}")).await;
    let metadata = &got.ok(200)["project"]["metadata"];
    assert_eq!(metadata["runner"]["repo"], "/srv/git/web.git", "{metadata}");
    assert_eq!(metadata["team"], "a", "the rest of the metadata changes as asked");
    let audit = server.get(&t.user, &format!("/api/v1/audit?project_id={project}&action=runner_configured")).await;
    assert_eq!(audit.ok(200)["data"].as_array().map(Vec::len), Some(1), "the configuration is audited");
}
