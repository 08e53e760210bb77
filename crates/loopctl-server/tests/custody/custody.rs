//! Chain of custody (issue 6, checks 2, 5 and 6): the implementer's identity never reviews
//! or verifies, whatever key or path it comes through; two reviewers racing record one
//! review; the bulk calls skip (and report) the one story the caller implemented.

use serde_json::{Value, json};

use crate::support::*;

/// Check 2: an orchestrator key linked to the implementer's identity gets 409
/// `self_verify_blocked` / `self_review_blocked`, for a plain agent implementer and for a
/// dispatched one, and an orchestrator that dispatches itself as implementer is caught too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implementer_identity_never_verifies_or_reviews() {
    let server = Server::sqlite().await;
    let t = server.tenant("Sneaky").await;
    let ids = seed(&server, &t.orch, &doc(&[3])).await;
    let (s1, s2, s3) = (ids.story("1.1"), ids.story("1.2"), ids.story("1.3"));

    // 1.1: implemented by the agent key; a user mints an orchestrator key on its identity.
    to_reported(&server, &t.agent, s1, "1.1").await;
    let implementer = agent_id(&server, &t.agent).await;
    let (sneaky, _, linked) = new_key(&server, &t.user, "orchestrator", Some(&implementer)).await;
    assert_eq!(linked, json!(implementer));
    let me = server.get(&sneaky, "/api/v1/whoami").await;
    assert_eq!(me.ok(200)["role"], "orchestrator");
    server.post(&sneaky, &path(s1, "verify"), json!({"summary": "ship it"})).await.err(409, "self_verify_blocked");
    server.post(&sneaky, &path(s1, "review-complete"), json!({})).await.err(409, "self_review_blocked");
    server.post(&sneaky, &path(s1, "reject"), json!({"reason": "again"})).await.err(409, "self_verify_blocked");
    // Nor by handing the review to itself through a dispatch.
    let to_self = json!({"agent_id": implementer});
    dispatch_raw(&server, &sneaky, "reviewer", s1, to_self).await.err(409, "self_review_blocked");

    // 1.2: implemented by a dispatched token; the orchestrator key on that identity.
    let imp = dispatch(&server, &t.orch, "implementer", s2).await;
    to_reported(&server, &imp.key, s2, "1.2").await;
    let me = server.get(&imp.key, "/api/v1/whoami").await;
    assert_eq!(me.ok(200)["agent_id"], json!(imp.agent_id));
    let (sneaky2, _, _) = new_key(&server, &t.user, "orchestrator", Some(&imp.agent_id)).await;
    server.post(&sneaky2, &path(s2, "verify"), json!({})).await.err(409, "self_verify_blocked");
    server.post(&sneaky2, &path(s2, "review-complete"), json!({})).await.err(409, "self_review_blocked");

    // 1.3: the orchestrator dispatches itself as the implementer, then tries to verify.
    let orch_id = agent_id(&server, &t.orch).await;
    let resp = dispatch_raw(&server, &t.orch, "implementer", s3, json!({"agent_id": orch_id})).await;
    let own = s(&resp.ok(201)["data"]["api_key"]["raw_key"]);
    to_reported(&server, &own, s3, "1.3").await;
    server.post(&t.orch, &path(s3, "verify"), json!({})).await.err(409, "self_verify_blocked");
    server.post(&t.orch, &path(s3, "review-complete"), json!({})).await.err(409, "self_review_blocked");

    // Nothing was recorded for any of them.
    for id in [&s1, &s2, &s3] {
        let st = story(&server, &t.user, id).await;
        assert_eq!(st["agent_status"], "reported_done", "{st}");
        assert_eq!(st["verified_status"], "unverified", "{st}");
        assert_eq!(st["reviews"], json!([]), "{st}");
        assert_eq!(st["verifications"], json!([]), "{st}");
    }

    // No refusal halts the tenant: the sneaky key works on, and other parties verify.
    server.get(&sneaky, &format!("/api/v1/stories/{s1}")).await.ok(200);
    let resp = server.post(&sneaky, &path(s2, "verify"), json!({})).await;
    assert_eq!(resp.ok(202)["story"]["verified_status"], "verified", "sneaky did not implement 1.2");
    let resp = server.post(&t.user, &path(s3, "verify"), json!({})).await;
    assert_eq!(resp.ok(202)["story"]["verified_status"], "verified");
    let resp = server.post(&t.orch, &path(s1, "verify"), json!({})).await;
    assert_eq!(resp.ok(202)["story"]["verified_status"], "verified");
}

