//! What an agent is shown: `tools/list` of each tier (names, descriptions, input schemas),
//! listed by a real MCP client of `loopctl mcp` and checked against
//! `snapshots/tools-<tier>.json`, so that every change to it is a reviewed change to a
//! checked-in file. `UPDATE_SNAPSHOTS=1` rewrites the files.

use std::path::PathBuf;

use loopctl_test_support::snapshot::assert_snapshot;
use serde_json::{Value, json};

use crate::support::*;

/// The tier's tools sorted by name, every object's keys sorted, pretty-printed.
async fn listing(mcp: &Mcp) -> String {
    let answer = mcp.list_tools(None).await.expect("tools/list");
    let mut tools: Vec<Value> = answer
        .tools
        .iter()
        .map(|tool| json!({"name": tool.name, "description": tool.description, "inputSchema": tool.input_schema}))
        .collect();
    tools.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let mut text = serde_json::to_string_pretty(&sorted(Value::Array(tools))).expect("a listing prints as JSON");
    text.push('\n');
    text
}

/// `value` with the keys of every object in order, whatever order the map type keeps.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(key, value)| (key, sorted(value))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_list_of_every_tier_matches_its_snapshot() {
    let w = World::start().await;
    for tier in ["core", "standard", "all"] {
        let mcp = w.mcp(&[("LOOPCTL_ORCH_KEY", &w.keys.orch), ("LOOPCTL_MCP_TOOLS", tier)]).await;
        let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/mcp/snapshots/tools-{tier}.json"));
        assert_snapshot(&file, &listing(&mcp).await, "cargo test -p loopctl --test mcp tools_list_of_every_tier");
    }
}
