//! The seed's loop over MCP, once through `loopctl mcp` children (stdio) and once through the
//! server's `/mcp` endpoint: import (and merge) → create_story → list_ready_stories →
//! contract → claim → start → report → review_complete by another identity → verify, the
//! reject path, backfill, custody refusals; then everything read back over REST.

use serde_json::{Value, json};

use crate::support::*;

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b";

/// The three parties of the loop: the orchestrator, the implementing agent, and a reviewer
/// that is neither.
struct Parties<'a> {
    orch: &'a Mcp,
    agent: &'a Mcp,
    reviewer: &'a Mcp,
    /// A client holding only the agent's key, named the way LOOPCTL_API_KEY prompts do.
    agent_only: &'a Mcp,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_loop_over_stdio() {
    let w = World::start().await;
    let reviewer_key = w.new_key("orchestrator", "reviewer").await;
    // One MCP server per role, each with that role's variable, as the reference's prompts
    // name them; and the agent once more through LOOPCTL_API_KEY.
    let orch = w.mcp(&[("LOOPCTL_ORCH_KEY", &w.keys.orch)]).await;
    let agent = w.mcp(&[("LOOPCTL_AGENT_KEY", &w.keys.agent)]).await;
    let reviewer = w.mcp(&[("LOOPCTL_ORCH_KEY", &reviewer_key)]).await;
    let agent_only = w.mcp(&[("LOOPCTL_API_KEY", &w.keys.agent)]).await;
    let info = orch.peer_info().expect("server info");
    let server = info.server_info.as_ref().expect("server identity");
    assert_eq!(server.name, "loopctl");
    assert_eq!(server.version, env!("CARGO_PKG_VERSION"));

    let parties = Parties { orch: &orch, agent: &agent, reviewer: &reviewer, agent_only: &agent_only };
    run_loop(&w, &reviewer_key, parties, async |key: &str| w.mcp(&[("LOOPCTL_API_KEY", key)]).await).await;
    resources_and_prompts(&orch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_loop_over_http() {
    let w = World::start().await;
    let reviewer_key = w.new_key("orchestrator", "reviewer").await;
    let orch = w.mcp_http(&w.keys.orch, "").await;
    let agent = w.mcp_http(&w.keys.agent, "").await;
    let reviewer = w.mcp_http(&reviewer_key, "").await;
    let info = orch.peer_info().expect("server info");
    assert_eq!(info.server_info.as_ref().map(|s| s.name.as_str()), Some("loopctl"));

    let parties = Parties { orch: &orch, agent: &agent, reviewer: &reviewer, agent_only: &agent };
    run_loop(&w, &reviewer_key, parties, async |key: &str| w.mcp_http(key, "").await).await;
    resources_and_prompts(&orch).await;
}

/// `connect` opens an MCP client that holds only the given key.
async fn run_loop(w: &World, reviewer_key: &str, p: Parties<'_>, connect: impl AsyncFn(&str) -> Mcp) {
    let project = w.project("shop").await;

    // Plan: import, then add to epic 1 with merge, then one more story by hand.
    let import = ok(p.orch, "import_stories", json!({"project_id": "shop", "payload": breakdown()})).await;
    assert_eq!(import["import"]["stories_created"], 3, "{import}");
    let more = json!({"epics": [{"number": 1, "title": "Accounts", "stories": [
        {"number": "1.3", "title": "Password reset", "acceptance_criteria": [{"id": "AC-1.3.1", "description": "A reset mail is sent"}]}]}]});
    ok(p.orch, "import_stories", json!({"project_id": project, "payload": more, "merge": true})).await;
    let created = ok(
        p.orch,
        "create_story",
        json!({"project_id": "shop", "epic_number": 1,
               "story": {"number": "1.4", "title": "Logout", "acceptance_criteria": ["the session ends"]}}),
    )
    .await;
    assert_eq!(created["story"]["number"], "1.4");
    let progress = ok(p.orch, "get_progress", json!({"project_id": "shop"})).await;
    assert_eq!(progress["progress"]["total_stories"], 5, "{progress}");

    // Ready: 1.1, 1.3, 1.4 in order, compact rows with ac_count and the suggested batch.
    let ready = ok(p.agent, "list_ready_stories", json!({"project_id": "shop"})).await;
    let rows = ready["data"].as_array().expect("rows").clone();
    assert_eq!(numbers(&rows), vec!["1.1", "1.3", "1.4"], "{ready}");
    assert_eq!(rows[0]["ac_count"], 2);
    assert_eq!(rows[0]["suggested"], true);
    assert!(rows[0].get("description").is_none() && rows[0].get("acceptance_criteria").is_none(), "compact rows");
    let s11 = rows[0]["id"].as_str().expect("id").to_string();

    // Contract: the wrong count is refused with the loopctl code, the right one passes.
    let (code, message) = fails(
        p.agent,
        "contract_story",
        json!({"story_id": "1.1", "project_id": "shop", "story_title": "Sign-up endpoint", "ac_count": 3}),
    )
    .await;
    assert_eq!(code, "contract_mismatch", "{message}");
    let contracted = ok(
        p.agent,
        "contract_story",
        json!({"story_id": "1.1", "project_id": "shop", "story_title": "Sign-up endpoint", "ac_count": 2}),
    )
    .await;
    assert_eq!(contracted["story"]["agent_status"], "contracted");

    let claimed = ok(p.agent, "claim_story", json!({"story_id": s11})).await;
    assert_eq!(claimed["story"]["agent_status"], "assigned");
    let started = ok(p.agent, "start_story", json!({"story_id": "1.1", "project_id": project})).await;
    assert_eq!(started["story"]["agent_status"], "implementing");
    let reported = ok(
        p.agent,
        "report_story",
        json!({"story_id": s11, "artifact_type": "commit_diff", "commit_sha": SHA, "summary": "sign-up with tests"}),
    )
    .await;
    assert_eq!(reported["story"]["agent_status"], "reported_done");

    // The implementer may not verify its own work, whatever key path it takes.
    let (code, _) = fails(p.agent_only, "verify_story", json!({"story_id": s11})).await;
    assert!(["forbidden", "self_verify_blocked"].contains(&code.as_str()), "{code}");

    // Review by a third identity, then verify by the orchestrator.
    let review = ok(
        p.reviewer,
        "review_complete",
        json!({"story_id": "1.1", "project_id": "shop", "review_type": "standard", "summary": "all criteria met",
               "findings_count": 0}),
    )
    .await;
    assert_eq!(review["review_record"]["review_type"], "standard");
    let verified = ok(p.orch, "verify_story", json!({"story_id": s11, "summary": "All ACs met"})).await;
    assert_eq!(verified["story"]["verified_status"], "verified");

    // Read back over REST: who did what.
    let story = w.story(&project, "1.1").await;
    assert_eq!(story["verified_status"], "verified");
    assert_eq!(story["assigned_agent_id"], w.agent_id(&w.keys.agent).await, "the agent key implemented it");
    assert_eq!(story["reviews"][0]["reviewer_agent_id"], w.agent_id(reviewer_key).await);
    assert_eq!(story["reviews"][0]["summary"], "all criteria met");
    assert!(story["artifacts"][0].to_string().contains(SHA), "the artifact carries the commit: {}", story["artifacts"]);
    assert_eq!(story["verifications"][0]["result"], "pass");

    // Reject path: 1.2 is ready now; round trip, then rejected back to pending.
    let ready = ok(p.agent, "list_ready_stories", json!({"project_id": "shop"})).await;
    assert!(numbers(ready["data"].as_array().expect("rows")).contains(&"1.2".to_string()), "{ready}");
    to_reported(p.agent, "1.2", "Login endpoint", 1).await;
    let rejected = ok(
        p.orch,
        "reject_story",
        json!({"story_id": "1.2", "project_id": "shop",
                                                     "reason": "no test for a wrong password"}),
    )
    .await;
    assert_eq!(rejected["story"]["agent_status"], "pending");
    assert_eq!(rejected["story"]["verified_status"], "rejected");
    let story = w.story(&project, "1.2").await;
    assert_eq!(story["iteration_count"], 1);
    assert_eq!(story["rejection_reason"], "no test for a wrong password");

    // Backfill: work done elsewhere, recorded as verified with its reason.
    let backfilled = ok(
        p.orch,
        "backfill_story",
        json!({"story_id": "1.4", "project_id": "shop", "reason": "shipped in PR 12",
                                            "pr_number": 12}),
    )
    .await;
    assert_eq!(backfilled["story"]["verified_status"], "verified");

    // Lists: filters, field selection, pages.
    let verified = ok(p.orch, "list_stories", json!({"project_id": "shop", "verified_status": "verified"})).await;
    assert_eq!(numbers(verified["data"].as_array().expect("rows")), vec!["1.1", "1.4"]);
    let page = ok(p.orch, "list_stories", json!({"project_id": "shop", "limit": 2, "fields": ["ac_count"]})).await;
    assert_eq!(page["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(page["meta"]["total"], 5);
    assert_eq!(page["meta"]["next_offset"], 2);
    assert!(page["data"][0]["ac_count"].is_number(), "fields adds a field: {page}");
    let full = ok(p.orch, "get_story", json!({"story_id": "1.1", "project_id": "shop"})).await;
    assert!(full["story"]["acceptance_criteria"].is_array());
    let some = ok(p.orch, "get_story", json!({"story_id": "1.1", "project_id": "shop", "fields": ["ac_count"]})).await;
    assert!(some["story"].get("artifacts").is_none() && some["story"]["ac_count"] == 2, "{some}");

    // Dispatch: a fresh implementer for 1.3, with a key scoped to that story, works through
    // MCP (naming its story by number) and can touch nothing else.
    let dispatched = ok(
        p.orch,
        "dispatch",
        json!({"role": "implementer", "story_id": "1.3", "project_id": "shop", "expires_in_seconds": 600}),
    )
    .await;
    let raw_key = dispatched["data"]["api_key"]["raw_key"].as_str().expect("the raw key, shown once");
    let sub_agent = connect(raw_key).await;
    to_reported(&sub_agent, "1.3", "Password reset", 1).await;
    let (code, _) = fails(&sub_agent, "get_story", json!({"story_id": s11})).await;
    assert_eq!(code, "scope_violation");
    let story = w.story(&project, "1.3").await;
    assert_eq!(story["assigned_agent_id"], dispatched["data"]["dispatch"]["agent_id"], "the dispatched identity");
    ok(p.orch, "verify_story", json!({"story_id": "1.3", "project_id": "shop", "summary": "reset works"})).await;

    let progress = ok(p.orch, "get_progress", json!({"project_id": project})).await;
    assert_eq!(progress["progress"]["stories_by_verified_status"]["verified"], 3, "{progress}");
}

/// contract → claim → start → report, as the agent.
async fn to_reported(agent: &Mcp, number: &str, title: &str, ac_count: u32) {
    let story = json!({"story_id": number, "project_id": "shop"});
    let mut contract = story.clone();
    contract["story_title"] = json!(title);
    contract["ac_count"] = json!(ac_count);
    ok(agent, "contract_story", contract).await;
    ok(agent, "claim_story", story.clone()).await;
    ok(agent, "start_story", story.clone()).await;
    let mut report = story;
    report["artifact_type"] = json!("commit_diff");
    report["commit_sha"] = json!(SHA);
    let reported = ok(agent, "report_story", report).await;
    assert_eq!(reported["story"]["agent_status"], "reported_done");
}

async fn resources_and_prompts(mcp: &Mcp) {
    let resources = mcp.list_all_resources().await.expect("resources/list");
    let uri = "loopctl://projects/shop/progress";
    assert!(resources.iter().any(|r| r.uri == uri), "{resources:?}");
    let read = mcp.read_resource(rmcp::model::ReadResourceRequestParams::new(uri)).await.expect("resources/read");
    let contents = serde_json::to_value(&read.contents[0]).expect("contents");
    let body: Value = serde_json::from_str(contents["text"].as_str().expect("text contents")).expect("JSON");
    assert_eq!(body["project"]["slug"], "shop");
    assert!(body["summary"].as_str().is_some_and(|s| s.contains("verified")), "{body}");

    let prompts = mcp.list_all_prompts().await.expect("prompts/list");
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    for name in ["loopctl:orchestrate", "loopctl:review", "loopctl:verify-artifacts"] {
        assert!(names.contains(&name), "{names:?}");
    }
    let mut arguments = serde_json::Map::new();
    arguments.insert("story".into(), json!("1.1"));
    let prompt = mcp
        .get_prompt(rmcp::model::GetPromptRequestParams::new("loopctl:review").with_arguments(arguments))
        .await
        .expect("prompts/get");
    let message = serde_json::to_value(&prompt.messages[0]).expect("message");
    let text = message["content"]["text"].as_str().expect("text");
    assert!(text.len() > 200 && text.contains("story: 1.1"), "the review skill with the story: {text}");
}

fn numbers(rows: &[Value]) -> Vec<String> {
    rows.iter().filter_map(|r| r["number"].as_str().map(str::to_string)).collect()
}