/// Check 5: two dispatched reviewers race on one story: exactly one 201 and one 409, and one
/// review row.
async fn reviewers_race(server: Server) {
    let t = server.tenant("Race").await;
    let ids = seed(&server, &t.orch, &doc(&[4])).await;
    for i in 1..=4 {
        let number = format!("1.{i}");
        let id = ids.story(&number);
        to_reported(&server, &t.agent, id, &number).await;
        let a = dispatch(&server, &t.orch, "reviewer", id).await;
        let b = dispatch(&server, &t.orch, "reviewer", id).await;
        let p = path(id, "review-complete");
        let (ra, rb) = tokio::join!(
            server.post(&a.key, &p, json!({"summary": "a"})),
            server.post(&b.key, &p, json!({"summary": "b"}))
        );
        let mut statuses = [ra.status, rb.status];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "{}: {} / {}: {}", ra.desc, ra.body, rb.desc, rb.body);
        let loser = if ra.status == 409 { &ra } else { &rb };
        assert!(
            matches!(loser.code(), Some("invalid_transition" | "conflict" | "version_conflict")),
            "the loser gets a conflict code: {}",
            loser.body
        );
        let winner = if ra.status == 201 { &a } else { &b };
        let st = story(&server, &t.user, id).await;
        let reviews = st["reviews"].as_array().expect("reviews");
        assert_eq!(reviews.len(), 1, "one review row: {reviews:?}");
        assert_eq!(reviews[0]["reviewer_agent_id"], json!(winner.agent_id));
        let history = server.get(&t.user, &format!("/api/v1/stories/{id}/history")).await;
        let completed = history.ok(200)["data"]
            .as_array()
            .expect("history")
            .iter()
            .filter(|e| e["action"] == "review_completed")
            .count();
        assert_eq!(completed, 1, "one review_completed event");
    }
}

both!(reviewers_race => reviewers_race_sqlite, reviewers_race_postgres);

/// The verdict races too: an orchestrator and a user verifying one story at once record one
/// verification. (A reject after a verify is allowed — a verified story can be rejected — so
/// only verify against verify is a race with one winner.)
async fn verdicts_race(server: Server) {
    let t = server.tenant("Verdicts").await;
    let ids = seed(&server, &t.orch, &doc(&[3])).await;
    for number in ["1.1", "1.2", "1.3"] {
        let id = ids.story(number);
        to_reported(&server, &t.agent, id, number).await;
        let p = path(id, "verify");
        let (ra, rb) = tokio::join!(
            server.post(&t.orch, &p, json!({"summary": "a"})),
            server.post(&t.user, &p, json!({"summary": "b"}))
        );
        let mut statuses = [ra.status, rb.status];
        statuses.sort_unstable();
        assert_eq!(statuses, [202, 409], "one verify wins: {} {} / {} {}", ra.status, ra.body, rb.status, rb.body);
        let st = story(&server, &t.user, id).await;
        assert_eq!(st["verifications"].as_array().expect("verifications").len(), 1, "one verdict row: {st}");
    }
}

both!(verdicts_race => verdicts_race_sqlite, verdicts_race_postgres);

