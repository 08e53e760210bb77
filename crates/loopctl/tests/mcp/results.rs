//! What a tool result costs and says: transition results stay small however long a story's
//! criteria are, and their `next_actions` are tool calls an agent can make as they stand.

use serde_json::{Value, json};

use crate::support::*;

/// A transition result's budget, as JSON, for a story of ten 200-character criteria.
const TRANSITION_BUDGET: usize = 1024;

/// A word in every criterion text and nowhere else, to see that none is repeated.
const CRITERION_MARK: &str = "zebracrossing";

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b";

/// Epic 1 with four stories (1.1–1.4, no dependencies), each with ten criteria of exactly
/// 200 characters.
fn long_criteria() -> Value {
    let story = |n: u32| {
        let criteria: Vec<Value> = (1..=10)
            .map(|i| {
                let mut text = format!("Story 1.{n}, criterion {i} ({CRITERION_MARK}): ");
                while text.len() < 200 {
                    text.push_str("the endpoint answers within the budget and logs the request. ");
                }
                text.truncate(200);
                json!({"id": format!("AC-1.{n}.{i}"), "description": text})
            })
            .collect();
        json!({"number": format!("1.{n}"), "title": format!("Long story {n}"), "acceptance_criteria": criteria})
    };
    json!({"epics": [{"number": 1, "title": "Long criteria", "stories": (1..=4).map(story).collect::<Vec<_>>()}]})
}

/// A successful call whose result is under the budget and repeats no criterion text.
async fn small(mcp: &Mcp, tool: &str, args: Value) -> Value {
    let value = ok(mcp, tool, args).await;
    let json = value.to_string();
    assert!(json.len() < TRANSITION_BUDGET, "{tool} answers {} bytes: {json}", json.len());
    assert!(!json.contains(CRITERION_MARK), "{tool} repeats criterion texts: {json}");
    value
}

fn story(number: &str) -> Value {
    json!({"story_id": number, "project_id": "long"})
}

