//! Bulk verification refused for custody reaches the MCP client with the refusal's own code.
//! The attack: an orchestrator key linked to the identity that implemented the stories tries
//! to verify its own work in bulk. Every story is refused with `self_verify_blocked` — and the
//! MCP client used to see only `internal`, because the all-refused bulk answer was not in the
//! API's error shape. Over stdio and over the server's `/mcp`.

use serde_json::{Value, json};

use crate::support::*;

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b";

/// Three independent stories in epic 1, one in epic 2.
fn doc() -> Value {
    let story = |n: &str| json!({"number": n, "title": format!("Story {n}"), "acceptance_criteria": [{"id": "AC-1", "description": "works"}]});
    json!({"epics": [
        {"number": 1, "title": "Mine", "stories": [story("1.1"), story("1.2"), story("1.3")]},
        {"number": 2, "title": "Also mine", "stories": [story("2.1")]}
    ]})
}

/// contract → claim → start → report over REST with `agent`.
async fn reported_by(w: &World, agent: &str, project: &str, number: &str) {
    let st = w.story(project, number).await;
    let id = st["id"].as_str().expect("story id").to_string();
    w.post(agent, &format!("/api/v1/stories/{id}/contract"), json!({"story_title": st["title"], "ac_count": 1})).await;
    w.post(agent, &format!("/api/v1/stories/{id}/claim"), json!({})).await;
    w.post(agent, &format!("/api/v1/stories/{id}/start"), json!({})).await;
    let artifact = json!({"artifact": {"artifact_type": "commit_diff", "details": {"commit_sha": SHA}}});
    w.post(agent, &format!("/api/v1/stories/{id}/report"), artifact).await;
}

/// The structured refusal of a failed tool call.
async fn refusal(mcp: &Mcp, tool: &str, args: Value) -> Value {
    let result = call(mcp, tool, args.clone()).await;
    assert_eq!(result.is_error, Some(true), "{tool} {args} should be refused: {}", text(&result));
    assert!(text(&result).starts_with("self_verify_blocked: "), "{tool}: {}", text(&result));
    result.structured_content.expect("structured content")["error"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_implementer_verifying_its_own_stories_in_bulk_is_told_self_verify_blocked_over_mcp() {
    let w = World::start().await;
    let project = w.project("shop").await;
    w.post(&w.keys.orch, &format!("/api/v1/projects/{project}/import"), doc()).await;
    // The agent implements 1.1, 1.3 and 2.1; another agent implements 1.2.
    for number in ["1.1", "1.3", "2.1"] {
        reported_by(&w, &w.keys.agent, &project, number).await;
    }
    let other = w.new_key("agent", "someone-else").await;
    reported_by(&w, &other, &project, "1.2").await;
    // The sneaky orchestrator key carries the implementer's identity.
    let implementer = w.agent_id(&w.keys.agent).await;
    let answer = w
        .post(
            &w.keys.user,
            "/api/v1/api_keys",
            json!({"name": "sneaky", "role": "orchestrator", "agent_id": implementer}),
        )
        .await;
    let sneaky = answer["api_key"]["raw_key"].as_str().expect("raw_key").to_string();

    let stdio = w.mcp(&[("LOOPCTL_ORCH_KEY", &sneaky), ("LOOPCTL_MCP_TOOLS", "all")]).await;
    let http = w.mcp_http(&sneaky, "?tools=all").await;
    let s11 = w.story(&project, "1.1").await["id"].clone();
    for mcp in [&stdio, &http] {
        // Every story its own: the call is refused with the per-story code, each story's
        // result (and code) in the details.
        let args = json!({"project_id": "shop", "stories": [{"story_id": "1.1", "summary": "mine", "review_type": "standard"}]});
        let error = refusal(mcp, "bulk_mark_complete", args).await;
        assert_eq!(error["code"], "self_verify_blocked", "{error}");
        assert_eq!(error["status"], 422, "{error}");
        let results = error["details"]["results"].as_array().expect("per-story results in details");
        assert_eq!(results.len(), 1, "{error}");
        assert_eq!(results[0]["story_id"], s11);
        assert_eq!(
            (results[0]["status"].as_str(), results[0]["code"].as_str()),
            (Some("error"), Some("self_verify_blocked"))
        );
        assert!(error["message"].as_str().is_some_and(|m| m.contains("self_verify_blocked")), "{error}");

        // verify_all_in_epic: nothing verified, and the summary and errors say why.
        let result = call(
            mcp,
            "verify_all_in_epic",
            json!({"epic_id": w.story(&project, "2.1").await["epic_id"], "summary": "all mine"}),
        )
        .await;
        assert_ne!(result.is_error, Some(true), "{}", text(&result));
        assert!(text(&result).contains("self_verify_blocked"), "{}", text(&result));
        let answer = result.structured_content.expect("structured content");
        assert_eq!(answer["verified_count"], 0, "{answer}");
        assert_eq!(answer["errors"][0]["code"], "self_verify_blocked", "{answer}");
    }

    // Mixed: someone else's story goes through, the own one is refused with its code.
    let args = json!({"project_id": "shop", "stories": [
        {"story_id": "1.3", "summary": "mine", "review_type": "standard"},
        {"story_id": "1.2", "summary": "theirs", "review_type": "standard"}]});
    let result = call(&stdio, "bulk_mark_complete", args).await;
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    assert!(text(&result).contains("1 succeeded, 1 refused (self_verify_blocked)"), "{}", text(&result));
    let answer = result.structured_content.expect("structured content");
    let codes: Vec<(Value, Value)> = answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| (r["status"].clone(), r["code"].clone()))
        .collect();
    assert_eq!(codes, [(json!("error"), json!("self_verify_blocked")), (json!("success"), Value::Null)]);

    // Nothing of its own got verified on any path.
    for (number, verified) in [("1.1", false), ("1.2", true), ("1.3", false), ("2.1", false)] {
        let st = w.story(&project, number).await;
        assert_eq!(st["verified_status"] == "verified", verified, "{number}: {st}");
    }
}
