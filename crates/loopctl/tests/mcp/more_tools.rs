//! The `standard` and `all` tiers beyond the seed's loop: each tool reaches its endpoint with
//! the right body and key (checked through the answer or over REST).

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_and_all_tier_tools() {
    let w = World::start().await;
    let project = w.project("shop").await;
    let mcp = w
        .mcp(&[
            ("LOOPCTL_ORCH_KEY", &w.keys.orch),
            ("LOOPCTL_AGENT_KEY", &w.keys.agent),
            ("LOOPCTL_USER_KEY", &w.keys.user),
            ("LOOPCTL_MCP_TOOLS", "all"),
        ])
        .await;
    ok(&mcp, "import_stories", json!({"project_id": "shop", "payload": breakdown()})).await;

    let me = ok(&mcp, "whoami", json!({})).await;
    assert_eq!(me["role"], "orchestrator");
    let tenant = ok(&mcp, "get_tenant", json!({})).await;
    assert_eq!(tenant["tenant"]["settings"]["custody_mode"], "seed");
    let epics = ok(&mcp, "list_epics", json!({"project_id": "shop"})).await;
    assert_eq!(epics["data"].as_array().map(Vec::len), Some(2));
    let epic1 = epics["data"][0]["id"].as_str().expect("epic id").to_string();
    let epic = ok(&mcp, "get_epic", json!({"epic_id": epic1})).await;
    assert_eq!(epic["epic"]["stories"][0]["number"], "1.1");
    let criteria = ok(&mcp, "get_acceptance_criteria", json!({"story_id": "1.1", "project_id": "shop"})).await;
    assert_eq!(criteria["story"]["ac_count"], 2);
    let blocked = ok(&mcp, "list_blocked_stories", json!({"project_id": "shop"})).await;
    assert_eq!(blocked["data"][0]["number"], "1.2");
    assert_eq!(blocked["data"][0]["waits_for"][0]["number"], "1.1");

    // claim_next contracts and claims in one step; heartbeat and unclaim use the remembered epoch.
    let claimed = ok(&mcp, "claim_next_story", json!({"project_id": "shop"})).await;
    assert_eq!(claimed["story"]["number"], "1.1");
    assert_eq!(claimed["story"]["agent_status"], "assigned");
    let beat = ok(&mcp, "heartbeat_story", json!({"story_id": "1.1", "project_id": "shop"})).await;
    assert!(beat["lease_expires_at"].is_string(), "{beat}");
    let back = ok(&mcp, "unclaim_story", json!({"story_id": "1.1", "project_id": "shop"})).await;
    assert_eq!(back["story"]["agent_status"], "pending");
    ok(&mcp, "claim_next_story", json!({"project_id": "shop"})).await;
    let taken =
        ok(&mcp, "force_unclaim_story", json!({"story_id": "1.1", "project_id": "shop", "reason": "stuck"})).await;
    assert_eq!(taken["story"]["agent_status"], "pending");

    // The change feed, compact, with a cursor to continue from.
    let changes = ok(&mcp, "get_changes", json!({"project_id": "shop", "since": 0})).await;
    let events = changes["data"].as_array().expect("events");
    assert!(events.iter().any(|e| e["action"] == "imported"), "{changes}");
    assert!(events.iter().all(|e| e.get("old_state").is_none()), "compact events");
    let cursor = changes["next_cursor"].as_i64().expect("next_cursor");
    let later = ok(&mcp, "get_changes", json!({"project_id": "shop", "since": cursor})).await;
    assert_eq!(later["data"].as_array().map(Vec::len), Some(0));

    // Orchestrator state: save, load, a stale version refused, history.
    let saved = ok(&mcp, "save_state", json!({"project_id": "shop", "state": {"phase": "build"}})).await;
    let version = saved["state"]["version"].as_i64().expect("version");
    let loaded = ok(&mcp, "load_state", json!({"project_id": project})).await;
    assert_eq!(loaded["state"]["state_data"]["phase"], "build");
    ok(&mcp, "save_state", json!({"project_id": "shop", "state": {"phase": "review"}, "version": version})).await;
    let (code, _) =
        fails(&mcp, "save_state", json!({"project_id": "shop", "state": {"phase": "x"}, "version": version})).await;
    assert_eq!(code, "version_conflict");
    let history = ok(&mcp, "get_state_history", json!({"project_id": "shop"})).await;
    assert!(history["data"].as_array().is_some_and(|h| h.len() >= 2), "{history}");

    // Skills.
    let skills = ok(&mcp, "list_skills", json!({})).await;
    assert!(skills["data"].as_array().is_some_and(|s| s.iter().any(|k| k["name"] == "loopctl:review")));
    let review = ok(&mcp, "get_skill", json!({"name": "loopctl:review"})).await;
    assert!(review["prompt_text"].as_str().is_some_and(|t| t.len() > 200));
    ok(&mcp, "publish_skill", json!({"name": "team:review", "prompt_text": "Review carefully."})).await;
    ok(
        &mcp,
        "record_skill_result",
        json!({"name": "team:review", "result": "pass", "story_id": "1.1",
                                           "project_id": "shop"}),
    )
    .await;
    let stats = ok(&mcp, "get_skill_stats", json!({"name": "team:review"})).await;
    assert!(stats.to_string().contains("\"passed\":1"), "{stats}");

    // Planning by hand.
    let created = ok(&mcp, "create_epic", json!({"project_id": "shop", "number": 3, "title": "Reports"})).await;
    let epic3 = created["epic"]["id"].as_str().expect("epic id").to_string();
    ok(&mcp, "create_story", json!({"epic_id": epic3, "story": {"number": "3.1", "title": "Monthly"}})).await;
    let updated =
        ok(&mcp, "update_story", json!({"story_id": "3.1", "project_id": "shop", "title": "Monthly report"})).await;
    assert_eq!(updated["story"]["title"], "Monthly report");
    let dep = ok(
        &mcp,
        "add_story_dependency",
        json!({"story_id": "3.1", "project_id": "shop",
                                                      "depends_on_story_id": "2.1"}),
    )
    .await;
    let dep_id = dep["story_dependency"]["id"].as_str().expect("dependency id").to_string();
    let (code, _) = fails(
        &mcp,
        "add_story_dependency",
        json!({"story_id": "2.1", "project_id": "shop",
                                                               "depends_on_story_id": "3.1"}),
    )
    .await;
    assert_eq!(code, "cycle_detected");
    ok(&mcp, "remove_dependency", json!({"dependency_id": dep_id, "kind": "story"})).await;
    let graph = ok(&mcp, "get_dependency_graph", json!({"project_id": "shop"})).await;
    assert!(graph.is_object());
    let export = ok(&mcp, "export_project", json!({"project_id": "shop"})).await;
    assert_eq!(export["epics"].as_array().map(Vec::len), Some(3));

    // History and audit (the audit needs the user key, which this process holds).
    let history = ok(&mcp, "get_story_history", json!({"story_id": "1.1", "project_id": "shop"})).await;
    assert!(history["data"].as_array().is_some_and(|h| !h.is_empty()));
    let audit = ok(&mcp, "get_audit_log", json!({"project_id": "shop", "limit": 5})).await;
    assert!(audit["data"].as_array().is_some_and(|a| !a.is_empty() && a.len() <= 5), "{audit}");

    // Tenant settings (user key), then bulk verification and verify-all.
    ok(&mcp, "update_tenant_settings", json!({"settings": {"max_concurrent_agents": 3}})).await;
    let tenant = w.get(&w.keys.orch, "/api/v1/tenants/me").await;
    assert_eq!(tenant["tenant"]["settings"]["max_concurrent_agents"], 3);
    let (code, _) = fails(&mcp, "update_tenant_settings", json!({"settings": {"no_such_setting": 1}})).await;
    assert_eq!(code, "validation_failed");
    report(&mcp, "1.1", "Sign-up endpoint", 2).await;
    let bulk = ok(
        &mcp,
        "bulk_mark_complete",
        json!({"project_id": "shop",
        "stories": [{"story_id": "1.1", "summary": "ok", "review_type": "standard"}]}),
    )
    .await;
    assert_eq!(bulk["results"][0]["status"], "success", "{bulk}");
    report(&mcp, "1.2", "Login endpoint", 1).await;
    // An orchestrator cannot assert a passing run: only the runner's verifier key records one.
    let (code, _) = fails(
        &mcp,
        "record_verification_run",
        json!({"story_id": "1.2", "project_id": "shop", "result": "pass",
        "checks": [{"name": "tests exist", "ok": true}]}),
    )
    .await;
    assert_eq!(code, "forbidden");
    let all = ok(&mcp, "verify_all_in_epic", json!({"epic_id": epic1, "summary": "epic done"})).await;
    assert_eq!(all["verified_count"], 1, "{all}");

    // Dispatch lineage and revocation.
    let dispatched =
        ok(&mcp, "dispatch", json!({"role": "implementer", "story_id": "2.1", "project_id": "shop"})).await;
    let dispatch_id = dispatched["data"]["dispatch"]["id"].as_str().expect("dispatch id").to_string();
    let listed = ok(&mcp, "list_dispatches", json!({"story_id": "2.1", "project_id": "shop"})).await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1), "{listed}");
    ok(&mcp, "revoke_dispatch", json!({"dispatch_id": dispatch_id})).await;
    let raw_key = dispatched["data"]["api_key"]["raw_key"].as_str().expect("raw key");
    let (status, _) = w.rest(reqwest::Method::GET, raw_key, "/api/v1/whoami", None).await;
    assert_eq!(status, 401, "a revoked dispatch key is refused");

    let agents = ok(&mcp, "list_agents", json!({})).await;
    assert!(agents["data"].as_array().is_some_and(|a| a.len() >= 2));
    let reclaimed = ok(&mcp, "reclaim_expired", json!({"project_id": "shop"})).await;
    assert!(reclaimed.get("reclaimed").is_some());
    let archived = ok(&mcp, "delete_project", json!({"project_id": "shop"})).await;
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
