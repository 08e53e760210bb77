//! Mistakes get tool errors with loopctl's code and a message that says what to do; the
//! server process survives every one of them. `/mcp` refuses a missing or bad key with 401.

use serde_json::{Value, json};

use crate::support::*;

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_are_tool_errors() {
    let w = World::start().await;
    w.project("shop").await;
    let mcp = w.mcp(&[("LOOPCTL_ORCH_KEY", &w.keys.orch)]).await;
    let agent = w.mcp(&[("LOOPCTL_AGENT_KEY", &w.keys.agent)]).await;
    ok(&mcp, "import_stories", json!({"project_id": "shop", "payload": breakdown()})).await;

    // Missing and mistyped arguments name the field.
    let (code, message) = fails(&mcp, "contract_story", json!({"story_id": "1.1", "project_id": "shop"})).await;
    assert_eq!(code, "validation_failed");
    assert!(message.contains("story_title") || message.contains("ac_count"), "{message}");
    let (code, message) = fails(&mcp, "list_stories", json!({"project_id": "shop", "limit": "many"})).await;
    assert_eq!(code, "validation_failed");
    assert!(message.contains("list_stories"), "{message}");
    let (code, message) = fails(&mcp, "import_stories", json!({"project_id": "shop"})).await;
    assert_eq!(code, "validation_failed");
    assert!(message.contains("payload"), "{message}");
    let (_, message) =
        fails(&mcp, "import_stories", json!({"project_id": "shop", "payload_path": "relative/file.json"})).await;
    assert!(message.contains("inside the MCP server's working directory"), "{message}");
    let (_, message) =
        fails(&mcp, "backfill_story", json!({"story_id": "1.1", "project_id": "shop", "reason": " "})).await;
    assert!(message.contains("reason"), "{message}");

    // Unknown things are named.
    let (code, message) = fails(&mcp, "get_story", json!({"story_id": "9.9", "project_id": "shop"})).await;
    assert_eq!(code, "not_found", "{message}");
    let (code, _) = fails(&mcp, "get_progress", json!({"project_id": "no-such-project"})).await;
    assert_eq!(code, "not_found");
    let (code, message) = fails(&mcp, "no_such_tool", json!({})).await;
    assert_eq!(code, "unknown_tool");
    assert!(message.contains("no_such_tool"), "{message}");

    // State errors carry the REST code and message.
    let (code, message) = fails(&mcp, "verify_story", json!({"story_id": "1.1", "project_id": "shop"})).await;
    assert!(!code.is_empty() && code != "internal", "{message}");
    let (code, _) = fails(&agent, "claim_story", json!({"story_id": "1.1", "project_id": "shop"})).await;
    assert_eq!(code, "must_contract_first");

    // With two projects, a story number needs its project.
    w.project("web").await;
    let (_, message) = fails(&mcp, "get_story", json!({"story_id": "1.1"})).await;
    assert!(message.contains("project_id") && message.contains("shop") && message.contains("web"), "{message}");

    // payload_path reads a local file in stdio mode.
    let file = w.dir.path("more.json");
    let more = json!({"epics": [{"number": 3, "title": "Reports", "stories": [
        {"number": "3.1", "title": "Monthly report", "acceptance_criteria": [{"id": "AC-3.1.1", "description": "a PDF"}]}]}]});
    std::fs::write(&file, more.to_string()).expect("write payload");
    let import = ok(
        &mcp,
        "import_stories",
        json!({"project_id": "shop", "payload_path": file.to_string_lossy(), "merge": true}),
    )
    .await;
    assert!(import["import"].is_object(), "{import}");

    // The process is still there and answering.
    let (names, _) = (mcp.list_tools(None).await.expect("still serving").tools, ());
    assert!(!names.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_key_and_unreachable_server_are_tool_errors() {
    let w = World::start().await;
    let keyless = w.mcp(&[]).await;
    let (code, message) = fails(&keyless, "list_projects", json!({})).await;
    assert_eq!(code, "unauthorized");
    assert!(message.contains("LOOPCTL_ORCH_KEY"), "{message}");
    let bad_key = w.mcp(&[("LOOPCTL_ORCH_KEY", "lc_not_a_real_key")]).await;
    let (code, _) = fails(&bad_key, "list_projects", json!({})).await;
    assert_eq!(code, "unauthorized");
    let nowhere = w.mcp(&[("LOOPCTL_ORCH_KEY", &w.keys.orch), ("LOOPCTL_SERVER", "http://127.0.0.1:9")]).await;
    let (code, message) = fails(&nowhere, "list_projects", json!({})).await;
    assert_eq!(code, "unreachable", "{message}");
    // Still serving after all that.
    assert!(!keyless.list_tools(None).await.expect("tools/list").tools.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_endpoint_refuses_missing_or_bad_keys() {
    let w = World::start().await;
    let client = reqwest::Client::new();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let url = format!("{}/mcp", w.url);
    let post = |key: Option<&str>| {
        let mut request = client
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .json(&init);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };
    for key in [None, Some("lc_not_a_real_key")] {
        let response = post(key).await.expect("answer");
        assert_eq!(response.status().as_u16(), 401, "key {key:?}");
        let body: Value = response.json().await.expect("JSON error body");
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    }
    let response = post(Some(&w.keys.orch)).await.expect("answer");
    assert_eq!(response.status().as_u16(), 200);

    // On loopback, a foreign Host header is refused (DNS rebinding)…
    let response = client
        .post(&url)
        .header("host", "evil.example")
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(&w.keys.orch)
        .json(&init)
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 403);
    // …while a server listening on every interface serves any host name.
    let open = World::start_on("0.0.0.0:0").await;
    let response = client
        .post(format!("{}/mcp", open.url))
        .header("host", "loopctl.example.com")
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(&open.keys.orch)
        .json(&init)
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 200);
}

/// A refusal with the REST API's stable code whose message names `fix`, a tool, and no CLI
/// command.
async fn refused_naming(mcp: &Mcp, tool: &str, args: Value, code: &str, fix: &str) {
    let (got, message) = fails(mcp, tool, args).await;
    assert_eq!(got, code, "{tool}: {message}");
    assert!(message.contains(&format!("`{fix}`")), "{tool} → {code} should name `{fix}`: {message}");
    assert!(!message.contains("`loopctl"), "{tool} → {code} names a CLI command: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_the_tools_that_fix_them_and_keep_their_codes() {
    let w = World::start().await;
    w.project("shop").await;
    let r = w.mcp_per_role(&[("LOOPCTL_MCP_TOOLS", "all")]).await;
    let other_agent = w.new_key("agent", "second-agent").await;
    let other = w.mcp(&[("LOOPCTL_API_KEY", &other_agent)]).await;
    ok(&r.orch, "import_stories", json!({"project_id": "shop", "payload": breakdown()})).await;
    let s11 = json!({"story_id": "1.1", "project_id": "shop"});
    let contract_11 =
        json!({"story_id": "1.1", "project_id": "shop", "story_title": "Sign-up endpoint", "ac_count": 2});

    // Each step out of order names the tool of the step that comes first.
    refused_naming(&r.agent, "claim_story", s11.clone(), "must_contract_first", "contract_story").await;
    ok(&r.agent, "contract_story", contract_11.clone()).await;
    refused_naming(&r.agent, "start_story", s11.clone(), "must_claim_first", "claim_story").await;
    ok(&r.agent, "claim_story", s11.clone()).await;
    refused_naming(&r.agent, "report_story", s11.clone(), "invalid_transition", "start_story").await;
    refused_naming(&other, "claim_story", s11.clone(), "invalid_transition", "get_story").await;

    // 1.2 waits for 1.1: refused at contract or at claim, whichever the server checks first.
    let contract_12 = json!({"story_id": "1.2", "project_id": "shop", "story_title": "Login endpoint", "ac_count": 1});
    let s12 = json!({"story_id": "1.2", "project_id": "shop"});
    let refused_at_contract = call(&r.agent, "contract_story", contract_12.clone()).await.is_error == Some(true);
    let (tool, args) = if refused_at_contract { ("contract_story", contract_12) } else { ("claim_story", s12) };
    refused_naming(&r.agent, tool, args, "dependencies_not_met", "list_blocked_stories").await;

    // One rejection locks a story here; only a user clears it.
    let settings = json!({"settings": {"escalate_after_rejections": 1, "max_review_cycles": 1}});
    w.api.patch(&w.keys.user, "/api/v1/tenants/me", settings).await.ok(200);
    ok(&r.agent, "start_story", s11.clone()).await;
    ok(&r.agent, "report_story", json!({"story_id": "1.1", "project_id": "shop", "commit_sha": SHA})).await;
    ok(&r.orch, "reject_story", json!({"story_id": "1.1", "project_id": "shop", "reason": "no tests"})).await;
    refused_naming(&r.agent, "contract_story", contract_11.clone(), "escalation_locked", "clear_escalation").await;
    refused_naming(
        &r.agent,
        "claim_next_story",
        json!({"project_id": "shop"}),
        "nothing_ready",
        "list_blocked_stories",
    )
    .await;

    // With signed verification runs required, verify names the tool that records one.
    ok(&r.user, "clear_escalation", json!({"story_id": "1.1", "project_id": "shop", "note": "looked at it"})).await;
    let settings = json!({"settings": {"require_artifact_verification": true}});
    w.api.patch(&w.keys.user, "/api/v1/tenants/me", settings).await.ok(200);
    ok(&r.agent, "contract_story", contract_11).await;
    ok(&r.agent, "claim_story", s11.clone()).await;
    ok(&r.agent, "start_story", s11.clone()).await;
    ok(&r.agent, "report_story", json!({"story_id": "1.1", "project_id": "shop", "commit_sha": SHA})).await;
    refused_naming(&r.orch, "verify_story", s11, "acceptance_incomplete", "reject_story").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_unclaiming_a_story_needs_a_reason() {
    let w = World::start().await;
    let project = w.project("shop").await;
    let mcp = w.mcp(&[("LOOPCTL_ORCH_KEY", &w.keys.orch), ("LOOPCTL_MCP_TOOLS", "standard")]).await;
    let agent = w.mcp(&[("LOOPCTL_AGENT_KEY", &w.keys.agent), ("LOOPCTL_MCP_TOOLS", "standard")]).await;
    // The schema says so before any call.
    let tools = mcp.list_tools(None).await.expect("tools/list").tools;
    let tool = tools.iter().find(|t| t.name == "force_unclaim_story").expect("force_unclaim_story is listed");
    let required = tool.input_schema.get("required").cloned().unwrap_or_default();
    assert!(required.as_array().is_some_and(|r| r.contains(&json!("reason"))), "reason is required: {required}");

    ok(&mcp, "import_stories", json!({"project_id": "shop", "payload": breakdown()})).await;
    ok(&agent, "claim_next_story", json!({"project_id": "shop"})).await;
    for args in [
        json!({"story_id": "1.1", "project_id": "shop"}),
        json!({"story_id": "1.1", "project_id": "shop", "reason": "  "}),
    ] {
        let (code, message) = fails(&mcp, "force_unclaim_story", args).await;
        assert_eq!(code, "validation_failed");
        assert!(message.contains("reason"), "{message}");
    }
    assert_eq!(w.story(&project, "1.1").await["agent_status"], "assigned", "refused calls took nothing back");

    let taken =
        ok(&mcp, "force_unclaim_story", json!({"story_id": "1.1", "project_id": "shop", "reason": "agent crashed"}))
            .await;
    assert_eq!(taken["story"]["agent_status"], "pending");
    let history = w
        .get(&w.keys.orch, &format!("/api/v1/stories/{}/history", taken["story"]["id"].as_str().unwrap_or_default()))
        .await;
    assert!(history.to_string().contains("agent crashed"), "the reason is recorded: {history}");
}
