//! `Idempotency-Key` as an attacker meets it (issue 11): the stored answers never hold a raw
//! key or token (checked with raw SQL on the table itself), a stored answer is replayed only
//! to a key that is still live, and concurrent requests with one key run once.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

both!(
    the_idempotency_table_never_holds_a_raw_key => the_idempotency_table_never_holds_a_raw_key_sqlite,
    the_idempotency_table_never_holds_a_raw_key_postgres
);
both!(
    a_revoked_key_replaying_its_idempotency_key_gets_401 => a_revoked_key_replaying_its_idempotency_key_gets_401_sqlite,
    a_revoked_key_replaying_its_idempotency_key_gets_401_postgres
);
both!(
    ten_concurrent_requests_with_one_idempotency_key_run_once => ten_concurrent_requests_with_one_idempotency_key_run_once_sqlite,
    ten_concurrent_requests_with_one_idempotency_key_run_once_postgres
);
both!(
    a_lifecycle_answer_is_kept_with_its_writes => a_lifecycle_answer_is_kept_with_its_writes_sqlite,
    a_lifecycle_answer_is_kept_with_its_writes_postgres
);
both!(
    copies_of_one_claim_all_get_the_claim_not_a_story_taken_error => copies_of_one_claim_all_get_the_claim_sqlite,
    copies_of_one_claim_all_get_the_claim_postgres
);

/// A request that carries `Idempotency-Key: idem`.
fn with_key(server: &Server, method: Method, path: &str, key: &str, idem: &str, body: &Value) -> Req {
    server.req(method, path).key(key).header("Idempotency-Key", idem).json(body)
}

/// Sends the same request twice: the first answer (with its secret), and the retry's
/// refusal, which must name what was created without revealing the secret.
async fn twice(server: &Server, method: Method, path: &str, key: &str, idem: &str, body: Value) -> (Value, Value) {
    let first = with_key(server, method.clone(), path, key, idem, &body).send().await;
    let first = first.ok(201).clone();
    let again = with_key(server, method, path, key, idem, &body).send().await;
    let refusal = again.err(409, "secret_not_replayed").clone();
    assert!(!again.body.to_string().contains("lc_"), "a retry never sees the secret again: {}", again.body);
    (first, refusal)
}

async fn the_idempotency_table_never_holds_a_raw_key(server: Server) {
    let t = server.tenant("Secrets").await;
    let ids = seed(&server, &t, "Shop").await;
    let mut secrets = vec![t.user.clone(), t.orch.clone(), t.agent.clone()];

    // A key minted under an Idempotency-Key, and the retry of that request.
    let body = json!({"name": "impl-2", "role": "agent"});
    let (minted, refusal) = twice(&server, Method::POST, "/api/v1/api_keys", &t.user, "mint-1", body).await;
    secrets.push(s(&minted["api_key"]["raw_key"]));
    let key_id = s(&minted["api_key"]["id"]);
    assert_eq!(refusal["context"]["answer"]["api_key"]["id"], json!(key_id), "{refusal}");
    let keys = server.get(&t.user, "/api/v1/api_keys").await;
    let named: Vec<&Value> =
        keys.ok(200)["api_keys"].as_array().unwrap().iter().filter(|k| k["name"] == "impl-2").collect();
    assert_eq!(named.len(), 1, "the retry minted no second key: {}", keys.body);

    // Its rotation, the same way.
    let path = format!("/api/v1/api_keys/{key_id}/rotate");
    let (rotated, _) = twice(&server, Method::POST, &path, &t.user, "rotate-1", json!({})).await;
    secrets.push(s(&rotated["new_key"]["raw_key"]));

    // A dispatch's capability token.
    let body = json!({"role": "implementer", "story_id": ids.story("1.1"), "expires_in_seconds": 600});
    let (dispatched, refusal) = twice(&server, Method::POST, "/api/v1/dispatches", &t.orch, "dispatch-1", body).await;
    secrets.push(s(&dispatched["data"]["api_key"]["raw_key"]));
    assert_eq!(refusal["context"]["answer"]["data"]["dispatch"]["id"], dispatched["data"]["dispatch"]["id"]);
    let listed = server.get(&t.orch, &format!("/api/v1/dispatches?story_id={}", ids.story("1.1"))).await;
    assert_eq!(listed.ok(200)["data"].as_array().map(Vec::len), Some(1), "one dispatch: {}", listed.body);

    // An answer without secrets is still replayed as it was.
    let body = json!({"name": "Kept", "slug": "kept"});
    let first = with_key(&server, Method::POST, "/api/v1/projects", &t.orch, "project-1", &body).send().await;
    let again = with_key(&server, Method::POST, "/api/v1/projects", &t.orch, "project-1", &body).send().await;
    assert_eq!(again.ok(201), first.ok(201));

    let rows = idempotency_rows(&server).await;
    assert_eq!(rows.len(), 4, "one row per Idempotency-Key used: {rows:#?}");
    for row in &rows {
        assert!(!row.contains("lc_"), "a stored answer holds something of a key: {row}");
        for secret in &secrets {
            assert!(!row.contains(secret.as_str()), "a stored answer holds a raw key: {row}");
        }
    }
}