fn with(mut args: Value, extra: Value) -> Value {
    if let (Some(args), Some(extra)) = (args.as_object_mut(), extra.as_object()) {
        args.extend(extra.clone());
    }
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transition_results_stay_under_a_kilobyte_for_a_story_with_ten_long_criteria() {
    let w = World::start().await;
    w.project("long").await;
    let reviewer_key = w.new_key("orchestrator", "reviewer").await;
    let mcp = w.mcp(&[("LOOPCTL_ORCH_KEY", &w.keys.orch), ("LOOPCTL_MCP_TOOLS", "standard")]).await;
    let agent = w.mcp(&[("LOOPCTL_AGENT_KEY", &w.keys.agent), ("LOOPCTL_MCP_TOOLS", "standard")]).await;
    let reviewer = w.mcp(&[("LOOPCTL_ORCH_KEY", &reviewer_key)]).await;
    ok(&mcp, "import_stories", json!({"project_id": "long", "payload": long_criteria()})).await;
    let contract = |number: &str, title: &str| with(story(number), json!({"story_title": title, "ac_count": 10}));

    // 1.1 through the whole loop: each step answers the compact story.
    let contracted = small(&agent, "contract_story", contract("1.1", "Long story 1")).await;
    let ids = contracted["story"]["ac_ids"].as_array().expect("contract answers the criteria ids");
    assert_eq!(ids.len(), 10);
    assert_eq!(ids[9], "AC-1.1.10");
    assert_eq!(contracted["story"]["ac_count"], 10);
    let claimed = small(&agent, "claim_story", story("1.1")).await;
    assert!(claimed["story"]["claim_epoch"].as_i64().is_some_and(|e| e >= 1), "{claimed}");
    assert!(claimed["story"]["lease_expires_at"].is_string(), "{claimed}");
    let beat = small(&agent, "heartbeat_story", story("1.1")).await;
    assert!(beat["lease_expires_at"].is_string(), "{beat}");
    small(&agent, "start_story", story("1.1")).await;
    small(&agent, "report_story", with(story("1.1"), json!({"artifact_type": "commit_diff", "commit_sha": SHA}))).await;
    let review = small(
        &reviewer,
        "review_complete",
        with(story("1.1"), json!({"summary": "every criterion has its test", "findings_count": 0})),
    )
    .await;
    assert_eq!(review["review_record"]["review_type"], "standard");
    let verified = small(&mcp, "verify_story", with(story("1.1"), json!({"summary": "all met"}))).await;
    assert_eq!(verified["story"]["verified_status"], "verified");

    // 1.2: given back, taken with claim_next, taken back by the orchestrator, then rejected.
    small(&agent, "contract_story", contract("1.2", "Long story 2")).await;
    small(&agent, "claim_story", story("1.2")).await;
    small(&agent, "unclaim_story", story("1.2")).await;
    let next = small(&agent, "claim_next_story", json!({"project_id": "long"})).await;
    assert_eq!(next["story"]["number"], "1.2");
    assert_eq!(next["story"]["ac_ids"].as_array().map(Vec::len), Some(10));
    small(&mcp, "force_unclaim_story", with(story("1.2"), json!({"reason": "the agent went quiet"}))).await;
    small(&agent, "contract_story", contract("1.2", "Long story 2")).await;
    small(&agent, "claim_story", story("1.2")).await;
    small(&agent, "start_story", story("1.2")).await;
    small(&agent, "report_story", with(story("1.2"), json!({"artifact_type": "commit_diff", "commit_sha": SHA}))).await;
    let rejected = small(&mcp, "reject_story", with(story("1.2"), json!({"reason": "AC-1.2.3 has no test"}))).await;
    assert_eq!(rejected["story"]["verified_status"], "rejected");

    // 1.3: work done elsewhere.
    small(&mcp, "backfill_story", with(story("1.3"), json!({"reason": "shipped in PR 7"}))).await;

    // get_story still answers everything.
    let full = ok(&mcp, "get_story", story("1.1")).await;
    let criteria = full["story"]["acceptance_criteria"].as_array().expect("criteria");
    assert_eq!(criteria.len(), 10);
    assert!(criteria.iter().all(|c| c.to_string().contains(CRITERION_MARK)), "{criteria:?}");
}

/// Follows `next_actions[0]` from `result` with exactly the arguments it gives, until there is
/// none or the next tool is `stop_before`; answers the tools called and the last result.
async fn follow(mcp: &Mcp, mut result: Value, stop_before: Option<&str>) -> (Vec<String>, Value) {
    let mut called = Vec::new();
    // The loop has at most four steps an implementer takes; more would be a cycle.
    for _ in 0..5 {
        let next = result["next_actions"][0].clone();
        let Some(tool) = next["tool"].as_str().map(str::to_string) else { break };
        if stop_before == Some(tool.as_str()) {
            break;
        }
        assert_eq!(next.as_object().map(|o| o.len()), Some(2), "only tool and arguments: {next}");
        result = ok(mcp, &tool, next["arguments"].clone()).await;
        called.push(tool);
    }
    (called, result)
}

/// No REST vocabulary in the next steps.
fn speaks_mcp(result: &Value) {
    let next = result["next_actions"].to_string();
    assert!(!next.contains("/api/v1") && !next.contains("\"method\"") && !next.contains("\"path\""), "{next}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_following_next_actions_walk_the_loop_with_tools_alone() {
    let w = World::start().await;
    w.project("shop").await;
    let mcp = w.mcp(&[("LOOPCTL_ORCH_KEY", &w.keys.orch)]).await;
    let agent = w.mcp(&[("LOOPCTL_AGENT_KEY", &w.keys.agent)]).await;
    let orch_http = w.mcp_http(&w.keys.orch, "").await;
    ok(&mcp, "import_stories", json!({"project_id": "shop", "payload": breakdown()})).await;

    // The summary line and the structured next step name the tool, with the story's id.
    let args = json!({"story_id": "1.1", "project_id": "shop", "story_title": "Sign-up endpoint", "ac_count": 2});
    let result = call(&agent, "contract_story", args).await;
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    assert!(text(&result).ends_with("contracted, unverified; next: claim_story"), "{}", text(&result));
    let contracted = result.structured_content.clone().expect("structured content");
    let id = contracted["story"]["id"].as_str().expect("story id").to_string();
    assert_eq!(contracted["next_actions"], json!([{"tool": "claim_story", "arguments": {"story_id": id}}]));

    // The implementer gets from contracted to reported_done by doing what each result says.
    let (called, reported) = follow(&agent, contracted, None).await;
    assert_eq!(called, ["claim_story", "start_story", "report_story"]);
    assert_eq!(reported["story"]["agent_status"], "reported_done");
    assert_eq!(reported["next_actions"], json!([]), "what follows is not the implementer's: {reported}");

    // Rejected, the story is pending again; the orchestrator's result says how to contract it,
    // and an implementer doing exactly that gets back to work.
    let rejected = ok(&mcp, "reject_story", json!({"story_id": id, "reason": "no duplicate-email test"})).await;
    speaks_mcp(&rejected);
    assert_eq!(
        rejected["next_actions"],
        json!([{"tool": "contract_story", "arguments": {"story_id": id, "story_title": "Sign-up endpoint", "ac_count": 2}}])
    );
    let (called, started) = follow(&agent, rejected, Some("report_story")).await;
    assert_eq!(called, ["contract_story", "claim_story", "start_story"]);
    assert_eq!(
        started["next_actions"][0],
        json!({"tool": "report_story", "arguments": {"story_id": id, "artifact_type": "commit_diff"}})
    );

    // The orchestrator reports on the implementer's behalf (the seed's flow): its next steps
    // are the verdicts, and verify_story with those arguments verifies.
    let reported = ok(&orch_http, "report_story", json!({"story_id": id, "commit_sha": SHA})).await;
    speaks_mcp(&reported);
    let tools: Vec<&str> =
        reported["next_actions"].as_array().expect("next_actions").iter().filter_map(|a| a["tool"].as_str()).collect();
    assert_eq!(tools, ["verify_story", "reject_story"]);
    assert_eq!(reported["next_actions"][1]["arguments"]["story_id"], id.as_str());
    assert!(reported["next_actions"][1]["arguments"]["reason"].is_string(), "{reported}");
    let verify = reported["next_actions"][0]["arguments"].clone();
    let verified = ok(&orch_http, "verify_story", verify).await;
    assert_eq!(verified["story"]["verified_status"], "verified");
}