/// SPEC, threat model: "finding the one code path that skips a check". The implementer's
/// identity takes its reported story back to an unassigned state (force-unclaim as an
/// orchestrator, or unclaim as the claimant) and then backfills it — a verified status
/// written by the agent that implemented the story. Backfill is for work done outside
/// loopctl; it must not launder work done inside it by the same identity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implementer_cannot_backfill_its_own_reported_work() {
    let server = Server::sqlite().await;
    let t = server.tenant("Launder").await;
    let ids = seed(&server, &t.orch, &doc(&[3])).await;
    let orch_id = agent_id(&server, &t.orch).await;
    let mut laundered = Vec::new();

    // 1.1: the orchestrator dispatches itself, implements, force-unclaims, backfills.
    let s1 = ids.story("1.1");
    let resp = dispatch_raw(&server, &t.orch, "implementer", s1, json!({"agent_id": orch_id})).await;
    let own = s(&resp.ok(201)["data"]["api_key"]["raw_key"]);
    to_reported(&server, &own, s1, "1.1").await;
    server.post(&t.orch, &path(s1, "verify"), json!({})).await.err(409, "self_verify_blocked");
    server.post(&t.orch, &path(s1, "force-unclaim"), json!({"reason": "redo"})).await.ok(200);
    let resp = server.post(&t.orch, &path(s1, "backfill"), json!({"reason": "done elsewhere"})).await;
    // Refused either way: as the implementer's own verdict, or because a story worked on in
    // loopctl is never backfilled.
    let refused = |code: Option<&str>| matches!(code, Some("self_verify_blocked" | "invalid_transition"));
    if resp.status != 409 || !refused(resp.code()) {
        laundered.push(format!("force-unclaim + backfill by the implementer: {} {}", resp.status, resp.body));
    }

    // 1.2: the implementer unclaims its own reported story; its linked orchestrator key backfills.
    let s2 = ids.story("1.2");
    to_reported(&server, &t.agent, s2, "1.2").await;
    let implementer = agent_id(&server, &t.agent).await;
    let (sneaky, _, _) = new_key(&server, &t.user, "orchestrator", Some(&implementer)).await;
    server.post(&t.agent, &path(s2, "unclaim"), Value::Null).await.ok(200);
    let resp = server.post(&sneaky, &path(s2, "backfill"), json!({"reason": "done elsewhere"})).await;
    if resp.status != 409 || !refused(resp.code()) {
        laundered.push(format!("unclaim + backfill by the implementer: {} {}", resp.status, resp.body));
    }

    // A party that never implemented it may still backfill an untouched story.
    let s3 = ids.story("1.3");
    let resp = server.post(&t.orch, &path(s3, "backfill"), json!({"reason": "shipped in v0"})).await;
    assert_eq!(resp.ok(200)["story"]["verified_status"], "verified");
    assert!(laundered.is_empty(), "the implementer's identity verified its own work:\n{}", laundered.join("\n"));
}

/// Identities are minted only inside a tenant: a key or a dispatch of tenant B cannot be
/// bound to an agent identity of tenant A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_do_not_cross_tenants() {
    let server = Server::sqlite().await;
    let a = server.tenant("Alpha").await;
    let b = server.tenant("Beta").await;
    let ids_a = seed(&server, &a.orch, &doc(&[1])).await;
    let ids_b = seed(&server, &b.orch, &doc(&[1])).await;
    let a_agent = agent_id(&server, &a.agent).await;
    let body = json!({"name": "borrowed", "role": "orchestrator", "agent_id": a_agent});
    server.post(&b.user, "/api/v1/api_keys", body).await.err(404, "not_found");
    let borrowed = json!({"agent_id": a_agent});
    dispatch_raw(&server, &b.orch, "implementer", ids_b.story("1.1"), borrowed).await.err(404, "not_found");
    dispatch_raw(&server, &b.orch, "reviewer", ids_a.story("1.1"), json!({})).await.err(404, "not_found");
    let imp = dispatch(&server, &a.orch, "implementer", ids_a.story("1.1")).await;
    server.delete(&b.orch, &format!("/api/v1/dispatches/{}", imp.id)).await.err(404, "not_found");
    server.get(&imp.key, &format!("/api/v1/stories/{}", ids_b.story("1.1"))).await.err(403, "scope_violation");
    server.get(&imp.key, "/api/v1/whoami").await.ok(200);
}

fn result_of<'a>(results: &'a Value, id: &str) -> &'a Value {
    results["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["story_id"] == json!(id))
        .unwrap_or_else(|| panic!("no result for {id}: {results}"))
}

