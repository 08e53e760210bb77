//! Evidence, not claims: per-criterion evidence and verdicts under `require_ac_evidence`,
//! server-signed verification runs under `require_artifact_verification`, a forged run refused,
//! and the built-in skills naming real commands.

use loopctl_store::{VerificationRunRecord, WriteOp};
use reqwest::Method;
use serde_json::json;

use crate::support::*;

/// Takes story 1.1 of a fresh reference project to `implementing` with the agent key.
async fn implementing(server: &Server, t: &Tenant) -> (Seeded, String) {
    let seeded = seed_with(server, &t.orch, "Evidence", &reference_doc()).await;
    let story = seeded.story("1.1").to_string();
    let contract = json!({"story_title": "Sign-up endpoint", "ac_count": 2});
    server.post(&t.agent, &format!("/api/v1/stories/{story}/contract"), contract).await.ok(200);
    server.post(&t.agent, &format!("/api/v1/stories/{story}/claim"), json!({})).await.ok(200);
    server.post(&t.agent, &format!("/api/v1/stories/{story}/start"), json!({})).await.ok(200);
    (seeded, story)
}

async fn criteria_evidence_is_required_when_the_tenant_says_so(server: Server) {
    let t = server.tenant("Evidence Team").await;
    set_settings(&server, &t.user, json!({"require_ac_evidence": true})).await;
    let (_, story) = implementing(&server, &t).await;

    // A report that leaves one criterion without evidence is refused and changes nothing.
    let partial = json!({"acceptance_evidence": [{"ac_id": "AC-1.1.1", "test": "tests/signup.rs::creates_user"}]});
    let resp = server.post(&t.agent, &format!("/api/v1/stories/{story}/report"), partial).await;
    assert!(resp.err(422, "acceptance_incomplete")["message"].as_str().unwrap().contains("AC-1.1.2"));
    let detail = server.get(&t.orch, &format!("/api/v1/stories/{story}")).await;
    assert_eq!(detail.ok(200)["story"]["agent_status"], "implementing");

    // Evidence naming a criterion the story does not have is a validation error.
    let unknown = json!({"acceptance_evidence": [{"ac_id": "AC-9", "note": "x"}]});
    server.post(&t.agent, &format!("/api/v1/stories/{story}/report"), unknown).await.err(422, "validation_failed");

    let full = json!({"acceptance_evidence": [
        {"ac_id": "AC-1.1.1", "test": "tests/signup.rs::creates_user", "commit": "abc123"},
        {"ac_id": "AC-1.1.2", "test": "tests/signup.rs::duplicate_is_422"}]});
    server.post(&t.agent, &format!("/api/v1/stories/{story}/report"), full).await.ok(200);

    // A pass with one criterion failed is refused; so is a pass with no verdicts and no review.
    let one_failed = json!({"summary": "no", "criteria": [
        {"ac_id": "AC-1.1.1", "verdict": "pass"}, {"ac_id": "AC-1.1.2", "verdict": "fail", "note": "returns 500"}]});
    let resp = server.post(&t.orch, &format!("/api/v1/stories/{story}/verify"), one_failed).await;
    assert!(resp.err(422, "acceptance_incomplete")["message"].as_str().unwrap().contains("AC-1.1.2"));
    server.post(&t.orch, &format!("/api/v1/stories/{story}/verify"), json!({})).await.err(422, "acceptance_incomplete");

    // A review with a verdict per criterion makes a plain pass acceptable.
    let review = json!({"summary": "both met", "criteria": [
        {"ac_id": "AC-1.1.1", "verdict": "pass"}, {"ac_id": "AC-1.1.2", "verdict": "pass"}]});
    server.post(&t.user, &format!("/api/v1/stories/{story}/review-complete"), review).await.ok(201);
    server.post(&t.orch, &format!("/api/v1/stories/{story}/verify"), json!({"summary": "ok"})).await.ok(202);

    let criteria = server.get(&t.orch, &format!("/api/v1/stories/{story}/acceptance_criteria")).await;
    let rows = criteria.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["ac_id"], "AC-1.1.1");
    assert_eq!(rows[0]["evidence"][0]["test"], "tests/signup.rs::creates_user");
    assert_eq!(rows[0]["review_verdict"], "pass");
    assert_eq!(rows[1]["verify_verdict"], "pass");
    // The story itself carries them too (what `loopctl status N` shows).
    let detail = server.get(&t.orch, &format!("/api/v1/stories/{story}")).await;
    assert_eq!(detail.ok(200)["story"]["criteria"][1]["evidence"][0]["test"], "tests/signup.rs::duplicate_is_422");
}

