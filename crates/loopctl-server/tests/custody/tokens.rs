//! Dispatched capability tokens (issue 6, checks 1, 3 and 4): an implementer token works its
//! own story and nothing else, a reviewer token reviews and nothing else, a reviewer is
//! never the implementer, and expired or revoked tokens stop at once.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// Check 1: the implementer token contracts, claims, starts and reports its own story, reads
/// it, and is refused everything else: verify (403), other stories and lists (403
/// `scope_violation`), minting identities.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implementer_token_is_confined_to_its_story_and_capacity() {
    let server = Server::sqlite().await;
    let t = server.tenant("Implementer").await;
    let ids = seed(&server, &t.orch, &doc(&[2])).await;
    let (s1, s2) = (ids.story("1.1"), ids.story("1.2"));
    let imp = dispatch(&server, &t.orch, "implementer", s1).await;

    let me = server.get(&imp.key, "/api/v1/whoami").await;
    let me = me.ok(200);
    assert_eq!(me["role"], "agent", "a dispatched token acts as an agent: {me}");
    assert_eq!(me["agent_id"], json!(imp.agent_id));
    assert_eq!(me["scope"]["story_id"], json!(s1));
    assert_eq!(me["scope"]["role"], "implementer");

    // Its own story, its own capacity: the whole implementer path.
    server.post(&imp.key, &path(s1, "contract"), contract_body("1.1")).await.ok(200);
    let claimed = server.post(&imp.key, &path(s1, "claim"), Value::Null).await;
    assert_eq!(claimed.ok(200)["story"]["assigned_agent_id"], json!(imp.agent_id));
    server.post(&imp.key, &path(s1, "start"), Value::Null).await.ok(200);
    server.post(&imp.key, &path(s1, "heartbeat"), Value::Null).await.ok(200);
    let reported = server.post(&imp.key, &path(s1, "report"), commit_artifact()).await;
    assert_eq!(reported.ok(200)["story"]["agent_status"], "reported_done");

    // Verifying, rejecting or reviewing its own work is outside its capacity: 403.
    server.post(&imp.key, &path(s1, "verify"), json!({"summary": "done"})).await.err(403, "scope_violation");
    server.post(&imp.key, &path(s1, "reject"), json!({"reason": "reset"})).await.err(403, "scope_violation");
    server.post(&imp.key, &path(s1, "review-complete"), json!({})).await.err(403, "scope_violation");

    // Another story: refused whatever the call, reads included.
    server.post(&imp.key, &path(s2, "contract"), contract_body("1.2")).await.err(403, "scope_violation");
    server.post(&imp.key, &path(s2, "claim"), Value::Null).await.err(403, "scope_violation");
    server.get(&imp.key, &format!("/api/v1/stories/{s2}")).await.err(403, "scope_violation");
    server.get(&imp.key, &format!("/api/v1/stories/{s2}/history")).await.err(403, "scope_violation");

    // Lists are other stories too.
    server.get(&imp.key, "/api/v1/projects").await.err(403, "scope_violation");
    let project = &ids.project;
    server.get(&imp.key, &format!("/api/v1/stories?project_id={project}")).await.err(403, "scope_violation");
    server.get(&imp.key, &format!("/api/v1/stories/ready?project_id={project}")).await.err(403, "scope_violation");
    server.get(&imp.key, "/api/v1/changes").await.err(403, "scope_violation");

    // It cannot mint identities: no keys, no dispatches.
    let key = json!({"name": "second-me", "role": "orchestrator"});
    server.post(&imp.key, "/api/v1/api_keys", key).await.err(403, "scope_violation");
    dispatch_raw(&server, &imp.key, "reviewer", s1, json!({})).await.err(403, "scope_violation");

    // Nothing of that changed the story: reported, unverified, no review, no verification.
    let st = story(&server, &t.orch, s1).await;
    assert_eq!(st["agent_status"], "reported_done");
    assert_eq!(st["verified_status"], "unverified");
    assert_eq!(st["reviews"], json!([]));
    assert_eq!(st["verifications"], json!([]));
    assert_eq!(story(&server, &t.orch, s2).await["agent_status"], "pending");

    // A different party verifies.
    let resp = server.post(&t.orch, &path(s1, "verify"), json!({"summary": "ok"})).await;
    assert_eq!(resp.ok(202)["story"]["verified_status"], "verified");

    // SPEC: "the token is shown once and may read its own story" — every read of it.
    let mut unreadable = Vec::new();
    for read in ["", "/history", "/artifacts", "/verifications", "/acceptance_criteria"] {
        let resp = server.get(&imp.key, &format!("/api/v1/stories/{s1}{read}")).await;
        if resp.status != 200 {
            unreadable.push(format!("{} → {} {}", resp.desc, resp.status, resp.body));
        }
    }
    let resp = server.get(&imp.key, &format!("/api/v1/projects/{}", ids.project)).await;
    if resp.status != 200 {
        unreadable.push(format!("{} → {} {}", resp.desc, resp.status, resp.body));
    }
    assert!(unreadable.is_empty(), "a dispatched token cannot read its own story:\n{}", unreadable.join("\n"));
}

