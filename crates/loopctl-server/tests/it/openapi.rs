//! `/health`, `/api/v1` and the OpenAPI document.

use reqwest::Method;
use serde_json::Value;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_index() {
    let server = Server::sqlite().await;
    let resp = server.call(Method::GET, None, "/health", None).await;
    let body = resp.ok(200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["checks"]["database"], "ok");
    let resp = server.call(Method::GET, None, "/api/v1", None).await;
    assert_eq!(resp.ok(200)["name"], "loopctl");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_health() {
    let server = Server::postgres().await;
    let resp = server.call(Method::GET, None, "/health", None).await;
    assert_eq!(resp.ok(200)["status"], "ok");
    assert_eq!(resp.body["store"], server.backend());
}

async fn openapi_doc(server: &Server, path: &str) -> Value {
    let resp = server.call(Method::GET, None, path, None).await;
    let doc = resp.ok(200).clone();
    assert!(doc.is_object(), "{path} is a JSON document: {doc}");
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document() {
    let server = Server::sqlite().await;
    let doc = openapi_doc(&server, "/api/v1/openapi.json").await;
    let version = doc["openapi"].as_str().expect("an `openapi` version string");
    assert!(version.starts_with("3."), "OpenAPI 3: {version}");
    let paths = doc["paths"].as_object().expect("paths");
    for path in ["/api/v1/stories/{id}/claim", "/api/v1/stories/ready", "/api/v1/changes"] {
        assert!(paths.contains_key(path), "{path} is documented; paths: {:?}", paths.keys().collect::<Vec<_>>());
    }
    // The reference's path serves the same document.
    assert_eq!(openapi_doc(&server, "/api/v1/openapi").await, doc);
}

/// The crate documents its OpenAPI as generated from the code that serves, so every
/// route the API serves is in it (the ★ import and export included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_route() {
    let server = Server::sqlite().await;
    let doc = openapi_doc(&server, "/api/v1/openapi.json").await;
    let paths = doc["paths"].as_object().expect("paths");
    let served: &[(&str, &str)] = &[
        ("get", "/api/v1/whoami"),
        ("get", "/api/v1/tenants/me"),
        ("patch", "/api/v1/tenants/me"),
        ("post", "/api/v1/api_keys"),
        ("get", "/api/v1/api_keys"),
        ("delete", "/api/v1/api_keys/{id}"),
        ("post", "/api/v1/api_keys/{id}/rotate"),
        ("post", "/api/v1/agents/register"),
        ("get", "/api/v1/agents"),
        ("get", "/api/v1/agents/{id}"),
        ("post", "/api/v1/projects"),
        ("get", "/api/v1/projects"),
        ("get", "/api/v1/projects/{id}"),
        ("patch", "/api/v1/projects/{id}"),
        ("delete", "/api/v1/projects/{id}"),
        ("get", "/api/v1/projects/{id}/progress"),
        ("post", "/api/v1/projects/{id}/epics"),
        ("get", "/api/v1/projects/{id}/epics"),
        ("post", "/api/v1/projects/{id}/stories"),
        ("post", "/api/v1/projects/{id}/import"),
        ("get", "/api/v1/projects/{id}/export"),
        ("get", "/api/v1/projects/{id}/epic_dependencies"),
        ("get", "/api/v1/projects/{id}/dependency_graph"),
        ("get", "/api/v1/epics/{id}"),
        ("patch", "/api/v1/epics/{id}"),
        ("delete", "/api/v1/epics/{id}"),
        ("get", "/api/v1/epics/{id}/progress"),
        ("post", "/api/v1/epics/{id}/stories"),
        ("get", "/api/v1/epics/{id}/stories"),
        ("get", "/api/v1/epics/{id}/story_dependencies"),
        ("get", "/api/v1/stories"),
        ("get", "/api/v1/stories/{id}"),
        ("patch", "/api/v1/stories/{id}"),
        ("delete", "/api/v1/stories/{id}"),
        ("get", "/api/v1/stories/ready"),
        ("get", "/api/v1/stories/blocked"),
        ("post", "/api/v1/stories/claim-next"),
        ("post", "/api/v1/stories/reclaim-expired"),
        ("post", "/api/v1/story_dependencies"),
        ("delete", "/api/v1/story_dependencies/{id}"),
        ("post", "/api/v1/epic_dependencies"),
        ("delete", "/api/v1/epic_dependencies/{id}"),
        ("get", "/api/v1/changes"),
        ("get", "/api/v1/audit"),
        ("get", "/api/v1/stories/{id}/history"),
        ("get", "/api/v1/stories/{id}/artifacts"),
        ("get", "/api/v1/stories/{id}/verifications"),
        ("put", "/api/v1/orchestrator/state/{project_id}"),
        ("get", "/api/v1/orchestrator/state/{project_id}"),
        ("get", "/api/v1/orchestrator/state/{project_id}/history"),
        ("get", "/api/v1/skills"),
        ("post", "/api/v1/skills"),
        ("get", "/api/v1/skills/{name}"),
        ("post", "/api/v1/skills/{name}/versions"),
        ("get", "/api/v1/skills/{name}/versions/{version}"),
        ("get", "/api/v1/skills/{name}/stats"),
        ("post", "/api/v1/skills/{name}/results"),
    ];
    let mut missing: Vec<String> = served
        .iter()
        .filter(|(method, path)| paths.get(*path).and_then(|item| item.get(*method)).is_none())
        .map(|(method, path)| format!("{} {path}", method.to_uppercase()))
        .collect();
    for verb in [
        "contract",
        "claim",
        "start",
        "start-work",
        "heartbeat",
        "request-review",
        "report",
        "report-done",
        "unclaim",
        "force-unclaim",
        "review-complete",
        "verify",
        "reject",
        "backfill",
        "clear-escalation",
    ] {
        let path = format!("/api/v1/stories/{{id}}/{verb}");
        if paths.get(&path).and_then(|item| item.get("post")).is_none() {
            missing.push(format!("POST {path}"));
        }
    }
    assert!(missing.is_empty(), "served but not in /api/v1/openapi.json: {missing:?}");
}