async fn a_revoked_key_replaying_its_idempotency_key_gets_401(server: Server) {
    let t = server.tenant("Revoked").await;
    let ids = seed(&server, &t, "Shop").await;
    let (orch, orch_id, _) = new_key(&server, &t.user, "orchestrator", "soon-revoked").await;
    let body = json!({"name": "Replayed", "slug": "replayed"});
    let create = || with_key(&server, Method::POST, "/api/v1/projects", &orch, "project-1", &body);
    let created = create().send().await.ok(201).clone();
    assert_eq!(create().send().await.ok(201), &created, "replayed while the key is live");

    // Another key using the same Idempotency-Key gets its own request run, not this answer.
    let other = json!({"name": "Other", "slug": "other"});
    let theirs = with_key(&server, Method::POST, "/api/v1/projects", &t.orch, "project-1", &other).send().await;
    assert_eq!(theirs.ok(201)["project"]["slug"], "other");

    server.delete(&t.user, &format!("/api/v1/api_keys/{orch_id}")).await.ok(200);
    let replay = create().send().await;
    replay.err(401, "token_revoked");
    assert!(!replay.body.to_string().contains("Replayed"), "nothing of the stored answer: {}", replay.body);

    // A dispatched token, revoked by its orchestrator, the same way.
    let body = json!({"role": "implementer", "story_id": ids.story("1.1"), "expires_in_seconds": 600});
    let dispatched = server.post(&t.orch, "/api/v1/dispatches", body).await;
    let token = s(&dispatched.ok(201)["data"]["api_key"]["raw_key"]);
    let dispatch_id = s(&dispatched.body["data"]["dispatch"]["id"]);
    let contract = json!({"story_title": "Sign-up endpoint", "ac_count": 2});
    let path = format!("/api/v1/stories/{}/contract", ids.story("1.1"));
    let send = || with_key(&server, Method::POST, &path, &token, "contract-1", &contract);
    send().send().await.ok(200);
    server.delete(&t.orch, &format!("/api/v1/dispatches/{dispatch_id}")).await.ok(200);
    send().send().await.err(401, "token_revoked");
}

/// Ten copies of one request at once, as a client retrying in a hurry sends them. Without the
/// in-flight marker each copy ran: ten reviews, ten keys.
async fn ten_concurrent_requests_with_one_idempotency_key_run_once(server: Server) {
    let t = server.tenant("Racing").await;
    let ids = seed(&server, &t, "Shop").await;
    let s11 = ids.story("1.1").to_string();
    to_reported(&server, &t.agent, &s11).await;

    let path = format!("/api/v1/stories/{s11}/review-complete");
    let answers = race(&server, &path, &t.orch, json!({"summary": "fine"})).await;
    let done: Vec<&Resp> = answers.iter().filter(|r| r.status == 201).collect();
    assert!(!done.is_empty(), "one of them ran: {answers:#?}");
    for answer in &answers {
        if answer.status == 201 {
            assert_eq!(answer.body, done[0].body, "every answer is the one run's");
        } else {
            answer.err(409, "idempotency_in_progress");
        }
    }
    let reviews = story(&server, &t.orch, &s11).await["reviews"].clone();
    assert_eq!(reviews.as_array().map(Vec::len), Some(1), "one review recorded: {reviews}");

    // Minting keys: one key, and no copy of its secret for the nine others.
    let answers = race(&server, "/api/v1/api_keys", &t.user, json!({"name": "raced", "role": "agent"})).await;
    let minted = answers.iter().filter(|r| r.status == 201).count();
    assert_eq!(minted, 1, "{answers:#?}");
    for answer in answers.iter().filter(|r| r.status != 201) {
        let code = answer.code().unwrap_or_default();
        assert!(["secret_not_replayed", "idempotency_in_progress"].contains(&code), "{answer:?}");
        assert!(!answer.body.to_string().contains("lc_"), "{answer:?}");
    }
    let keys = server.get(&t.user, "/api/v1/api_keys").await;
    let raced = keys.ok(200)["api_keys"].as_array().unwrap().iter().filter(|k| k["name"] == "raced").count();
    assert_eq!(raced, 1, "{}", keys.body);
}