/// Check 3: a reviewer dispatch never goes to the implementer, and the reviewer token can
/// review but not implement (seed flow) nor verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewer_token_reviews_and_nothing_else() {
    let server = Server::sqlite().await;
    let t = server.tenant("Reviewer").await;
    let ids = seed(&server, &t.orch, &doc(&[2])).await;
    let (s1, s2) = (ids.story("1.1"), ids.story("1.2"));

    // Implemented by a dispatched token: a reviewer dispatch to that identity is refused.
    let imp = dispatch(&server, &t.orch, "implementer", s1).await;
    claim(&server, &imp.key, s1, "1.1").await;
    server.post(&imp.key, &path(s1, "start"), Value::Null).await.ok(200);
    let to_implementer = json!({"agent_id": imp.agent_id});
    dispatch_raw(&server, &t.orch, "reviewer", s1, to_implementer.clone()).await.err(409, "self_review_blocked");
    dispatch_raw(&server, &t.user, "reviewer", s1, to_implementer).await.err(409, "self_review_blocked");

    // Implemented by a plain agent key: the same.
    let implementer = agent_id(&server, &t.agent).await;
    to_reported(&server, &t.agent, s2, "1.2").await;
    let to_agent = json!({"agent_id": implementer});
    dispatch_raw(&server, &t.orch, "reviewer", s2, to_agent).await.err(409, "self_review_blocked");

    let rev = dispatch(&server, &t.orch, "reviewer", s1).await;
    assert_ne!(rev.agent_id, imp.agent_id, "a fresh reviewer identity");

    // Implementing is not its capacity: contract, claim, start, heartbeat are scope violations;
    // report (the seed flow) is the assignee's alone.
    server.post(&rev.key, &path(s1, "contract"), contract_body("1.1")).await.err(403, "scope_violation");
    server.post(&rev.key, &path(s1, "claim"), Value::Null).await.err(403, "scope_violation");
    server.post(&rev.key, &path(s1, "start"), Value::Null).await.err(403, "scope_violation");
    server.post(&rev.key, &path(s1, "heartbeat"), Value::Null).await.err(403, "scope_violation");
    server.post(&rev.key, &path(s1, "unclaim"), Value::Null).await.err(403, "scope_violation");
    server.post(&rev.key, &path(s1, "report"), commit_artifact()).await.err(403, "forbidden");
    assert_eq!(story(&server, &t.orch, s1).await["agent_status"], "implementing");

    server.post(&imp.key, &path(s1, "report"), commit_artifact()).await.ok(200);
    // Not its story.
    server.post(&rev.key, &path(s2, "review-complete"), json!({})).await.err(403, "scope_violation");
    // Verify and reject: never a reviewer's.
    server.post(&rev.key, &path(s1, "verify"), json!({})).await.err(403, "scope_violation");
    server.post(&rev.key, &path(s1, "reject"), json!({"reason": "bad"})).await.err(403, "scope_violation");
    server.post(&rev.key, &path(s1, "force-unclaim"), json!({"reason": "x"})).await.err(403, "scope_violation");

    // Its one job.
    let resp = server.post(&rev.key, &path(s1, "review-complete"), json!({"summary": "reviewed"})).await;
    let review = &resp.ok(201)["review_record"];
    assert_eq!(review["reviewer_agent_id"], json!(rev.agent_id), "review: {review}");
    assert_eq!(review["review_type"], "standard");
    let st = story(&server, &t.orch, s1).await;
    assert_eq!(st["reviews"].as_array().expect("reviews").len(), 1);
    assert_eq!(st["verified_status"], "unverified", "a review is not a verification");
    let resp = server.post(&t.orch, &path(s1, "verify"), json!({})).await;
    assert_eq!(resp.ok(202)["story"]["verified_status"], "verified");

    // The strict flow: the implementer may not report; a reviewer files the report, and
    // verify still needs a review by another party.
    let strict = server.tenant("Strict").await;
    set_settings(&server, &strict.user, json!({"custody_mode": "strict"})).await;
    let ids = seed(&server, &strict.orch, &doc(&[1])).await;
    let s = ids.story("1.1");
    let imp = dispatch(&server, &strict.orch, "implementer", s).await;
    claim(&server, &imp.key, s, "1.1").await;
    server.post(&imp.key, &path(s, "start"), Value::Null).await.ok(200);
    server.post(&imp.key, &path(s, "report"), commit_artifact()).await.err(409, "self_report_blocked");
    let rev = dispatch(&server, &strict.orch, "reviewer", s).await;
    server.post(&rev.key, &path(s, "claim"), Value::Null).await.err(403, "scope_violation");
    let resp = server.post(&rev.key, &path(s, "report"), commit_artifact()).await;
    assert_eq!(resp.ok(200)["story"]["agent_status"], "reported_done");
    server.post(&strict.orch, &path(s, "verify"), json!({})).await.err(422, "review_not_conducted");
    server.post(&imp.key, &path(s, "review-complete"), json!({})).await.err(403, "scope_violation");
    let second = dispatch(&server, &strict.orch, "reviewer", s).await;
    server.post(&second.key, &path(s, "review-complete"), json!({})).await.ok(201);
    server.post(&rev.key, &path(s, "verify"), json!({})).await.err(403, "scope_violation");
    let resp = server.post(&strict.orch, &path(s, "verify"), json!({})).await;
    assert_eq!(resp.ok(202)["story"]["verified_status"], "verified");
}

