//! Every error code the API produces today, each asserted by status and code (and the
//! wire shape, through `Resp::err`), with the request that provokes it.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

both!(auth_and_request_errors => auth_and_request_errors_sqlite, auth_and_request_errors_postgres);
both!(lifecycle_errors => lifecycle_errors_sqlite, lifecycle_errors_postgres);
both!(concurrency_limit => concurrency_limit_sqlite, concurrency_limit_postgres);
both!(escalation => escalation_sqlite, escalation_postgres);
both!(stale_claim_after_reclaim => stale_claim_after_reclaim_sqlite, stale_claim_after_reclaim_postgres);
both!(custody => custody_sqlite, custody_postgres);
both!(strict_custody => strict_custody_sqlite, strict_custody_postgres);
both!(custody_refusals_are_audited => custody_refusals_are_audited_sqlite, custody_refusals_are_audited_postgres);
both!(graph_and_number_errors => graph_and_number_errors_sqlite, graph_and_number_errors_postgres);
both!(unclaim_backfill_and_deletes => unclaim_backfill_and_deletes_sqlite, unclaim_backfill_and_deletes_postgres);
both!(idempotency_key_replays => idempotency_key_replays_sqlite, idempotency_key_replays_postgres);
both!(
    malformed_input_anywhere_is_refused_in_the_error_shape
        => malformed_input_anywhere_is_refused_in_the_error_shape_sqlite,
           malformed_input_anywhere_is_refused_in_the_error_shape_postgres
);