/// Sends ten copies of `POST path` with one Idempotency-Key at once.
async fn race(server: &Server, path: &str, key: &str, body: Value) -> Vec<Resp> {
    let copies = (0..10).map(|_| with_key(server, Method::POST, path, key, "raced-1", &body).send());
    futures_util::future::join_all(copies).await
}

/// The marker rides in the claim's own commit, so a copy may run its checks after the first
/// copy's claim is applied. It must still answer as the claim did: a client retrying a claim
/// whose answer it lost is never told that its own claim took the story from it.
async fn copies_of_one_claim_all_get_the_claim_not_a_story_taken_error(server: Server) {
    let t = server.tenant("Claim copies").await;
    let ids = seed(&server, &t, "Shop").await;
    let s11 = ids.story("1.1").to_string();
    contract(&server, &t.agent, &s11).await;

    let path = format!("/api/v1/stories/{s11}/claim");
    let answers = race(&server, &path, &t.agent, json!({})).await;
    let claimed: Vec<&Resp> = answers.iter().filter(|r| r.status == 200).collect();
    assert!(!claimed.is_empty(), "the claim ran: {answers:#?}");
    for answer in &answers {
        if answer.status == 200 {
            assert_eq!(answer.body, claimed[0].body, "every copy answers as the one claim did");
        } else {
            answer.err(409, "idempotency_in_progress");
        }
    }
    // And a copy sent after all of them replays the claim too.
    let late = with_key(&server, Method::POST, &path, &t.agent, "raced-1", &json!({})).send().await;
    assert_eq!(late.ok(200), &claimed[0].body);
    let detail = story(&server, &t.orch, &s11).await;
    assert_eq!(detail["claim_epoch"], json!(1), "claimed once: {detail}");
}

/// A lifecycle call under an Idempotency-Key writes its answer in the transaction of its
/// writes: the moment the claim, the heartbeat (its own answer shape) and the verify (202)
/// answer, the table holds exactly that status and body, and a retry replays it.
async fn a_lifecycle_answer_is_kept_with_its_writes(server: Server) {
    let t = server.tenant("Answers kept").await;
    let ids = seed(&server, &t, "Shop").await;
    let s11 = ids.story("1.1").to_string();
    contract(&server, &t.agent, &s11).await;
    let calls = [
        (&t.agent, format!("/api/v1/stories/{s11}/claim"), "claim-1", 200),
        (&t.agent, format!("/api/v1/stories/{s11}/start"), "start-1", 200),
        (&t.agent, format!("/api/v1/stories/{s11}/heartbeat"), "beat-1", 200),
        (&t.agent, format!("/api/v1/stories/{s11}/report"), "report-1", 200),
        (&t.orch, format!("/api/v1/stories/{s11}/verify"), "verify-1", 202),
    ];
    for (key, path, idem, status) in calls {
        let answer = with_key(&server, Method::POST, &path, key, idem, &json!({})).send().await;
        let body = answer.ok(status).clone();
        let table = idempotency_table(&server).await;
        let row = table.iter().find(|row| row.key == idem).expect("the answer's row");
        assert_eq!(row.status, i32::from(status), "{path}: kept as answered, not in flight: {row:?}");
        let kept: Value = serde_json::from_str(&row.body).expect("a JSON answer");
        assert_eq!(kept, body, "{path}: the row holds the very answer sent");
        let again = with_key(&server, Method::POST, &path, key, idem, &json!({})).send().await;
        assert_eq!(again.ok(status), &body, "{path}: the retry replays it");
    }
    let detail = story(&server, &t.orch, &s11).await;
    assert_eq!(detail["verified_status"], json!("verified"), "each call ran once: {detail}");
}
