//! The harness: a real `loopctl serve` child on 127.0.0.1:0 over a temp SQLite file in a
//! private sandbox (`loopctl_test_support::Sandbox`), keys from `loopctl admin init`,
//! `loopctl mcp` children driven by rmcp's client, and REST calls to read back what the tools
//! did.

use std::process::Stdio;
use std::time::Duration;

use loopctl_test_support::{Api, Proc, Sandbox, Tenant, url_after};

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt as _};
use serde_json::{Value, json};
use tokio::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_loopctl");

/// A connected MCP client.
pub type Mcp = RunningService<RoleClient, ()>;

/// Epic 1 (1.1 with two criteria, 1.2 after 1.1), epic 2 (2.1) after epic 1.
pub fn breakdown() -> Value {
    json!({
      "epics": [
        {"number": 1, "title": "Accounts", "stories": [
          {"number": "1.1", "title": "Sign-up endpoint", "acceptance_criteria": [
            {"id": "AC-1.1.1", "description": "POST /signup creates a user and returns 201"},
            {"id": "AC-1.1.2", "description": "A duplicate email returns 422"}]},
          {"number": "1.2", "title": "Login endpoint", "acceptance_criteria": [
            {"id": "AC-1.2.1", "description": "Valid credentials return a token"}]}
        ]},
        {"number": 2, "title": "Billing", "stories": [
          {"number": "2.1", "title": "Invoice list", "acceptance_criteria": [
            {"id": "AC-2.1.1", "description": "GET /invoices is paginated"}]}
        ]}
      ],
      "story_dependencies": [{"story": "1.2", "depends_on": "1.1"}],
      "epic_dependencies": [{"epic": 2, "depends_on": 1}]
    })
}

/// The MCP servers of a loop, one per role.
pub struct Roles {
    pub orch: Mcp,
    pub agent: Mcp,
    pub user: Mcp,
}

/// One server with one tenant, in a private sandbox (the working directory of every child).
pub struct World {
    pub dir: Sandbox,
    pub url: String,
    pub keys: Tenant,
    pub api: Api,
    _server: Proc,
}

impl World {
    pub async fn start() -> World {
        World::start_on("127.0.0.1:0").await
    }

    pub async fn start_on(listen: &str) -> World {
        let dir = Sandbox::new("loopctl-mcp-");
        let db = dir.path("loopctl.db").to_string_lossy().into_owned();
        let output = loopctl(&dir)
            .args(["admin", "init", "--tenant", "MCP Team", "--database-url", &db, "--format", "json"])
            .output()
            .await
            .expect("admin init runs");
        assert!(output.status.success(), "admin init: {}", String::from_utf8_lossy(&output.stderr));
        let keys = Tenant::from_json(&serde_json::from_slice(&output.stdout).expect("admin init prints JSON"));

        let mut serve = std_loopctl(&dir);
        serve.args(["serve", "--listen", listen, "--database-url", &db]);
        // `Proc` waits on a thread of its own for the line; the runtime's workers stay free.
        let (server, url) = tokio::task::spawn_blocking(move || {
            let mut server = Proc::spawn(serve, "loopctl serve");
            let line = server.wait_for("`listening on http://…`", |l| url_after(l, "listening on ").is_some());
            let url = url_after(&line, "listening on ").expect("the URL of the line waited for");
            (server, url)
        })
        .await
        .expect("the wait for the server ends");
        let url = url.replace("0.0.0.0", "127.0.0.1");
        World { dir, api: Api::new(&url), url, keys, _server: server }
    }

    pub async fn get(&self, key: &str, path: &str) -> Value {
        self.api.get(key, path).await.success().clone()
    }

    pub async fn post(&self, key: &str, path: &str, body: Value) -> Value {
        self.api.post(key, path, body).await.success().clone()
    }

    /// A new key of `role` (minted with the user key): its own agent identity.
    pub async fn new_key(&self, role: &str, name: &str) -> String {
        let answer = self.post(&self.keys.user, "/api/v1/api_keys", json!({"name": name, "role": role})).await;
        answer["api_key"]["raw_key"].as_str().expect("raw_key").to_string()
    }

    pub async fn agent_id(&self, key: &str) -> Value {
        self.get(key, "/api/v1/whoami").await["agent_id"].clone()
    }

    /// Creates a project over REST; answers its id.
    pub async fn project(&self, slug: &str) -> String {
        let answer = self.post(&self.keys.orch, "/api/v1/projects", json!({"name": slug, "slug": slug})).await;
        answer["project"]["id"].as_str().expect("project id").to_string()
    }

    /// A story as REST answers it, by number.
    pub async fn story(&self, project: &str, number: &str) -> Value {
        let by_number =
            self.get(&self.keys.orch, &format!("/api/v1/stories?project_id={project}&number={number}")).await;
        let id = by_number["story"]["id"].as_str().expect("story id").to_string();
        self.get(&self.keys.orch, &format!("/api/v1/stories/{id}")).await["story"].clone()
    }