/// Check 4: an expired token gets 401 `token_expired`, a revoked one 401 `token_revoked`,
/// and an orchestrator cannot mint API keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_revoked_tokens_and_key_minting() {
    let server = Server::sqlite().await;
    let t = server.tenant("Expiry").await;
    let ids = seed(&server, &t.orch, &doc(&[2])).await;
    let (s1, s2) = (ids.story("1.1"), ids.story("1.2"));

    // TTL bounds.
    dispatch_raw(&server, &t.orch, "implementer", s1, json!({"expires_in_seconds": 0}))
        .await
        .err(422, "validation_failed");
    dispatch_raw(&server, &t.orch, "implementer", s1, json!({"expires_in_seconds": 86_401}))
        .await
        .err(422, "validation_failed");

    let resp = dispatch_raw(&server, &t.orch, "implementer", s1, json!({"expires_in_seconds": 1})).await;
    let data = resp.ok(201)["data"].clone();
    let short = s(&data["api_key"]["raw_key"]);
    let expires_at = chrono::DateTime::parse_from_rfc3339(&s(&data["api_key"]["expires_at"])).expect("expires_at");
    let wait = (expires_at.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().unwrap_or_default();
    assert!(wait <= Duration::from_secs(1), "TTL 1 s: expires at {expires_at}");
    tokio::time::sleep(wait + Duration::from_millis(50)).await;
    server.get(&short, "/api/v1/whoami").await.err(401, "token_expired");
    server.get(&short, &format!("/api/v1/stories/{s1}")).await.err(401, "token_expired");
    server.post(&short, &path(s1, "contract"), contract_body("1.1")).await.err(401, "token_expired");
    let listed = server.get(&t.orch, &format!("/api/v1/dispatches?story_id={s1}")).await;
    let listed = listed.ok(200)["data"].as_array().expect("dispatches").clone();
    assert!(listed.iter().any(|d| d["active"] == json!(false)), "the expired dispatch is inactive: {listed:?}");

    // Revoked: the token stops at once, and the story is untouched by later calls.
    let live = dispatch(&server, &t.orch, "implementer", s2).await;
    server.post(&live.key, &path(s2, "contract"), contract_body("1.2")).await.ok(200);
    // Only managers revoke; the token cannot revoke (or un-revoke) itself or others.
    server.delete(&t.agent, &format!("/api/v1/dispatches/{}", live.id)).await.err(403, "forbidden");
    server.delete(&live.key, &format!("/api/v1/dispatches/{}", live.id)).await.err(403, "scope_violation");
    let resp = server.delete(&t.orch, &format!("/api/v1/dispatches/{}", live.id)).await;
    let revoked = &resp.ok(200)["data"]["dispatch"];
    assert!(revoked["revoked_at"].is_string(), "the answer carries revoked_at: {revoked}");
    assert_eq!(revoked["active"], json!(false));
    server.get(&live.key, "/api/v1/whoami").await.err(401, "token_revoked");
    server.post(&live.key, &path(s2, "claim"), Value::Null).await.err(401, "token_revoked");
    assert_eq!(story(&server, &t.orch, s2).await["agent_status"], "contracted");

    // Only a human key mints keys: an orchestrator cannot give itself a second identity.
    let implementer = agent_id(&server, &t.agent).await;
    for body in [
        json!({"name": "mine", "role": "agent"}),
        json!({"name": "mine", "role": "orchestrator"}),
        json!({"name": "mine", "role": "user"}),
        json!({"name": "mine", "role": "orchestrator", "agent_id": implementer}),
    ] {
        server.post(&t.orch, "/api/v1/api_keys", body.clone()).await.err(403, "forbidden");
        server.post(&t.agent, "/api/v1/api_keys", body).await.err(403, "forbidden");
    }
    server.get(&t.orch, "/api/v1/api_keys").await.err(403, "forbidden");

    // A revoked API key (not a dispatch) stops at once too.
    let (raw, key_id, _) = new_key(&server, &t.user, "orchestrator", None).await;
    server.get(&raw, "/api/v1/whoami").await.ok(200);
    server.delete(&t.orch, &format!("/api/v1/api_keys/{key_id}")).await.err(403, "forbidden");
    server.delete(&t.user, &format!("/api/v1/api_keys/{key_id}")).await.ok(200);
    server.get(&raw, "/api/v1/whoami").await.err(401, "token_revoked");
    server
        .post(&raw, "/api/v1/dispatches", json!({"role": "implementer", "story_id": s1}))
        .await
        .err(401, "token_revoked");
}
