//! The `standard` and `all` tiers beyond the seed's loop: each tool reaches its endpoint with
//! the right body and key (checked through the answer or over REST).

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_and_all_tier_tools() {
    let w = World::start().await;
    let project = w.project("shop").await;
    // One MCP server per role; each tool goes to the one whose key it is made with.
    let r = w.mcp_per_role(&[("LOOPCTL_MCP_TOOLS", "all")]).await;
    ok(&r.orch, "import_stories", json!({"project_id": "shop", "payload": breakdown()})).await;

    let me = ok(&r.orch, "whoami", json!({})).await;
    assert_eq!(me["role"], "orchestrator");
    let tenant = ok(&r.orch, "get_tenant", json!({})).await;
    assert_eq!(tenant["tenant"]["settings"]["custody_mode"], "seed");
    let epics = ok(&r.orch, "list_epics", json!({"project_id": "shop"})).await;
    assert_eq!(epics["data"].as_array().map(Vec::len), Some(2));
    let epic1 = epics["data"][0]["id"].as_str().expect("epic id").to_string();
    let epic = ok(&r.orch, "get_epic", json!({"epic_id": epic1})).await;
    assert_eq!(epic["epic"]["stories"][0]["number"], "1.1");
    let criteria = ok(&r.orch, "get_acceptance_criteria", json!({"story_id": "1.1", "project_id": "shop"})).await;
    assert_eq!(criteria["story"]["ac_count"], 2);
    let blocked = ok(&r.orch, "list_blocked_stories", json!({"project_id": "shop"})).await;
    assert_eq!(blocked["data"][0]["number"], "1.2");
    assert_eq!(blocked["data"][0]["waits_for"][0]["number"], "1.1");

    // claim_next contracts and claims in one step; heartbeat and unclaim use the remembered epoch.
    let claimed = ok(&r.agent, "claim_next_story", json!({"project_id": "shop"})).await;
    assert_eq!(claimed["story"]["number"], "1.1");
    assert_eq!(claimed["story"]["agent_status"], "assigned");
    let beat = ok(&r.agent, "heartbeat_story", json!({"story_id": "1.1", "project_id": "shop"})).await;
    assert!(beat["lease_expires_at"].is_string(), "{beat}");
    let back = ok(&r.agent, "unclaim_story", json!({"story_id": "1.1", "project_id": "shop"})).await;
    assert_eq!(back["story"]["agent_status"], "pending");
    ok(&r.agent, "claim_next_story", json!({"project_id": "shop"})).await;
    let taken =
        ok(&r.orch, "force_unclaim_story", json!({"story_id": "1.1", "project_id": "shop", "reason": "stuck"})).await;
    assert_eq!(taken["story"]["agent_status"], "pending");

    // The change feed, compact, with a cursor to continue from.
    let changes = ok(&r.orch, "get_changes", json!({"project_id": "shop", "since": 0})).await;
    let events = changes["data"].as_array().expect("events");
    assert!(events.iter().any(|e| e["action"] == "imported"), "{changes}");
    assert!(events.iter().all(|e| e.get("old_state").is_none()), "compact events");
    let cursor = changes["next_cursor"].as_i64().expect("next_cursor");
    let later = ok(&r.orch, "get_changes", json!({"project_id": "shop", "since": cursor})).await;
    assert_eq!(later["data"].as_array().map(Vec::len), Some(0));

    // Orchestrator state: save, load, a stale version refused, history.
    let saved = ok(&r.orch, "save_state", json!({"project_id": "shop", "state": {"phase": "build"}})).await;
    let version = saved["state"]["version"].as_i64().expect("version");
    let loaded = ok(&r.orch, "load_state", json!({"project_id": project})).await;
    assert_eq!(loaded["state"]["state_data"]["phase"], "build");
    ok(&r.orch, "save_state", json!({"project_id": "shop", "state": {"phase": "review"}, "version": version})).await;
    let (code, _) =
        fails(&r.orch, "save_state", json!({"project_id": "shop", "state": {"phase": "x"}, "version": version})).await;
    assert_eq!(code, "version_conflict");
    let history = ok(&r.orch, "get_state_history", json!({"project_id": "shop"})).await;
    assert!(history["data"].as_array().is_some_and(|h| h.len() >= 2), "{history}");

    // Skills.
    let skills = ok(&r.orch, "list_skills", json!({})).await;
    assert!(skills["data"].as_array().is_some_and(|s| s.iter().any(|k| k["name"] == "loopctl:review")));
    let review = ok(&r.orch, "get_skill", json!({"name": "loopctl:review"})).await;
    assert!(review["prompt_text"].as_str().is_some_and(|t| t.len() > 200));
    ok(&r.user, "publish_skill", json!({"name": "team:review", "prompt_text": "Review carefully."})).await;
    ok(
        &r.orch,
        "record_skill_result",
        json!({"name": "team:review", "result": "pass", "story_id": "1.1",
                                           "project_id": "shop"}),
    )
    .await;
    let stats = ok(&r.orch, "get_skill_stats", json!({"name": "team:review"})).await;
    assert!(stats.to_string().contains("\"passed\":1"), "{stats}");

    // Planning by hand.
    let created = ok(&r.orch, "create_epic", json!({"project_id": "shop", "number": 3, "title": "Reports"})).await;
    let epic3 = created["epic"]["id"].as_str().expect("epic id").to_string();
    ok(&r.orch, "create_story", json!({"epic_id": epic3, "story": {"number": "3.1", "title": "Monthly"}})).await;
    let updated =
        ok(&r.orch, "update_story", json!({"story_id": "3.1", "project_id": "shop", "title": "Monthly report"})).await;
    assert_eq!(updated["story"]["title"], "Monthly report");
    let dep = ok(
        &r.orch,
        "add_story_dependency",
        json!({"story_id": "3.1", "project_id": "shop",
                                                      "depends_on_story_id": "2.1"}),
    )
    .await;
    let dep_id = dep["story_dependency"]["id"].as_str().expect("dependency id").to_string();
    let (code, _) = fails(
        &r.orch,
        "add_story_dependency",
        json!({"story_id": "2.1", "project_id": "shop",
                                                               "depends_on_story_id": "3.1"}),
    )
    .await;
    assert_eq!(code, "cycle_detected");
    ok(&r.user, "remove_dependency", json!({"dependency_id": dep_id, "kind": "story"})).await;
    let graph = ok(&r.orch, "get_dependency_graph", json!({"project_id": "shop"})).await;
    assert!(graph.is_object());
    let export = ok(&r.orch, "export_project", json!({"project_id": "shop"})).await;
    assert_eq!(export["epics"].as_array().map(Vec::len), Some(3));

    // History and audit (the audit is the user's).
    let history = ok(&r.orch, "get_story_history", json!({"story_id": "1.1", "project_id": "shop"})).await;
    assert!(history["data"].as_array().is_some_and(|h| !h.is_empty()));
    let audit = ok(&r.user, "get_audit_log", json!({"project_id": "shop", "limit": 5})).await;
    assert!(audit["data"].as_array().is_some_and(|a| !a.is_empty() && a.len() <= 5), "{audit}");

    // Tenant settings (user key), then bulk verification and verify-all.
    ok(&r.user, "update_tenant_settings", json!({"settings": {"max_concurrent_agents": 3}})).await;
    let tenant = w.get(&w.keys.orch, "/api/v1/tenants/me").await;
    assert_eq!(tenant["tenant"]["settings"]["max_concurrent_agents"], 3);
    let (code, _) = fails(&r.user, "update_tenant_settings", json!({"settings": {"no_such_setting": 1}})).await;
    assert_eq!(code, "validation_failed");
    report(&r.agent, "1.1", "Sign-up endpoint", 2).await;
    let bulk = ok(
        &r.orch,
        "bulk_mark_complete",
        json!({"project_id": "shop",
        "stories": [{"story_id": "1.1", "summary": "ok", "review_type": "standard"}]}),
    )
    .await;
    assert_eq!(bulk["results"][0]["status"], "success", "{bulk}");
    report(&r.agent, "1.2", "Login endpoint", 1).await;
    // An orchestrator cannot assert a passing run: only the runner's verifier key records one.
    let (code, _) = fails(
        &r.orch,
        "record_verification_run",
        json!({"story_id": "1.2", "project_id": "shop", "result": "pass",
        "checks": [{"name": "tests exist", "ok": true}]}),
    )
    .await;
    assert_eq!(code, "forbidden");
    let all = ok(&r.orch, "verify_all_in_epic", json!({"epic_id": epic1, "summary": "epic done"})).await;
    assert_eq!(all["verified_count"], 1, "{all}");

    // Dispatch lineage and revocation.
    let dispatched =
        ok(&r.orch, "dispatch", json!({"role": "implementer", "story_id": "2.1", "project_id": "shop"})).await;
    let dispatch_id = dispatched["data"]["dispatch"]["id"].as_str().expect("dispatch id").to_string();
    let listed = ok(&r.orch, "list_dispatches", json!({"story_id": "2.1", "project_id": "shop"})).await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1), "{listed}");
    ok(&r.orch, "revoke_dispatch", json!({"dispatch_id": dispatch_id})).await;
    let raw_key = dispatched["data"]["api_key"]["raw_key"].as_str().expect("raw key");
    let status = w.api.get(raw_key, "/api/v1/whoami").await.status;
    assert_eq!(status, 401, "a revoked dispatch key is refused");

    let agents = ok(&r.orch, "list_agents", json!({})).await;
    assert!(agents["data"].as_array().is_some_and(|a| a.len() >= 2));
    let reclaimed = ok(&r.orch, "reclaim_expired", json!({"project_id": "shop"})).await;
    assert!(reclaimed.get("reclaimed").is_some());
    let archived = ok(&r.user, "delete_project", json!({"project_id": "shop"})).await;
    assert_eq!(archived["project"]["status"], "archived", "{archived}");
}

/// contract → claim → start → report (the agent key) by number.
async fn report(mcp: &Mcp, number: &str, title: &str, ac_count: u32) {
    let story = json!({"story_id": number, "project_id": "shop"});
    let mut contract = story.clone();
    contract["story_title"] = json!(title);
    contract["ac_count"] = json!(ac_count);
    ok(mcp, "contract_story", contract).await;
    ok(mcp, "claim_story", story.clone()).await;
    ok(mcp, "start_story", story.clone()).await;
    let mut body = story;
    body["artifact_type"] = Value::from("commit_diff");
    body["commit_sha"] = Value::from("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b");
    ok(mcp, "report_story", body).await;
}