    /// `loopctl mcp` as a child process, with only `env` (and the server URL) set.
    pub async fn mcp(&self, env: &[(&str, &str)]) -> Mcp {
        self.mcp_in(env, self.dir.root()).await
    }

    /// `mcp` started in `dir` (a checkout with its own `.loopctl.toml`).
    pub async fn mcp_in(&self, env: &[(&str, &str)], dir: &std::path::Path) -> Mcp {
        let mut command = loopctl(&self.dir);
        command.arg("mcp").current_dir(dir).env("LOOPCTL_SERVER", &self.url);
        for (key, value) in env {
            command.env(key, value);
        }
        let (transport, _stderr) =
            TokioChildProcess::builder(command).stderr(Stdio::inherit()).spawn().expect("loopctl mcp starts");
        ().serve(transport).await.expect("MCP handshake over stdio")
    }

    /// One `loopctl mcp` per role, each with only that role's key (and `env`), as a client
    /// configures them: one MCP server acts as one identity.
    pub async fn mcp_per_role(&self, env: &[(&str, &str)]) -> Roles {
        Roles {
            orch: self.mcp_as("LOOPCTL_ORCH_KEY", &self.keys.orch, env).await,
            agent: self.mcp_as("LOOPCTL_AGENT_KEY", &self.keys.agent, env).await,
            user: self.mcp_as("LOOPCTL_USER_KEY", &self.keys.user, env).await,
        }
    }

    async fn mcp_as(&self, variable: &str, key: &str, env: &[(&str, &str)]) -> Mcp {
        let mut vars = vec![(variable, key)];
        vars.extend_from_slice(env);
        self.mcp(&vars).await
    }

    /// Runs `loopctl mcp` with only `env` set, in `dir`, stdin closed, until it exits (within
    /// 30 s): for the configurations it must refuse at startup.
    pub async fn mcp_exit(&self, env: &[(&str, &str)], dir: &std::path::Path) -> std::process::Output {
        let mut command = loopctl(&self.dir);
        command.arg("mcp").current_dir(dir).stdin(Stdio::null()).kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        tokio::time::timeout(Duration::from_secs(30), command.output())
            .await
            .expect("loopctl mcp decides at startup, within 30 s")
            .expect("loopctl mcp runs")
    }

    /// `loopctl ARGS` (a CLI command) in this world's private environment; must succeed.
    pub async fn cli(&self, args: &[&str]) {
        let output = loopctl(&self.dir).args(args).output().await.expect("loopctl runs");
        assert!(output.status.success(), "loopctl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// An MCP client of the server's own `/mcp` endpoint with `key` as bearer.
    pub async fn mcp_http(&self, key: &str, query: &str) -> Mcp {
        let config = StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp{query}", self.url)).auth_header(key);
        let transport = StreamableHttpClientTransport::from_config(config);
        ().serve(transport).await.expect("MCP handshake over HTTP")
    }
}

/// The binary in `dir`'s private environment, logging only warnings.
fn std_loopctl(dir: &Sandbox) -> std::process::Command {
    let mut command = dir.command(BIN);
    command.env("LOOPCTL_LOG", "warn");
    command
}

/// `std_loopctl` for tokio (MCP transports, awaited output).
pub fn loopctl(dir: &Sandbox) -> Command {
    Command::from(std_loopctl(dir))
}

/// Calls a tool; the call itself must not fail at the protocol level.
pub async fn call(mcp: &Mcp, tool: &str, args: Value) -> CallToolResult {
    let arguments = args.as_object().cloned().unwrap_or_default();
    let params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
    mcp.call_tool(params).await.unwrap_or_else(|err| panic!("{tool}: protocol error {err}"))
}

/// The text of a result's first content block.
pub fn text(result: &CallToolResult) -> String {
    result.content.first().and_then(|block| block.as_text()).map(|t| t.text.clone()).unwrap_or_default()
}

/// A successful call's structured content.
pub async fn ok(mcp: &Mcp, tool: &str, args: Value) -> Value {
    let result = call(mcp, tool, args.clone()).await;
    assert_ne!(result.is_error, Some(true), "{tool} {args} failed: {}", text(&result));
    let value = result.structured_content.clone().unwrap_or_else(|| panic!("{tool} answers structured content"));
    assert!(value.is_object(), "{tool}: structured content is an object");
    let summary = text(&result);
    assert!(!summary.is_empty() && summary.len() < 400, "{tool}: a short summary, not the JSON again: {summary}");
    value
}

/// A failed call's `(code, text)`; the text reads `<code>: <message>`.
pub async fn fails(mcp: &Mcp, tool: &str, args: Value) -> (String, String) {
    let result = call(mcp, tool, args.clone()).await;
    assert_eq!(result.is_error, Some(true), "{tool} {args} should fail: {}", text(&result));
    let error = result.structured_content.clone().expect("errors carry structured content");
    let code = error["error"]["code"].as_str().expect("error.code").to_string();
    let message = text(&result);
    assert!(message.starts_with(&format!("{code}: ")), "{tool}: `<code>: <message>`, got {message}");
    assert!(error["error"]["message"].is_string() && error["error"]["status"].is_number());
    (code, message)
}
