//! `/metrics` as Prometheus scrapes it, and `/ready` as a load balancer asks: the text
//! parses with a Prometheus parser, and its counters move with the requests the test makes
//! (the recorder is the process's, shared by the suite's servers: the test reads deltas).

use serde_json::{Value, json};

use crate::support::*;

/// The scrape, parsed: each sample's name, labels and value.
async fn scrape(server: &Server) -> Vec<prometheus_parse::Sample> {
    let text = server.http.get(format!("{}/metrics", server.base)).send().await.expect("GET /metrics");
    assert_eq!(text.status(), 200);
    let content_type = text.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let body = text.text().await.expect("body");
    let lines = body.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("the Prometheus text format").samples
}

/// The sum of a counter's samples whose labels include all of `labels`.
fn counter(samples: &[prometheus_parse::Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(n)
            | prometheus_parse::Value::Gauge(n)
            | prometheus_parse::Value::Untyped(n) => n,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_parse_and_count_requests_transitions_and_refusals_without_naming_any_id() {
    let server = Server::sqlite().await;
    let t = server.tenant("Metrics").await;
    let seeded = seed(&server, &t, "Metrics").await;
    let before = scrape(&server).await;
    for _ in 0..3 {
        server.get(&t.orch, "/api/v1/projects").await.ok(200);
    }
    claim(&server, &t.agent, seeded.story("1.1")).await;
    server
        .post(&t.agent, &format!("/api/v1/stories/{}/verify", seeded.story("1.1")), json!({}))
        .await
        .err(403, "forbidden");
    server.get(&t.orch, &format!("/api/v1/stories/{}", seeded.story("1.1"))).await.ok(200);
    let after = scrape(&server).await;

    let moved = |name: &str, labels: &[(&str, &str)]| counter(&after, name, labels) - counter(&before, name, labels);
    let projects = [("route", "/api/v1/projects"), ("method", "GET"), ("status", "200")];
    assert!(moved("loopctl_http_requests_total", &projects) >= 3.0, "three project lists counted");
    assert!(moved("loopctl_transitions_total", &[("action", "claim")]) >= 1.0, "the claim counted");
    let claims = [("route", "/api/v1/stories/:id/claim"), ("method", "POST"), ("status", "200")];
    assert!(moved("loopctl_http_requests_total", &claims) >= 1.0, "the claim's request counted");
    assert!(moved("loopctl_transitions_total", &[("action", "contract")]) >= 1.0, "the contract counted");
    assert!(moved("loopctl_refusals_total", &[("code", "forbidden")]) >= 1.0, "the refusal counted by its code");
    assert!(
        after.iter().any(|s| s.metric == "loopctl_http_request_duration_seconds_count"),
        "a latency histogram per route"
    );
    // The store's gauges, read at the scrape: the claim is in flight, not stale; the pool and
    // SQLite's writer queue are there.
    assert!(counter(&after, "loopctl_claims_in_flight", &[]) >= 1.0, "the claim is in flight");
    assert!(after.iter().any(|s| s.metric == "loopctl_claims_stale"), "stale claims counted");
    assert!(counter(&after, "loopctl_store_pool_connections", &[]) >= 1.0, "the read pool");
    assert!(after.iter().any(|s| s.metric == "loopctl_store_writer_queue"), "SQLite's writer queue");
    // Routes are templates: no story id, key or tenant in any label.
    let story = seeded.story("1.1");
    for sample in &after {
        let labels = format!("{:?}", sample.labels);
        assert!(!labels.contains(story) && !labels.contains(&t.id) && !labels.contains("lc_"), "{labels}");
    }
    let routes: std::collections::BTreeSet<&str> = after.iter().filter_map(|s| s.labels.get("route")).collect();
    assert!(routes.contains("/api/v1/stories/:id"), "the route's template: {routes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_balancer_reads_ready_from_the_store_it_would_send_requests_to() {
    let server = Server::sqlite().await;
    let ready = server.http.get(format!("{}/ready", server.base)).send().await.expect("GET /ready");
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["ready"], true);
}