/// Check 6: bulk verify, bulk mark-complete, bulk reject and epic verify-all run every
/// custody check per story: the one story the caller implemented is skipped and reported
/// (`self_verify_blocked`), the others go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_calls_skip_the_callers_own_story() {
    let server = Server::sqlite().await;
    let t = server.tenant("Bulk").await;
    let ids = seed(&server, &t.orch, &doc(&[4, 2])).await;
    let mine_agent = t.agent.clone();
    let (other, _, _) = new_key(&server, &t.user, "agent", None).await;
    let numbers = ["1.1", "1.2", "1.3", "1.4", "2.1", "2.2"];
    let id = |n: &str| ids.story(n);
    // 1.1, 1.4 and 2.1 are implemented by the agent the sneaky orchestrator is linked to.
    for n in numbers {
        let key = if matches!(n, "1.1" | "1.4" | "2.1") { &mine_agent } else { &other };
        to_reported(&server, key, id(n), n).await;
    }
    let implementer = agent_id(&server, &mine_agent).await;
    let (sneaky, _, _) = new_key(&server, &t.user, "orchestrator", Some(&implementer)).await;
    let verified = |st: &Value| st["verified_status"] == "verified";

    // Bulk verify.
    let body = json!({"stories": [{"story_id": id("1.1"), "summary": "ok"}, {"story_id": id("1.2")}]});
    let resp = server.post(&sneaky, "/api/v1/stories/bulk/verify", body).await;
    let results = resp.ok(200).clone();
    let own = result_of(&results, id("1.1"));
    assert_eq!((own["status"].as_str(), own["code"].as_str()), (Some("error"), Some("self_verify_blocked")), "{own}");
    assert!(own["reason"].as_str().is_some_and(|r| !r.is_empty()), "the skip says why: {own}");
    assert_eq!(result_of(&results, id("1.2"))["status"], "success", "{results}");
    assert!(!verified(&story(&server, &t.user, id("1.1")).await));
    assert!(verified(&story(&server, &t.user, id("1.2")).await));

    // Bulk mark-complete.
    let body = json!({"stories": [{"story_id": id("1.3")}, {"story_id": id("1.4")}]});
    let resp = server.post(&sneaky, "/api/v1/stories/bulk/mark-complete", body).await;
    let results = resp.ok(200).clone();
    assert_eq!(result_of(&results, id("1.3"))["status"], "success", "{results}");
    let own = result_of(&results, id("1.4"));
    assert_eq!((own["status"].as_str(), own["code"].as_str()), (Some("error"), Some("self_verify_blocked")), "{own}");
    assert!(verified(&story(&server, &t.user, id("1.3")).await));
    assert!(!verified(&story(&server, &t.user, id("1.4")).await));

    // Bulk reject is a verdict too.
    let body = json!({"stories": [{"story_id": id("1.1"), "reason": "reset my count"}]});
    let resp = server.post(&sneaky, "/api/v1/stories/bulk/reject", body).await;
    assert!(resp.status == 422 || resp.status == 200, "{}: {}", resp.desc, resp.body);
    let own = result_of(&resp.body, id("1.1"));
    assert_eq!(own["code"], "self_verify_blocked", "{own}");
    let st = story(&server, &t.user, id("1.1")).await;
    assert_eq!((st["agent_status"].as_str(), st["iteration_count"].as_i64()), (Some("reported_done"), Some(0)));

    // Verify-all in epic 2: 2.2 verified, 2.1 skipped with its reason.
    let resp = server.post(&sneaky, &format!("/api/v1/epics/{}/verify-all", ids.epic(2)), json!({})).await;
    let body = resp.ok(200).clone();
    assert_eq!(body["total_eligible"], 2, "{body}");
    assert_eq!(body["verified_count"], 1, "{body}");
    assert_eq!(body["skipped_count"], 1, "{body}");
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["story_id"], json!(id("2.1")));
    assert_eq!(errors[0]["code"], "self_verify_blocked");
    assert!(!verified(&story(&server, &t.user, id("2.1")).await));
    assert!(verified(&story(&server, &t.user, id("2.2")).await));

    // A different orchestrator verifies the rest through the same bulk paths.
    let body = json!({"stories": [{"story_id": id("1.1")}, {"story_id": id("1.4")}]});
    let resp = server.post(&t.orch, "/api/v1/stories/bulk/verify", body).await;
    for r in resp.ok(200)["results"].as_array().expect("results") {
        assert_eq!(r["status"], "success", "{r}");
    }
    let resp = server.post(&t.orch, &format!("/api/v1/epics/{}/verify-all", ids.epic(2)), json!({})).await;
    assert_eq!(resp.ok(200)["verified_count"], 1);
    for n in numbers {
        assert!(verified(&story(&server, &t.user, id(n)).await), "{n} is verified");
    }
}
