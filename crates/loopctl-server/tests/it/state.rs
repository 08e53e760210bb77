//! Orchestrator checkpoints: versioned saves, optimistic concurrency, history, and
//! survival across a server restart.

use serde_json::json;

use crate::support::*;

both!(orchestrator_state => orchestrator_state_sqlite, orchestrator_state_postgres);

async fn orchestrator_state(server: Server) {
    let t = server.tenant("State Team").await;
    let project = create_project(&server, &t.orch, "Checkpointed").await;
    let path = format!("/api/v1/orchestrator/state/{project}");

    // Nothing saved yet.
    server.get(&t.orch, &path).await.err(404, "not_found");
    let resp = server.get(&t.orch, &format!("{path}/history")).await;
    assert_eq!(resp.ok(200)["data"], json!([]));

    // Without a version every save succeeds, one version up each time.
    let resp = server.put(&t.orch, &path, json!({"state_key": "main", "state_data": {"phase": "plan", "n": 1}})).await;
    let state = &resp.ok(200)["state"];
    assert_eq!(state["version"], 1);
    assert_eq!(state["state_key"], "main");
    assert_eq!(state["project_id"], json!(project));
    assert_eq!(state["state_data"], json!({"phase": "plan", "n": 1}));
    let resp = server.put(&t.orch, &path, json!({"state_key": "main", "state_data": {"phase": "build", "n": 2}})).await;
    assert_eq!(resp.ok(200)["state"]["version"], 2);

    // A stale version is refused and changes nothing; the current one passes.
    let resp =
        server.put(&t.orch, &path, json!({"state_key": "main", "state_data": {"lost": true}, "version": 1})).await;
    let err = resp.err(409, "version_conflict");
    assert_eq!(err["context"]["current_version"], 2);
    let resp = server.get(&t.orch, &path).await;
    assert_eq!(resp.ok(200)["state"]["version"], 2);
    assert_eq!(resp.body["state"]["state_data"], json!({"phase": "build", "n": 2}));
    let resp = server.put(&t.orch, &path, json!({"state_data": {"phase": "verify", "n": 3}, "version": 2})).await;
    assert_eq!(resp.ok(200)["state"]["version"], 3, "state_key defaults to main");

    // Another key is another checkpoint.
    let resp = server.put(&t.orch, &path, json!({"state_key": "side", "state_data": {"x": 1}})).await;
    assert_eq!(resp.ok(200)["state"]["version"], 1);
    let resp = server.get(&t.orch, &format!("{path}?state_key=side")).await;
    assert_eq!(resp.ok(200)["state"]["state_data"], json!({"x": 1}));

    // History: newest first, every version kept.
    let history = server.get(&t.orch, &format!("{path}/history")).await;
    let versions: Vec<i64> =
        history.ok(200)["data"].as_array().unwrap().iter().map(|v| v["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, vec![3, 2, 1]);
    assert_eq!(history.body["data"][2]["state_data"], json!({"phase": "plan", "n": 1}));
    assert!(history.body["data"][0]["saved_at"].is_string());
    assert!(history.body["data"][0]["saved_by"].is_string());

    // Agents do not read or write checkpoints; the project may be named by its slug.
    server.get(&t.agent, &path).await.err(403, "forbidden");
    server.put(&t.agent, &path, json!({"state_data": {}})).await.err(403, "forbidden");
    let resp = server.get(&t.orch, "/api/v1/orchestrator/state/checkpointed").await;
    assert_eq!(resp.ok(200)["state"]["version"], 3);
    // state_data must be an object; state_key may not be blank.
    server.put(&t.orch, &path, json!({"state_data": [1, 2]})).await.err(422, "validation_failed");
    server.put(&t.orch, &path, json!({"state_key": " ", "state_data": {}})).await.err(422, "validation_failed");

    // Crash recovery: a new server on the same data loads the same checkpoint.
    let server = server.restart().await;
    let resp = server.get(&t.orch, &path).await;
    let state = &resp.ok(200)["state"];
    assert_eq!(state["version"], 3);
    assert_eq!(state["state_data"], json!({"phase": "verify", "n": 3}));
    let history = server.get(&t.orch, &format!("{path}/history")).await;
    assert_eq!(history.ok(200)["data"].as_array().unwrap().len(), 3);
    let resp = server.put(&t.orch, &path, json!({"state_data": {"phase": "resumed"}, "version": 3})).await;
    assert_eq!(resp.ok(200)["state"]["version"], 4);
    let resp = server.put(&t.orch, &path, json!({"state_data": {}, "version": 3})).await;
    resp.err(409, "version_conflict");
}
