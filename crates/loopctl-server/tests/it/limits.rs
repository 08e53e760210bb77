//! Rate limits: per key and per role, from the tenant's setting; a refusal names the budget
//! and says when to come back.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

async fn a_key_over_its_rate_limit_is_told_to_wait(server: Server) {
    let t = server.tenant("Busy").await;
    set_settings(&server, &t.user, json!({"rate_limit_requests_per_minute": 5})).await;
    // At most two one-minute windows can pass during this loop, so 11 requests must meet it.
    let mut limited = None;
    for _ in 0..11 {
        let resp = server.get(&t.agent, "/api/v1/projects").await;
        if resp.status == 429 {
            limited = Some(resp);
            break;
        }
        resp.ok(200);
    }
    let resp = limited.expect("the 6th request in a minute is refused");
    let error = resp.err(429, "rate_limited");
    assert!(error["message"].as_str().unwrap().contains("5 requests a minute"));
    // The refusal carries Retry-After (the window is still full for this key).
    let raw = server.http.get(format!("{}/api/v1/projects", server.base)).bearer_auth(&t.agent).send().await.unwrap();
    if raw.status() == 429 {
        let retry: i64 = raw.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry));
    }
    // Another key of the tenant is counted on its own (the tenant allows 3× the key limit).
    server.get(&t.orch, "/api/v1/projects").await.ok(200);
}

both!(a_key_over_its_rate_limit_is_told_to_wait => rate_limit_sqlite, rate_limit_postgres);

/// Waits, if need be, until at least `needed` seconds are left of the current minute, so a
/// scenario's requests all fall into one window of the limiter.
async fn fresh_window(needed: i64) {
    let left = 60 - chrono::Utc::now().timestamp() % 60;
    if left < needed {
        tokio::time::sleep(Duration::from_secs(u64::try_from(left).unwrap() + 1)).await;
    }
}

/// GETs with `key` until one is refused; answers the refusal (`context.budget` names it).
async fn until_refused(server: &Server, key: &str, most: usize) -> Value {
    for _ in 0..most {
        let resp = server.get(key, "/api/v1/projects").await;
        if resp.status == 429 {
            let error = resp.err(429, "rate_limited").clone();
            return error;
        }
        resp.ok(200);
    }
    panic!("{most} requests and none was refused");
}

/// The attack: a tenant's agents (three keys, each at its own limit) spend the agent budget.
/// A fourth agent key is refused by that shared budget; the orchestrator and the user are not,
/// and the user, even past its own key's limit, raises the limit.
async fn agents_at_their_limit_lock_out_neither_orchestrator_nor_user(server: Server) {
    let t = server.tenant("Fleet").await;
    let (agent2, _, _) = new_key(&server, &t.user, "agent", "agent-2").await;
    let (agent3, _, _) = new_key(&server, &t.user, "agent", "agent-3").await;
    let (agent4, _, _) = new_key(&server, &t.user, "agent", "agent-4").await;
    const PER_KEY: usize = 4;
    set_settings(&server, &t.user, json!({"rate_limit_requests_per_minute": PER_KEY})).await;
    fresh_window(30).await;

    for agent in [&t.agent, &agent2, &agent3] {
        for _ in 0..PER_KEY {
            server.get(agent, "/api/v1/projects").await.ok(200);
        }
        let refusal = until_refused(&server, agent, 1).await;
        assert_eq!(refusal["context"]["budget"], "key", "{refusal}");
    }
    // The agents' share is used up: a fresh agent key is refused at once, naming that budget.
    let raw = server.http.get(format!("{}/api/v1/projects", server.base)).bearer_auth(&agent4).send().await.unwrap();
    assert_eq!(raw.status().as_u16(), 429);
    let retry: i64 = raw.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After: {retry}");
    let body: Value = raw.json().await.unwrap();
    assert_eq!(body["error"]["context"]["budget"], "tenant agents", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("agent budget"), "{body}");

    // The orchestrator and the user have budgets of their own.
    server.get(&t.orch, "/api/v1/projects").await.ok(200);
    server.get(&t.user, "/api/v1/tenants/me").await.ok(200);
    // Even past its own key's limit, the user can still change the settings that lift it.
    let refusal = until_refused(&server, &t.user, 4 * PER_KEY).await;
    assert_eq!(refusal["context"]["budget"], "key", "{refusal}");
    for _ in 0..3 {
        set_settings(&server, &t.user, json!({"rate_limit_requests_per_minute": 1000})).await;
    }
    server.get(&agent4, "/api/v1/projects").await.ok(200);
    server.get(&t.agent, "/api/v1/projects").await.ok(200);
}

both!(
    agents_at_their_limit_lock_out_neither_orchestrator_nor_user => agents_at_their_limit_lock_out_neither_orchestrator_nor_user_sqlite,
    agents_at_their_limit_lock_out_neither_orchestrator_nor_user_postgres
);