async fn auth_and_request_errors(server: Server) {
    let t = server.tenant("Errors").await;
    let whoami = "/api/v1/whoami";

    // unauthorized: no header, an unknown key, another scheme.
    server.call(Method::GET, None, whoami, None).await.err(401, "unauthorized");
    server.get("lc_this_is_not_a_key", whoami).await.err(401, "unauthorized");
    let resp = server.req(Method::GET, whoami).header("authorization", &format!("Basic {}", t.user)).send().await;
    resp.err(401, "unauthorized");
    server.call(Method::GET, None, "/api/v1/projects", None).await.err(401, "unauthorized");

    // token_revoked.
    let (raw, key_id, _) = new_key(&server, &t.user, "agent", "soon-revoked").await;
    assert_eq!(server.get(&raw, whoami).await.ok(200)["role"], "agent");
    let resp = server.delete(&t.user, &format!("/api/v1/api_keys/{key_id}")).await;
    assert!(resp.ok(200)["api_key"]["revoked_at"].is_string());
    server.get(&raw, whoami).await.err(401, "token_revoked");
    let keys = server.get(&t.user, "/api/v1/api_keys").await;
    assert!(!keys.ok(200).to_string().contains(&key_id), "revoked keys are not listed by default");
    let keys = server.get(&t.user, "/api/v1/api_keys?include_revoked=true").await;
    assert!(keys.ok(200).to_string().contains(&key_id));

    // token_expired: a key that expires a second from now.
    let resp = server
        .post(
            &t.user,
            "/api/v1/api_keys",
            json!({"name": "past", "role": "agent", "expires_at": "2001-01-01T00:00:00Z"}),
        )
        .await;
    resp.err(422, "validation_failed");
    let expires_at = rfc3339_in(Duration::from_millis(1000));
    let resp = server
        .post(&t.user, "/api/v1/api_keys", json!({"name": "expiring", "role": "agent", "expires_at": expires_at}))
        .await;
    let created = Instant::now();
    let key = resp.ok(201)["api_key"].clone();
    assert!(key["expires_at"].is_string());
    let raw = s(&key["raw_key"]);
    let first = server.get(&raw, whoami).await;
    if created.elapsed() < Duration::from_millis(700) {
        assert_eq!(first.ok(200)["expires_at"], key["expires_at"]);
    }
    loop {
        let resp = server.get(&raw, whoami).await;
        if resp.status == 401 {
            resp.err(401, "token_expired");
            break;
        }
        resp.ok(200);
        assert!(created.elapsed() < Duration::from_secs(5), "the key never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // token_expired after a rotation without grace; the new key works at once.
    let (raw, key_id, _) = new_key(&server, &t.user, "agent", "rotated").await;
    let resp =
        server.post(&t.user, &format!("/api/v1/api_keys/{key_id}/rotate"), json!({"grace_period_hours": 0})).await;
    let fresh = s(&resp.ok(201)["new_key"]["raw_key"]);
    assert_eq!(server.get(&fresh, whoami).await.ok(200)["role"], "agent");
    server.get(&raw, whoami).await.err(401, "token_expired");
    let resp =
        server.post(&t.user, &format!("/api/v1/api_keys/{key_id}/rotate"), json!({"grace_period_hours": 169})).await;
    resp.err(422, "validation_failed");

    // forbidden: the role may not make the call at all.
    server.post(&t.agent, "/api/v1/projects", json!({"name": "Mine", "slug": "mine"})).await.err(403, "forbidden");
    server
        .post(&t.orch, "/api/v1/api_keys", json!({"name": "twin", "role": "orchestrator"}))
        .await
        .err(403, "forbidden");
    server.post(&t.user, "/api/v1/api_keys", json!({"name": "root", "role": "superadmin"})).await.err(403, "forbidden");
    let resp = server.patch(&t.orch, "/api/v1/tenants/me", json!({"settings": {"max_concurrent_agents": 9}})).await;
    resp.err(403, "forbidden");
    server.get(&t.agent, "/api/v1/audit").await.err(403, "forbidden");
    let ids = seed(&server, &t, "Errors Shop").await;
    let s11 = ids.story("1.1");
    to_reported(&server, &t.agent, s11).await;
    let (other_agent, _, _) = new_key(&server, &t.user, "agent", "bystander").await;
    for agent in [&t.agent, &other_agent] {
        server.post(agent, &format!("/api/v1/stories/{s11}/verify"), json!({})).await.err(403, "forbidden");
        server
            .post(agent, &format!("/api/v1/stories/{s11}/reject"), json!({"reason": "x"}))
            .await
            .err(403, "forbidden");
    }
    server
        .post(&t.orch, &format!("/api/v1/stories/{}/claim", ids.story("1.2")), Value::Null)
        .await
        .err(403, "forbidden");
    assert_eq!(story(&server, &t.orch, s11).await["verified_status"], "unverified");

    // not_found: an id that does not exist, a route that does not exist.
    let nobody = "0190aaaa-0000-7000-8000-000000000000";
    server.get(&t.agent, &format!("/api/v1/stories/{nobody}")).await.err(404, "not_found");
    server.get(&t.agent, &format!("/api/v1/projects/{nobody}")).await.err(404, "not_found");
    server.get(&t.agent, "/api/v1/no-such-endpoint").await.err(404, "not_found");
    server.get(&t.agent, "/api/v1/stories?project_id=no-such-project").await.err(404, "not_found");

    // nothing_ready: 1.1 is taken, the rest waits for it.
    let resp = server.post(&t.agent, "/api/v1/stories/claim-next", json!({"project_id": ids.project})).await;
    resp.err(404, "nothing_ready");
    let empty = create_project(&server, &t.orch, "Empty").await;
    server.post(&t.agent, "/api/v1/stories/claim-next", json!({"project_id": empty})).await.err(404, "nothing_ready");

    // validation_failed: a blank title, a bad UUID in the path, an unknown setting.
    let resp =
        server.post(&t.orch, &format!("/api/v1/projects/{empty}/epics"), json!({"number": 1, "title": "   "})).await;
    let err = resp.err(422, "validation_failed");
    assert!(err["details"]["title"].is_array(), "details name the field: {err}");
    server.get(&t.agent, "/api/v1/stories/not-a-uuid").await.err(422, "validation_failed");
    server.post(&t.agent, "/api/v1/stories/not-a-uuid/claim", Value::Null).await.err(422, "validation_failed");
    let resp = server.patch(&t.user, "/api/v1/tenants/me", json!({"settings": {"max_concurent_agents": 3}})).await;
    let err = resp.err(422, "validation_failed");
    assert!(err["details"]["max_concurent_agents"].is_array(), "details name the unknown setting: {err}");
    server
        .patch(&t.user, "/api/v1/tenants/me", json!({"settings": {"max_concurrent_agents": 0}}))
        .await
        .err(422, "validation_failed");
    server.post(&t.orch, "/api/v1/projects", json!({"name": ""})).await.err(422, "validation_failed");
    server
        .post(&t.orch, "/api/v1/projects", json!({"name": "Bad Slug", "slug": "Bad Slug"}))
        .await
        .err(422, "validation_failed");
    server.post(&t.orch, "/api/v1/projects", json!({"name": 5})).await.err(422, "validation_failed");
    let resp = server.get(&t.agent, "/api/v1/changes?since=yesterday").await;
    resp.err(422, "validation_failed");

    // invalid_json.
    let resp =
        server.req(Method::POST, "/api/v1/projects").key(&t.orch).raw("{\"name\": ", "application/json").send().await;
    resp.err(400, "invalid_json");
    let resp = server
        .req(Method::POST, &format!("/api/v1/stories/{}/contract", ids.story("1.2")))
        .key(&t.agent)
        .raw("{oops", "application/json")
        .send()
        .await;
    resp.err(400, "invalid_json");

    // payload_too_large: 1 MiB on normal routes; imports take more.
    let big = format!("{{\"name\":\"Big\",\"description\":\"{}\"}}", "a".repeat(1_100_000));
    let resp =
        server.req(Method::POST, "/api/v1/projects").key(&t.orch).raw(big.clone(), "application/json").send().await;
    resp.err(413, "payload_too_large");
    let resp = server
        .req(Method::POST, &format!("/api/v1/stories/{}/contract", ids.story("1.2")))
        .key(&t.agent)
        .raw(big, "application/json")
        .send()
        .await;
    resp.err(413, "payload_too_large");
    let stories: Vec<Value> = (1..=45)
        .map(|i| json!({"number": format!("1.{i}"), "title": format!("Large {i}"), "description": "d".repeat(47_000)}))
        .collect();
    let doc = json!({"epics": [{"number": 1, "title": "Large", "stories": stories}]});
    let doc_len = doc.to_string().len();
    assert!(doc_len > 2_000_000 && doc_len < 16 << 20, "the import is about 2 MiB: {doc_len}");
    let large = create_project(&server, &t.orch, "Large").await;
    let resp = server.post(&t.orch, &format!("/api/v1/projects/{large}/import"), doc).await;
    assert_eq!(resp.ok(201)["import"]["stories_created"], 45);
}

async fn lifecycle_errors(server: Server) {
    let t = server.tenant("Lifecycle").await;
    let ids = seed(&server, &t, "Shop").await;
    let (s11, s12, s21) = (ids.story("1.1"), ids.story("1.2"), ids.story("2.1"));
    let post = |key: &str, id: &str, verb: &str, body: Value| {
        let path = format!("/api/v1/stories/{id}/{verb}");
        let key = key.to_string();
        let server = &server;
        async move { server.post(&key, &path, body).await }
    };

    // Out of order on a pending story.
    post(&t.agent, s11, "start", Value::Null).await.err(409, "must_contract_first");
    post(&t.agent, s11, "claim", Value::Null).await.err(409, "must_contract_first");
    post(&t.agent, s11, "report", commit_artifact("abc")).await.err(409, "must_claim_first");

    // Contract: title and count must match; an agent must send both.
    let err = post(&t.agent, s11, "contract", json!({"story_title": "Something else", "ac_count": 2})).await;
    let err = err.err(422, "contract_mismatch");
    assert_eq!(err["context"]["expected_story_title"], "Sign-up endpoint");
    let resp = post(&t.agent, s11, "contract", json!({"story_title": "Sign-up endpoint", "ac_count": 1})).await;
    let err = resp.err(422, "contract_mismatch");
    assert_eq!(err["context"], json!({"expected_ac_count": 2, "provided_ac_count": 1}));
    post(&t.agent, s11, "contract", Value::Null).await.err(422, "validation_failed");
    post(&t.agent, s11, "contract", json!({"story_title": "Sign-up endpoint", "ac_count": -2}))
        .await
        .err(422, "validation_failed");
    post(&t.agent, s11, "contract", json!({"story_title": "Sign-up endpoint", "ac_count": "2"})).await.ok(200);

    // Contracting again renews the caller's own contract; anyone else's fresh contract is
    // invalid_transition, with the current statuses as context.
    post(&t.agent, s11, "contract", json!({"story_title": "Sign-up endpoint", "ac_count": 2})).await.ok(200);
    let resp = post(&t.orch, s11, "contract", json!({"story_title": "Sign-up endpoint", "ac_count": 2})).await;
    let err = resp.err(409, "invalid_transition");
    assert_eq!(
        err["context"],
        json!({"current_agent_status": "contracted", "current_verified_status": "unverified", "attempted_action": "contract"})
    );
    post(&t.agent, s11, "start", Value::Null).await.err(409, "must_claim_first");
    post(&t.agent, s11, "report", Value::Null).await.err(409, "must_claim_first");
    post(&t.orch, s11, "verify", json!({})).await.err(409, "invalid_transition");
    post(&t.orch, s11, "review-complete", json!({})).await.err(409, "invalid_transition");
    post(&t.orch, s11, "reject", json!({"reason": "too early"})).await.err(409, "invalid_transition");

    // dependencies_not_met: story and epic dependencies refuse the contract already, so a
    // waiting story stays pending (and in `blocked`) instead of contracted and nowhere.
    let ac = |title: &str| json!({"story_title": title, "ac_count": 2});
    let s12_title = story(&server, &t.agent, s12).await["title"].as_str().unwrap_or_default().to_string();
    let s21_title = story(&server, &t.agent, s21).await["title"].as_str().unwrap_or_default().to_string();
    post(&t.agent, s12, "contract", ac(&s12_title)).await.err(409, "dependencies_not_met");
    post(&t.agent, s21, "contract", ac(&s21_title)).await.err(409, "dependencies_not_met");
    post(&t.agent, s12, "claim", Value::Null).await.err(409, "must_contract_first");
    assert_eq!(story(&server, &t.agent, s12).await["agent_status"], "pending", "a refused contract changes nothing");
    let blocked = server.get(&t.agent, &format!("/api/v1/stories/blocked?project_id={}", ids.project)).await;
    let waiting: Vec<&str> = blocked.ok(200)["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["story"]["number"].as_str())
        .collect();
    assert!(waiting.contains(&"1.2") && waiting.contains(&"2.1"), "{waiting:?}");

    // stale_claim: a claim epoch that is not the story's.
    let resp = post(&t.agent, s11, "claim", Value::Null).await;
    assert_eq!(resp.ok(200)["story"]["claim_epoch"], 1);
    let start = format!("/api/v1/stories/{s11}/start");
    let resp = server.req(Method::POST, &start).key(&t.agent).header("X-Claim-Epoch", "7").send().await;
    let err = resp.err(409, "stale_claim");
    assert_eq!(err["context"]["current_claim_epoch"], 1);
    let resp = server.req(Method::POST, &start).key(&t.agent).header("X-Claim-Epoch", "one").send().await;
    resp.err(422, "validation_failed");
    assert_eq!(story(&server, &t.agent, s11).await["agent_status"], "assigned");

    // Another agent is not the claimant.
    let (other, _, _) = new_key(&server, &t.user, "agent", "other").await;
    post(&other, s11, "start", Value::Null).await.err(403, "forbidden");
    post(&other, s11, "claim", Value::Null).await.err(409, "invalid_transition");
    let resp = server.req(Method::POST, &start).key(&t.agent).header("X-Claim-Epoch", "1").send().await;
    resp.ok(200);
    post(&other, s11, "report", commit_artifact("abc")).await.err(403, "forbidden");
    post(&other, s11, "heartbeat", Value::Null).await.err(403, "forbidden");
    post(&other, s11, "unclaim", Value::Null).await.err(403, "forbidden");
    post(&t.agent, s11, "start", Value::Null).await.err(409, "invalid_transition");
    post(&t.orch, s11, "verify", json!({})).await.err(409, "invalid_transition");

    // A heartbeat renews the lease and says until when.
    let resp = post(&t.agent, s11, "heartbeat", Value::Null).await;
    assert!(resp.ok(200)["lease_expires_at"].is_string());

    post(&t.agent, s11, "report", commit_artifact("abc")).await.ok(200);
    post(&t.agent, s11, "report", commit_artifact("abc")).await.err(409, "invalid_transition");
    post(&t.agent, s11, "start", Value::Null).await.err(409, "invalid_transition");
    post(&t.orch, s11, "verify", json!({"result": "maybe"})).await.err(422, "validation_failed");
    post(&t.orch, s11, "verify", json!({})).await.ok(202);
    post(&t.orch, s11, "verify", json!({})).await.err(409, "invalid_transition");
    post(&t.orch, s11, "review-complete", json!({})).await.err(409, "invalid_transition");
    post(&t.orch, s11, "force-unclaim", json!({"reason": "no"})).await.err(409, "invalid_transition");
    post(&t.orch, s11, "backfill", json!({"reason": "no"})).await.err(409, "invalid_transition");

    // Now 1.2's dependency is verified: its contract and claim go through.
    claim(&server, &t.agent, s12).await;
}

async fn concurrency_limit(server: Server) {
    let t = server.tenant("Limits").await;
    let settings = set_settings(&server, &t.user, json!({"max_concurrent_agents": 1})).await;
    assert_eq!(settings["max_concurrent_agents"], 1);
    let ids = seed_with(&server, &t.orch, "Flat", &flat_doc(2)).await;
    let (s1, s2) = (ids.story("1.1"), ids.story("1.2"));
    claim(&server, &t.agent, s1).await;

    // The ready list has no slot left to suggest.
    let resp = server.get(&t.agent, &format!("/api/v1/stories/ready?project_id={}", ids.project)).await;
    let ready = resp.ok(200);
    assert_eq!(ready["data"][0]["number"], "1.2");
    assert_eq!(ready["data"][0]["suggested"], false);
    assert_eq!(ready["meta"]["in_flight"], 1);

    let (second, _, _) = new_key(&server, &t.user, "agent", "second").await;
    let resp = server.post(&second, "/api/v1/stories/claim-next", json!({"project_id": ids.project})).await;
    let err = resp.err(409, "concurrency_limit");
    assert_eq!(err["context"]["in_flight"], json!(["1.1"]));
    contract(&server, &second, s2).await;
    let resp = server.post(&second, &format!("/api/v1/stories/{s2}/claim"), Value::Null).await;
    let err = resp.err(409, "concurrency_limit");
    assert_eq!(err["context"]["max_concurrent_agents"], 1);
    assert_eq!(err["context"]["in_flight"], json!(["1.1"]));
    assert!(s(&err["message"]).contains("1.1"), "the message names the in-flight story: {err}");
    assert_eq!(story(&server, &t.agent, s2).await["agent_status"], "contracted");

    // Numbers may come as strings; a higher limit lets the claim through.
    let settings = set_settings(&server, &t.user, json!({"max_concurrent_agents": "2"})).await;
    assert_eq!(settings["max_concurrent_agents"], 2);
    let resp = server.post(&second, &format!("/api/v1/stories/{s2}/claim"), Value::Null).await;
    assert_eq!(resp.ok(200)["story"]["agent_status"], "assigned");
}

async fn escalation(server: Server) {
    let t = server.tenant("Escalation").await;
    let settings =
        set_settings(&server, &t.user, json!({"escalate_after_rejections": 1, "max_review_cycles": 2})).await;
    assert_eq!(settings["escalate_after_rejections"], 1);
    assert_eq!(settings["max_review_cycles"], 2);
    let ids = seed(&server, &t, "Shop").await;
    let s11 = ids.story("1.1");

    // First rejection: flagged for a human, still claimable.
    to_reported(&server, &t.agent, s11).await;
    let st = reject(&server, &t.orch, s11, "tests missing").await;
    assert_eq!(st["escalated"], true);
    assert!(st["escalated_at"].is_string());
    assert_eq!(st["escalation_locked"], false);
    assert_eq!(st["iteration_count"], 1);
    assert_eq!(ready_numbers(&server, &t.agent, &ids.project).await, vec!["1.1"]);

    // Second rejection: locked.
    to_reported(&server, &t.agent, s11).await;
    let st = reject(&server, &t.orch, s11, "tests still missing").await;
    assert_eq!(st["escalated"], true);
    assert_eq!(st["escalation_locked"], true);
    assert_eq!(st["iteration_count"], 2);
    assert_eq!(st["agent_status"], "pending");
    assert!(ready_numbers(&server, &t.agent, &ids.project).await.is_empty(), "a locked story is not ready");
    let feed = all_changes(&server, &t.orch, Some(&ids.project)).await;
    assert!(feed.iter().any(|e| e["action"] == "escalated" && e["entity_id"] == json!(s11)));

    let resp = server
        .post(
            &t.agent,
            &format!("/api/v1/stories/{s11}/contract"),
            json!({"story_title": "Sign-up endpoint", "ac_count": 2}),
        )
        .await;
    resp.err(409, "escalation_locked");
    server.post(&t.agent, &format!("/api/v1/stories/{s11}/claim"), Value::Null).await.err(409, "escalation_locked");
    let resp = server.post(&t.agent, "/api/v1/stories/claim-next", json!({"project_id": ids.project})).await;
    resp.err(404, "nothing_ready");

    // Only a user clears it, with a note.
    let clear = format!("/api/v1/stories/{s11}/clear-escalation");
    server.post(&t.orch, &clear, json!({"note": "I decide"})).await.err(403, "forbidden");
    server.post(&t.agent, &clear, json!({"note": "me too"})).await.err(403, "forbidden");
    server.post(&t.user, &clear, json!({})).await.err(422, "validation_failed");
    let resp = server.post(&t.user, &clear, json!({"note": "split the story; try again"})).await;
    let st = &resp.ok(200)["story"];
    assert_eq!(st["escalated"], false);
    assert_eq!(st["escalation_locked"], false);
    assert_eq!(st["iteration_count"], 2, "clearing never lowers the iteration count");
    assert_eq!(ready_numbers(&server, &t.agent, &ids.project).await, vec!["1.1"]);
    server.post(&t.user, &clear, json!({"note": "again"})).await.err(409, "invalid_transition");
    contract(&server, &t.agent, s11).await;
}

/// WIRE.md: force-unclaim gives a new claim epoch, "the old holder's writes then get
/// `stale_claim`".
async fn stale_claim_after_reclaim(server: Server) {
    let t = server.tenant("Reclaim").await;
    let ids = seed_with(&server, &t.orch, "Flat", &flat_doc(2)).await;
    let (s1, s2) = (ids.story("1.1"), ids.story("1.2"));
    let (newcomer, _, _) = new_key(&server, &t.user, "agent", "newcomer").await;
    let with_epoch = |verb: &str, id: &str, epoch: i64, body: Value| {
        server
            .req(Method::POST, &format!("/api/v1/stories/{id}/{verb}"))
            .key(&t.agent)
            .header("X-Claim-Epoch", &epoch.to_string())
            .json(&body)
    };

    // Story 1.2: reclaimed and claimed by someone else; the old holder is fenced off.
    let old = claim(&server, &t.agent, s2).await;
    let resp =
        server.post(&t.orch, &format!("/api/v1/stories/{s2}/force-unclaim"), json!({"reason": "went silent"})).await;
    let st = &resp.ok(200)["story"];
    assert_eq!(st["agent_status"], "pending");
    assert_eq!(st["assigned_agent_id"], Value::Null);
    assert_eq!(st["claim_epoch"], json!(old + 1));
    let new = claim(&server, &newcomer, s2).await;
    assert!(new > old + 1);
    // Even without its epoch the old holder is told its claim is stale, not that it never had one.
    server.post(&t.agent, &format!("/api/v1/stories/{s2}/start"), Value::Null).await.err(409, "stale_claim");

    // Every write of the old holder with its old epoch is stale; collected so that one
    // report names every verb that answers otherwise.
    let mut wrong = Vec::new();
    let mut expect_stale = |resp: Resp| {
        if (resp.status, resp.code()) != (409, Some("stale_claim")) {
            wrong.push(format!("{}: expected 409 stale_claim, got {} {}", resp.desc, resp.status, resp.body));
        }
    };
    for verb in ["start", "heartbeat", "request-review", "unclaim"] {
        expect_stale(with_epoch(verb, s2, old, json!({})).send().await);
    }
    expect_stale(with_epoch("report", s2, old, commit_artifact("abc")).send().await);
    assert_eq!(story(&server, &t.orch, s2).await["assigned_agent_id"], json!(agent_id(&server, &newcomer).await));

    // Story 1.1: reclaimed and not claimed again yet.
    let old = claim(&server, &t.agent, s1).await;
    server.post(&t.agent, &format!("/api/v1/stories/{s1}/start"), Value::Null).await.ok(200);
    server
        .post(&t.orch, &format!("/api/v1/stories/{s1}/force-unclaim"), json!({"reason": "went silent"}))
        .await
        .ok(200);
    for verb in ["heartbeat", "start", "request-review", "unclaim"] {
        expect_stale(with_epoch(verb, s1, old, json!({})).send().await);
    }
    expect_stale(with_epoch("report", s1, old, commit_artifact("abc")).send().await);
    assert_eq!(story(&server, &t.orch, s1).await["agent_status"], "pending");
    assert!(
        wrong.is_empty(),
        "after a force-unclaim the old holder's writes are not all stale_claim:\n{}",
        wrong.join("\n")
    );
}

async fn custody(server: Server) {
    let t = server.tenant("Custody").await;
    let ids = seed(&server, &t, "Shop").await;
    let s11 = ids.story("1.1");
    to_reported(&server, &t.agent, s11).await;
    let implementer = agent_id(&server, &t.agent).await;

    // A user mints an orchestrator key on the implementer's own identity.
    let resp = server
        .post(&t.user, "/api/v1/api_keys", json!({"name": "sneaky", "role": "orchestrator", "agent_id": implementer}))
        .await;
    let key = &resp.ok(201)["api_key"];
    assert_eq!(key["agent_id"], json!(implementer));
    assert_eq!(key["role"], "orchestrator");
    let sneaky = s(&key["raw_key"]);

    let path = |verb: &str| format!("/api/v1/stories/{s11}/{verb}");
    server
        .post(&sneaky, &path("review-complete"), json!({"summary": "looks great"}))
        .await
        .err(409, "self_review_blocked");
    server.post(&sneaky, &path("verify"), json!({"summary": "ship it"})).await.err(409, "self_verify_blocked");
    server.post(&sneaky, &path("reject"), json!({"reason": "reset my count"})).await.err(409, "self_verify_blocked");
    server.post(&t.agent, &path("review-complete"), json!({})).await.err(403, "forbidden");
    let st = story(&server, &t.orch, s11).await;
    assert_eq!(st["agent_status"], "reported_done");
    assert_eq!(st["verified_status"], "unverified");
    assert_eq!(st["reviews"], json!([]));
    assert_eq!(st["verifications"], json!([]));

    // No refusal halts the tenant: the same key goes on working, and so does everyone else.
    server.get(&sneaky, &format!("/api/v1/stories/{s11}")).await.ok(200);
    server.post(&sneaky, "/api/v1/projects", json!({"name": "Still Works"})).await.ok(201);
    server.post(&t.orch, &path("review-complete"), json!({})).await.ok(201);
    let resp = server.post(&t.orch, &path("verify"), json!({})).await;
    assert_eq!(resp.ok(202)["story"]["verified_status"], "verified");
}

async fn strict_custody(server: Server) {
    let t = server.tenant("Strict").await;
    let settings = set_settings(&server, &t.user, json!({"custody_mode": "strict"})).await;
    assert_eq!(settings["custody_mode"], "strict");
    let ids = seed_with(&server, &t.orch, "Flat", &flat_doc(1)).await;
    let s1 = ids.story("1.1");
    let path = |verb: &str| format!("/api/v1/stories/{s1}/{verb}");
    claim(&server, &t.agent, s1).await;
    server.post(&t.agent, &path("start"), Value::Null).await.ok(200);

    // The implementer may not report its own story in the strict flow.
    server.post(&t.agent, &path("report"), commit_artifact("abc")).await.err(409, "self_report_blocked");
    let resp = server.post(&t.agent, &path("request-review"), Value::Null).await;
    assert!(resp.ok(200)["story"]["review_requested_at"].is_string());
    let resp = server.post(&t.orch, &path("report"), commit_artifact("abc")).await;
    assert_eq!(resp.ok(200)["story"]["agent_status"], "reported_done");

    // Verify needs a review after the report.
    server.post(&t.orch, &path("verify"), json!({})).await.err(422, "review_not_conducted");
    server.post(&t.orch, &path("review-complete"), json!({"review_type": "enhanced"})).await.ok(201);
    let resp = server.post(&t.orch, &path("verify"), json!({})).await;
    assert_eq!(resp.ok(202)["story"]["verified_status"], "verified");
}

/// SPEC.md: "we refuse the one call, record it in the audit log, and go on"; WIRE.md:
/// "the one call is refused and audited".
async fn custody_refusals_are_audited(server: Server) {
    let t = server.tenant("Audited").await;
    let ids = seed(&server, &t, "Shop").await;
    let s11 = ids.story("1.1");
    to_reported(&server, &t.agent, s11).await;
    let implementer = agent_id(&server, &t.agent).await;
    let resp = server
        .post(&t.user, "/api/v1/api_keys", json!({"name": "sneaky", "role": "orchestrator", "agent_id": implementer}))
        .await;
    let sneaky = s(&resp.ok(201)["api_key"]["raw_key"]);
    server.post(&sneaky, &format!("/api/v1/stories/{s11}/verify"), json!({})).await.err(409, "self_verify_blocked");
    let resp = server.post(&sneaky, &format!("/api/v1/stories/{s11}/review-complete"), json!({})).await;
    resp.err(409, "self_review_blocked");

    let audit = server.get(&t.user, "/api/v1/audit?limit=1000").await;
    let text = audit.ok(200).to_string();
    assert!(text.contains("self_verify_blocked"), "the refused verify is in the audit log: {text}");
    assert!(text.contains("self_review_blocked"), "the refused review is in the audit log: {text}");
}

async fn graph_and_number_errors(server: Server) {
    let t = server.tenant("Graphs").await;
    let ids = seed_with(&server, &t.orch, "Flat", &flat_doc(2)).await;
    let (a, b) = (ids.story("1.1"), ids.story("1.2"));
    let e1 = ids.epic(1);

    // Story dependencies: a cycle, a duplicate, a self edge.
    let dep = |from: &str, to: &str| json!({"story_id": from, "depends_on_story_id": to});
    let resp = server.post(&t.orch, "/api/v1/story_dependencies", dep(a, b)).await;
    let created = &resp.ok(201)["story_dependency"];
    assert_eq!(created["story_id"], json!(a));
    assert_eq!(created["depends_on_story_id"], json!(b));
    server.post(&t.orch, "/api/v1/story_dependencies", dep(b, a)).await.err(422, "cycle_detected");
    server.post(&t.orch, "/api/v1/story_dependencies", dep(a, b)).await.err(409, "conflict");
    server.post(&t.orch, "/api/v1/story_dependencies", dep(a, a)).await.err(422, "validation_failed");
    server.post(&t.agent, "/api/v1/story_dependencies", dep(b, a)).await.err(403, "forbidden");

    // Epic dependencies, the same.
    let resp = server
        .post(&t.orch, &format!("/api/v1/projects/{}/epics", ids.project), json!({"number": 2, "title": "Second"}))
        .await;
    let e2 = s(&resp.ok(201)["epic"]["id"]);
    let edep = |from: &str, to: &str| json!({"epic_id": from, "depends_on_epic_id": to});
    server.post(&t.orch, "/api/v1/epic_dependencies", edep(&e2, e1)).await.ok(201);
    server.post(&t.orch, "/api/v1/epic_dependencies", edep(e1, &e2)).await.err(422, "cycle_detected");
    server.post(&t.orch, "/api/v1/epic_dependencies", edep(&e2, e1)).await.err(409, "conflict");

    // duplicate_number on create.
    let resp = server
        .post(&t.orch, &format!("/api/v1/projects/{}/epics", ids.project), json!({"number": 1, "title": "Again"}))
        .await;
    resp.err(409, "duplicate_number");
    let resp =
        server.post(&t.orch, &format!("/api/v1/epics/{e1}/stories"), json!({"number": "1.1", "title": "Again"})).await;
    resp.err(409, "duplicate_number");
    let resp = server
        .post(
            &t.orch,
            &format!("/api/v1/projects/{}/stories", ids.project),
            json!({"number": "US-1.2", "title": "Again", "epic_number": 1}),
        )
        .await;
    resp.err(409, "duplicate_number");
    let resp =
        server.post(&t.orch, &format!("/api/v1/epics/{e1}/stories"), json!({"number": "1.3", "title": "New"})).await;
    assert_eq!(resp.ok(201)["story"]["number"], "1.3");

    // A fresh import over existing numbers: 409 with the numbers; inside one payload: 422.
    let shop = seed(&server, &t, "Shop").await;
    let resp = server.post(&t.orch, &format!("/api/v1/projects/{}/import", shop.project), reference_doc()).await;
    let err = resp.err(409, "duplicate_number");
    assert_eq!(err["details"]["duplicate_epic_numbers"], json!([1, 2]));
    assert_eq!(err["details"]["duplicate_story_numbers"], json!(["1.1", "1.2", "2.1"]));
    let twice = json!({"epics": [{"number": 1, "title": "E", "stories": [
        {"number": "1.1", "title": "A"}, {"number": "1.1", "title": "B"}]}]});
    let fresh = create_project(&server, &t.orch, "Fresh").await;
    server.post(&t.orch, &format!("/api/v1/projects/{fresh}/import"), twice).await.err(422, "duplicate_number");

    // An import with a cycle is refused whole.
    let cyclic = json!({
        "epics": [{"number": 1, "title": "E", "stories": [{"number": "1.1", "title": "A"}, {"number": "1.2", "title": "B"}]},
                  {"number": 2, "title": "F"}],
        "story_dependencies": [{"story": "1.1", "depends_on": "1.2"}, {"story": "1.2", "depends_on": "1.1"}]
    });
    server.post(&t.orch, &format!("/api/v1/projects/{fresh}/import"), cyclic).await.err(422, "cycle_detected");
    let epic_cycle = json!({
        "epics": [{"number": 1, "title": "E"}, {"number": 2, "title": "F"}],
        "epic_dependencies": [{"epic": 1, "depends_on": 2}, {"epic": 2, "depends_on": 1}]
    });
    server.post(&t.orch, &format!("/api/v1/projects/{fresh}/import"), epic_cycle).await.err(422, "cycle_detected");
    let unresolved = json!({"epics": [{"number": 1, "title": "E", "stories": [{"number": "1.1", "title": "A"}]}],
                            "story_dependencies": [{"story": "1.1", "depends_on": "9.9"}]});
    server.post(&t.orch, &format!("/api/v1/projects/{fresh}/import"), unresolved).await.err(422, "validation_failed");
    let resp = server.get(&t.orch, &format!("/api/v1/projects/{fresh}")).await;
    assert_eq!(resp.ok(200)["project"]["epic_count"], 0, "refused imports write nothing");
    assert_eq!(resp.body["project"]["story_count"], 0);

    // version_conflict on a checkpoint.
    let path = format!("/api/v1/orchestrator/state/{fresh}");
    server.put(&t.orch, &path, json!({"state_data": {"a": 1}})).await.ok(200);
    server.put(&t.orch, &path, json!({"state_data": {"a": 2}, "version": 0})).await.err(409, "version_conflict");
}

async fn unclaim_backfill_and_deletes(server: Server) {
    let t = server.tenant("Admin").await;
    let ids = seed(&server, &t, "Shop").await;
    let (s11, s12, s21) = (ids.story("1.1"), ids.story("1.2"), ids.story("2.1"));
    let path = |id: &str, verb: &str| format!("/api/v1/stories/{id}/{verb}");

    // Unclaim: a contracted story only by its contractor (back to pending, no epoch to move);
    // a claimed one only by its claimant, back with a new epoch.
    server.post(&t.agent, &path(s11, "unclaim"), Value::Null).await.err(409, "invalid_transition");
    contract(&server, &t.agent, s11).await;
    server.post(&t.orch, &path(s11, "unclaim"), Value::Null).await.err(403, "forbidden");
    let resp = server.post(&t.agent, &path(s11, "unclaim"), Value::Null).await;
    assert_eq!(resp.ok(200)["story"]["agent_status"], "pending");
    contract(&server, &t.agent, s11).await;
    let resp = server.post(&t.agent, &path(s11, "claim"), Value::Null).await;
    assert_eq!(resp.ok(200)["story"]["claim_epoch"], 1);
    let resp = server.post(&t.agent, &path(s11, "unclaim"), Value::Null).await;
    let st = &resp.ok(200)["story"];
    assert_eq!(st["agent_status"], "pending");
    assert_eq!(st["assigned_agent_id"], Value::Null);
    assert_eq!(st["claim_epoch"], 2);
    assert_eq!(ready_numbers(&server, &t.agent, &ids.project).await, vec!["1.1"]);

    // Backfill: work done outside loopctl, recorded as verified with its reason.
    server.post(&t.agent, &path(s11, "backfill"), json!({"reason": "done by hand"})).await.err(403, "forbidden");
    server.post(&t.orch, &path(s11, "backfill"), json!({})).await.err(422, "validation_failed");
    let resp = server.post(&t.orch, &path(s11, "backfill"), json!({"reason": "x", "evidence_url": "ftp://x"})).await;
    resp.err(422, "validation_failed");
    // 1.1 was claimed in loopctl (and given back): it is verified or rejected, never backfilled.
    let backfill = json!({"reason": "merged in PR 42", "evidence_url": "https://example.com/pr/42", "pr_number": 42});
    server.post(&t.orch, &path(s11, "backfill"), backfill.clone()).await.err(409, "invalid_transition");
    // A story never claimed here is backfilled, with its reason recorded.
    let extra = server
        .post(
            &t.orch,
            &format!("/api/v1/epics/{}/stories", ids.epic(1)),
            json!({"number": "1.9", "title": "Done before loopctl"}),
        )
        .await;
    let s19 = s(&extra.ok(201)["story"]["id"]);
    let resp = server.post(&t.orch, &path(&s19, "backfill"), backfill).await;
    let st = &resp.ok(200)["story"];
    assert_eq!(st["agent_status"], "reported_done");
    assert_eq!(st["verified_status"], "verified");
    assert_eq!(st["metadata"]["backfill"]["reason"], "merged in PR 42");
    assert_eq!(story(&server, &t.agent, &s19).await["metadata"]["backfill"]["pr_number"], 42);
    // 1.1 goes the normal way, which frees 1.2.
    claim(&server, &t.agent, s11).await;
    server.post(&t.agent, &path(s11, "start"), Value::Null).await.ok(200);
    server.post(&t.agent, &path(s11, "report"), Value::Null).await.ok(200);
    server.post(&t.orch, &path(s11, "verify"), json!({})).await.ok(202);
    assert_eq!(ready_numbers(&server, &t.agent, &ids.project).await, vec!["1.2"]);
    claim(&server, &t.agent, s12).await;
    server.post(&t.orch, &path(s12, "backfill"), json!({"reason": "no"})).await.err(409, "invalid_transition");

    // Deletes are for users; a deleted dependency no longer blocks.
    let resp = server.get(&t.orch, &format!("/api/v1/projects/{}/epic_dependencies", ids.project)).await;
    let epic_dep = s(&resp.ok(200)["data"][0]["id"]);
    server.delete(&t.orch, &format!("/api/v1/epic_dependencies/{epic_dep}")).await.err(403, "forbidden");
    server.delete(&t.user, &format!("/api/v1/epic_dependencies/{epic_dep}")).await.ok(204);
    server.delete(&t.user, &format!("/api/v1/epic_dependencies/{epic_dep}")).await.err(404, "not_found");
    assert_eq!(ready_numbers(&server, &t.agent, &ids.project).await, vec!["2.1"]);
    server.delete(&t.orch, &format!("/api/v1/stories/{s21}")).await.err(403, "forbidden");
    server.delete(&t.user, &format!("/api/v1/stories/{s21}")).await.ok(204);
    server.get(&t.user, &format!("/api/v1/stories/{s21}")).await.err(404, "not_found");

    // Deleting an epic takes its stories (and their artifacts, reviews, dependencies) along.
    server.delete(&t.user, &format!("/api/v1/epics/{}", ids.epic(1))).await.ok(204);
    server.get(&t.user, &format!("/api/v1/stories/{s11}")).await.err(404, "not_found");
    server.get(&t.user, &format!("/api/v1/stories/{s12}")).await.err(404, "not_found");
    let resp = server.get(&t.user, &format!("/api/v1/projects/{}", ids.project)).await;
    assert_eq!(resp.ok(200)["project"]["epic_count"], 1);
    assert_eq!(resp.body["project"]["story_count"], 0);

    // Archiving keeps the project out of default lists.
    server.delete(&t.orch, &format!("/api/v1/projects/{}", ids.project)).await.err(403, "forbidden");
    let resp = server.delete(&t.user, &format!("/api/v1/projects/{}", ids.project)).await;
    assert_eq!(resp.ok(200)["project"]["status"], "archived");
    let listed = server.get(&t.agent, "/api/v1/projects").await;
    assert!(!listed.ok(200).to_string().contains(&ids.project));
    let listed = server.get(&t.agent, "/api/v1/projects?include_archived=true").await;
    assert!(listed.ok(200).to_string().contains(&ids.project));
}

/// WIRE.md: "a mutating request with `Idempotency-Key` is answered from the stored
/// response for 24 h when repeated by the same key" (loopctl-client sends one on every
/// retried write).
async fn idempotency_key_replays(server: Server) {
    let t = server.tenant("Idempotent").await;
    let send = |body: Value| {
        server.req(Method::POST, "/api/v1/projects").key(&t.orch).header("Idempotency-Key", "create-once-1").json(&body)
    };
    let first = send(json!({"name": "Once", "slug": "once"})).send().await;
    let created = first.ok(201).clone();
    let again = send(json!({"name": "Once", "slug": "once"})).send().await;
    assert_eq!(again.status, 201, "a repeated request is answered from the stored response: {}", again.body);
    assert_eq!(again.body, created);
    let projects = server.get(&t.orch, "/api/v1/projects").await;
    assert_eq!(projects.ok(200)["data"].as_array().unwrap().len(), 1);

    // A review-complete retried after a lost answer is recorded once.
    let ids = seed(&server, &t, "Shop").await;
    let s11 = ids.story("1.1");
    to_reported(&server, &t.agent, s11).await;
    for _ in 0..2 {
        let resp = server
            .req(Method::POST, &format!("/api/v1/stories/{s11}/review-complete"))
            .key(&t.orch)
            .header("Idempotency-Key", "review-once-1")
            .json(&json!({"summary": "fine"}))
            .send()
            .await;
        resp.ok(201);
    }
    assert_eq!(story(&server, &t.orch, s11).await["reviews"].as_array().unwrap().len(), 1);
}

/// Input that is not what an endpoint takes is refused in the API's error shape with a stable
/// code, whatever layer notices it: bodies that are not JSON at all (`[[[` used to read as a
/// wrong field type, `validation_failed`), path segments that do not percent-decode to UTF-8
/// (axum's plain-text 400), and `/mcp` requests of the wrong content type or `Accept`
/// (rmcp's plain-text 415 and 406).
async fn malformed_input_anywhere_is_refused_in_the_error_shape(server: Server) {
    let t = server.tenant("Malformed").await;
    let ids = seed(&server, &t, "Malformed Shop").await;
    let (p, e1, s11) = (ids.project.clone(), ids.epic(1).to_string(), ids.story("1.1").to_string());

    // Not JSON at all: 400 invalid_json on every endpoint that takes a body, whatever it expects.
    let endpoints: Vec<(Method, String, &str)> = vec![
        (Method::POST, "/api/v1/projects".into(), &t.user),
        (Method::PATCH, format!("/api/v1/projects/{p}"), &t.orch),
        (Method::POST, format!("/api/v1/projects/{p}/epics"), &t.orch),
        (Method::PATCH, format!("/api/v1/epics/{e1}"), &t.orch),
        (Method::POST, format!("/api/v1/epics/{e1}/stories"), &t.orch),
        (Method::PATCH, format!("/api/v1/stories/{s11}"), &t.orch),
        (Method::POST, format!("/api/v1/projects/{p}/import"), &t.orch),
        (Method::PATCH, "/api/v1/tenants/me".into(), &t.user),
        (Method::POST, "/api/v1/api_keys".into(), &t.user),
        (Method::POST, "/api/v1/skills".into(), &t.user),
        (Method::PUT, format!("/api/v1/orchestrator/state/{p}"), &t.orch),
        (Method::POST, "/api/v1/stories/claim-next".into(), &t.agent),
        (Method::POST, format!("/api/v1/stories/{s11}/contract"), &t.agent),
        (Method::POST, format!("/api/v1/stories/{s11}/report"), &t.agent),
        (Method::POST, format!("/api/v1/stories/{s11}/verify"), &t.orch),
        (Method::POST, format!("/api/v1/stories/{s11}/reject"), &t.orch),
        (Method::POST, "/api/v1/stories/bulk/verify".into(), &t.orch),
        (Method::POST, format!("/api/v1/epics/{e1}/verify-all"), &t.orch),
        (Method::POST, "/api/v1/dispatches".into(), &t.orch),
    ];
    let not_json =
        ["[[[", "[", "{", "{[", "[{\"a\":}]", "{\"title\": [1, }", "[1, 2", "}", "nul", "{\"a\":1}{", "[\"x\"]]"];
    for (method, path, key) in &endpoints {
        for body in not_json {
            let resp = server.req(method.clone(), path).key(key).raw(body, "application/json").send().await;
            let err = resp.err(400, "invalid_json");
            let message = err["message"].as_str().unwrap_or_default();
            assert!(message.contains("not valid JSON") && message.contains("Content-Type"), "{body}: {err}");
        }
        // Nested past the parser's limit: still not a body any endpoint can take.
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let resp = server.req(method.clone(), path).key(key).raw(deep, "application/json").send().await;
        let err = resp.err(400, "invalid_json");
        assert!(err["message"].as_str().is_some_and(|m| m.contains("128 levels")), "{err}");
    }
    // Well-formed JSON of the wrong shape stays a validation error naming what is wrong.
    let resp = server.req(Method::POST, "/api/v1/projects").key(&t.user).raw("[[[]]]", "application/json").send().await;
    resp.err(422, "validation_failed");
    let resp = server
        .req(Method::POST, "/api/v1/projects")
        .key(&t.user)
        .raw(r#"{"name": 5}"#, "application/json")
        .send()
        .await;
    resp.err(422, "validation_failed");

    // Path segments that do not percent-decode to UTF-8: a JSON 400 wherever they stand.
    let undecodable = ["%ff%fe", "%C3%28", "%80", "a%E2%82", "%ED%A0%80"];
    for segment in undecodable {
        for (method, path, key) in [
            (Method::GET, format!("/api/v1/skills/{segment}"), &t.agent),
            (Method::GET, format!("/api/v1/skills/{segment}/stats"), &t.agent),
            (Method::GET, format!("/api/v1/skills/loopctl:review/versions/{segment}"), &t.agent),
            (Method::GET, format!("/api/v1/stories/{segment}"), &t.agent),
            (Method::POST, format!("/api/v1/stories/{segment}/claim"), &t.agent),
            (Method::GET, format!("/api/v1/projects/{segment}/progress"), &t.orch),
            (Method::GET, format!("/api/v1/orchestrator/state/{segment}"), &t.orch),
            (Method::DELETE, format!("/api/v1/epics/{segment}"), &t.user),
        ] {
            let resp = server.req(method, &path).key(key).send().await;
            let err = resp.err(400, "validation_failed");
            assert!(err["message"].as_str().is_some_and(|m| m.contains("UTF-8")), "{path}: {err}");
        }
    }

    // /mcp: the wrong content type is a JSON 415, the wrong Accept a JSON 406, a GET (no
    // sessions here) a JSON 405; a real request still works.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"] {
        let resp = server
            .req(Method::POST, "/mcp")
            .key(&t.orch)
            .header("accept", "application/json, text/event-stream")
            .raw(init.to_string(), content_type)
            .send()
            .await;
        let err = resp.err(415, "invalid_json");
        assert!(err["message"].as_str().is_some_and(|m| m.contains("application/json")), "{content_type}: {err}");
    }
    let resp = server.req(Method::POST, "/mcp").key(&t.orch).header("accept", "text/html").json(&init).send().await;
    resp.err(406, "validation_failed");
    let resp = server.req(Method::GET, "/mcp").key(&t.orch).header("accept", "text/event-stream").send().await;
    assert!(resp.status >= 400 && resp.status < 500, "GET /mcp: {} {}", resp.status, resp.body);
    resp.assert_error_shape();
    let resp = server
        .req(Method::POST, "/mcp")
        .key(&t.orch)
        .header("accept", "application/json, text/event-stream")
        .raw("[[[", "application/json")
        .send()
        .await;
    assert!(resp.status < 500, "malformed JSON-RPC: {} {}", resp.status, resp.body);
    assert!(resp.body.is_object(), "malformed JSON-RPC gets JSON: {}", resp.body);
    let resp = server
        .req(Method::POST, "/mcp")
        .key(&t.orch)
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await;
    assert_eq!(resp.ok(200)["result"]["serverInfo"]["name"], "loopctl", "{}", resp.body);
}
