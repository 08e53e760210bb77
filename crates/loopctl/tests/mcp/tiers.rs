//! Tool tiers: names per tier over stdio and HTTP, and what `tools/list` costs an agent.

use loopctl_mcp::{Tier, tool_names};
use serde_json::json;

use crate::support::*;

/// The seed's loop and the tools it names, with lease renewal (leases expire on long work).
const CORE: &[&str] = &[
    "list_projects",
    "get_progress",
    "import_stories",
    "create_story",
    "list_stories",
    "list_ready_stories",
    "get_story",
    "contract_story",
    "claim_story",
    "start_story",
    "heartbeat_story",
    "report_story",
    "review_complete",
    "verify_story",
    "reject_story",
    "backfill_story",
    "dispatch",
];

/// The budget for the core tier's `tools/list` answer.
const CORE_BUDGET: usize = 16 * 1024;

async fn listed(mcp: &Mcp) -> (Vec<String>, usize) {
    let answer = mcp.list_tools(None).await.expect("tools/list");
    // The answer as it travels: one JSON-RPC response.
    let wire = json!({"jsonrpc": "2.0", "id": 1, "result": answer}).to_string();
    (answer.tools.iter().map(|t| t.name.to_string()).collect(), wire.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiers_over_stdio_and_their_size() {
    let w = World::start().await;
    let mut sizes = Vec::new();
    for tier in ["core", "standard", "all"] {
        let mcp = w.mcp(&[("LOOPCTL_ORCH_KEY", &w.keys.orch), ("LOOPCTL_MCP_TOOLS", tier)]).await;
        let (names, bytes) = listed(&mcp).await;
        let expected: Vec<String> =
            tool_names(Tier::parse(tier).expect("tier")).into_iter().map(String::from).collect();
        assert_eq!(names, expected, "{tier}");
        sizes.push((tier, names.len(), bytes));
        if tier == "core" {
            let mut sorted = names.clone();
            sorted.sort();
            let mut want: Vec<String> = CORE.iter().map(|s| (*s).to_string()).collect();
            want.sort();
            assert_eq!(sorted, want, "the core tier");
            assert!(bytes < CORE_BUDGET, "core tools/list is {bytes} bytes, over the {CORE_BUDGET} budget");
            // A tool outside the tier is refused with a message naming the tier to ask for.
            let (code, message) = fails(&mcp, "save_state", json!({"state": {}})).await;
            assert_eq!(code, "unknown_tool");
            assert!(message.contains("standard"), "{message}");
        }
    }
    for (tier, count, bytes) in &sizes {
        eprintln!("tools/list {tier}: {count} tools, {bytes} bytes of JSON");
    }
    // The reference's names for the tools it has.
    let all = tool_names(Tier::All);
    for name in ["get_tenant", "create_project", "delete_project", "request_review", "get_acceptance_criteria"] {
        assert!(all.contains(&name), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_text_mode_repeats_the_data_for_text_only_clients() {
    let w = World::start().await;
    w.project("shop").await;
    let mcp = w.mcp(&[("LOOPCTL_ORCH_KEY", &w.keys.orch), ("LOOPCTL_MCP_TEXT", "json")]).await;
    let result = call(&mcp, "list_projects", json!({})).await;
    let structured = result.structured_content.clone().expect("structured content");
    let repeated: serde_json::Value = serde_json::from_str(&text(&result)).expect("the text is the JSON");
    assert_eq!(repeated, structured);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiers_over_http() {
    let w = World::start().await;
    let (core, core_bytes) = listed(&w.mcp_http(&w.keys.orch, "").await).await;
    assert_eq!(core.len(), CORE.len());
    assert!(core_bytes < CORE_BUDGET);
    let (all, _) = listed(&w.mcp_http(&w.keys.orch, "?tools=all").await).await;
    assert_eq!(all, tool_names(Tier::All));
}
