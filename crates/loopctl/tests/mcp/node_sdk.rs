//! The official TypeScript SDK's client against `loopctl mcp` over stdio and against the
//! server's `/mcp`: another MCP implementation must understand our tools and results.
//! Runs when `node` and `npm` are on PATH; the SDK is installed once into Cargo's test temp
//! dir and reused.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::*;

const CLIENT: &str = r#"
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const env = {};
for (const [k, v] of Object.entries(process.env)) {
  if (k.startsWith("LOOPCTL_") || ["HOME", "PATH", "XDG_CONFIG_HOME"].includes(k)) env[k] = v;
}
const transport = new StdioClientTransport({ command: process.env.LOOPCTL_BIN, args: ["mcp"], env, stderr: "inherit" });
const client = new Client({ name: "loopctl-node-test", version: "1.0.0" });
await client.connect(transport);
const server = client.getServerVersion();
const { tools } = await client.listTools();
const progress = await client.callTool({ name: "get_progress", arguments: { project_id: "shop" } });
const bad = await client.callTool({ name: "contract_story", arguments: { story_id: "1.1" } });
await client.close();

// The same over the server's own /mcp endpoint.
const http = new Client({ name: "loopctl-node-http", version: "1.0.0" });
const url = new URL(process.env.LOOPCTL_SERVER + "/mcp");
const headers = { Authorization: `Bearer ${process.env.LOOPCTL_ORCH_KEY}` };
await http.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers } }));
const httpTools = (await http.listTools()).tools.map((t) => t.name);
const httpProgress = await http.callTool({ name: "get_progress", arguments: { project_id: "shop" } });
await http.close();
console.log(JSON.stringify({ server, tools: tools.map((t) => t.name), progress, bad, httpTools, httpProgress }));
"#;

fn on_path(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success())
}

/// The SDK in a directory shared by test runs.
fn sdk_dir() -> Result<PathBuf, String> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mcp-node-sdk");
    if dir.join("node_modules/@modelcontextprotocol/sdk/package.json").is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("package.json"), r#"{"private": true, "type": "module"}"#).map_err(|e| e.to_string())?;
    let output = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error", "@modelcontextprotocol/sdk@^1"])
        .current_dir(&dir)
        .output()
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!("npm install failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    Ok(dir)
}

fn run_client(dir: &Path, w: &World) -> Value {
    std::fs::write(dir.join("client.mjs"), CLIENT).expect("write client.mjs");
    let output = Command::new("node")
        .arg("client.mjs")
        .current_dir(dir)
        .env("LOOPCTL_BIN", BIN)
        .env("LOOPCTL_SERVER", &w.url)
        .env("LOOPCTL_ORCH_KEY", &w.keys.orch)
        .env("HOME", w.dir.path("home"))
        .env("XDG_CONFIG_HOME", w.dir.path("config"))
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "node client: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|err| panic!("node client printed ({err}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_client_over_stdio_and_http() {
    // Never skipped: `.ci/run` installs node and npm (Debian's nodejs and npm) when missing.
    assert!(
        on_path("node") && on_path("npm"),
        "node and npm must be on PATH for the TypeScript SDK test; `.ci/run` installs them"
    );
    let dir = match sdk_dir() {
        Ok(dir) => dir,
        Err(err) => panic!("cannot install @modelcontextprotocol/sdk from npm: {err}"),
    };
    let w = World::start().await;
    w.project("shop").await;
    let orch = w.keys.orch.clone();
    let mcp = w.mcp(&[("LOOPCTL_ORCH_KEY", &orch)]).await;
    ok(&mcp, "import_stories", json!({"project_id": "shop", "payload": breakdown()})).await;

    let dir_for_node = dir.clone();
    let out = tokio::task::spawn_blocking(move || (run_client(&dir_for_node, &w), w)).await.expect("node test");
    let (out, _w) = out;
    assert_eq!(out["server"]["name"], "loopctl", "{out}");
    let tools: Vec<&str> = out["tools"].as_array().expect("tools").iter().filter_map(Value::as_str).collect();
    assert!(tools.contains(&"list_ready_stories") && tools.contains(&"verify_story"), "{tools:?}");
    assert_eq!(out["progress"]["isError"], false, "{out}");
    assert_eq!(out["progress"]["structuredContent"]["progress"]["total_stories"], 3, "{out}");
    assert!(out["progress"]["content"][0]["text"].as_str().is_some_and(|t| t.contains("0/3 verified")), "{out}");
    assert_eq!(out["bad"]["isError"], true, "{out}");
    assert_eq!(out["bad"]["structuredContent"]["error"]["code"], "validation_failed", "{out}");
    assert_eq!(out["httpTools"], out["tools"], "the same tools over HTTP");
    assert_eq!(out["httpProgress"]["structuredContent"]["progress"]["total_stories"], 3, "{out}");
}