async fn the_seed_flow_passes_every_criterion_without_extra_steps(server: Server) {
    let t = server.tenant("Seed Evidence").await;
    let (_, story) = implementing(&server, &t).await;
    server.post(&t.agent, &format!("/api/v1/stories/{story}/report"), json!({})).await.ok(200);
    server.post(&t.orch, &format!("/api/v1/stories/{story}/verify"), json!({"summary": "ok"})).await.ok(202);
    let criteria = server.get(&t.orch, &format!("/api/v1/stories/{story}/acceptance_criteria")).await;
    for row in criteria.ok(200)["data"].as_array().unwrap() {
        assert_eq!(row["verify_verdict"], "pass", "{row}");
    }
}

async fn verification_runs_are_signed_and_a_forged_one_is_refused(server: Server) {
    let t = server.tenant("Runs Team").await;
    set_settings(&server, &t.user, json!({"require_artifact_verification": true})).await;
    let (verifier, _, _) = new_key(&server, &t.user, "verifier", "runner").await;
    let (_, story) = implementing(&server, &t).await;
    server.post(&t.agent, &format!("/api/v1/stories/{story}/report"), commit_artifact("c0ffee01")).await.ok(200);

    // Without a run, verify is refused.
    server.post(&t.orch, &format!("/api/v1/stories/{story}/verify"), json!({})).await.err(422, "acceptance_incomplete");

    // A run forged straight into the store (a signature the server never made) does not count.
    let detail = server.get(&t.orch, &format!("/api/v1/stories/{story}")).await;
    let round = detail.ok(200)["story"]["claim_epoch"].as_i64().unwrap();
    let forged = VerificationRunRecord {
        id: uuid::Uuid::now_v7(),
        tenant_id: t.id.parse().unwrap(),
        story_id: story.parse().unwrap(),
        round,
        result: "pass".into(),
        commit_sha: Some("c0ffee01".into()),
        checks: json!([{"name": "commit exists", "ok": true}]),
        recorded_by_agent_id: None,
        signature: "AAAA".repeat(22),
        created_at: chrono::Utc::now(),
        signed_payload: "{}".into(),
        key_id: "0000000000000000".into(),
    };
    server.store.commit(vec![WriteOp::InsertVerificationRun(forged)]).await.unwrap();
    server.post(&t.orch, &format!("/api/v1/stories/{story}/verify"), json!({})).await.err(422, "acceptance_incomplete");
    let runs = server.get(&t.orch, &format!("/api/v1/stories/{story}/verification-runs")).await;
    assert_eq!(runs.ok(200)["data"][0]["signature_valid"], false);

    // Bad input is refused.
    let empty = json!({"result": "pass", "checks": []});
    server
        .post(&verifier, &format!("/api/v1/stories/{story}/verification-runs"), empty)
        .await
        .err(422, "validation_failed");

    let body = json!({"result": "pass", "checks": [{"name": "commit exists", "ok": true}]});
    let resp = server.post(&verifier, &format!("/api/v1/stories/{story}/verification-runs"), body).await;
    let run = &resp.ok(201)["verification_run"];
    assert_eq!(run["signature_valid"], true);
    assert_eq!(run["round"], round);
    assert_eq!(run["commit_sha"], "c0ffee01", "the run is bound to the reported commit");
    server.post(&t.orch, &format!("/api/v1/stories/{story}/verify"), json!({})).await.ok(202);

    let runs = server.get(&t.orch, &format!("/api/v1/stories/{story}/verification-runs")).await;
    let valid: Vec<bool> =
        runs.ok(200)["data"].as_array().unwrap().iter().map(|r| r["signature_valid"] == true).collect();
    assert_eq!(valid, vec![false, true]);

    // The public keys are published without authentication, with their ids.
    let key = server.req(Method::GET, "/.well-known/loopctl/signing-key").send().await;
    let key = key.ok(200);
    assert_eq!(key["algorithm"], "ed25519");
    assert_eq!(s(&key["public_key"]).len(), 44, "32 bytes in base64");
    assert_eq!(key["key_id"], run["key_id"]);
}

async fn built_in_skills_teach_the_real_commands(server: Server) {
    let t = server.tenant("Skills").await;
    for (name, command) in [
        ("loopctl:orchestrate", "loopctl verify N --result pass"),
        ("loopctl:review", "loopctl review-complete"),
        ("loopctl:verify-artifacts", "loopctl reject N --reason"),
        ("loopctl:contract", "loopctl contract N"),
    ] {
        let resp = server.get(&t.agent, &format!("/api/v1/skills/{name}")).await;
        let text = s(&resp.ok(200)["skill"]["prompt_text"]);
        assert!(text.contains(command), "{name} should name `{command}`");
    }
}

both!(criteria_evidence_is_required_when_the_tenant_says_so => evidence_required_sqlite, evidence_required_postgres);
both!(the_seed_flow_passes_every_criterion_without_extra_steps => seed_flow_passes_criteria_sqlite, seed_flow_passes_criteria_postgres);
both!(verification_runs_are_signed_and_a_forged_one_is_refused => signed_runs_sqlite, signed_runs_postgres);
both!(built_in_skills_teach_the_real_commands => built_in_skills_sqlite, built_in_skills_postgres);
