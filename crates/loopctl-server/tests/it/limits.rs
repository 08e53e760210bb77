//! Rate limits: per key, from the tenant's setting; a refusal says when to come back.

use serde_json::json;

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
