//! The harness: a real `loopctl serve` child on 127.0.0.1:0 over a temp SQLite file, keys from
//! `loopctl admin init`, `loopctl mcp` children driven by rmcp's client, and REST helpers to
//! read back what the tools did.

use std::process::Stdio;
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt as _};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

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

pub struct Keys {
    pub user: String,
    pub orch: String,
    pub agent: String,
}

/// The MCP servers of a loop, one per role.
pub struct Roles {
    pub orch: Mcp,
    pub agent: Mcp,
    pub user: Mcp,
}

/// One server with one tenant, in a private temp dir.
pub struct World {
    pub dir: TempDir,
    pub url: String,
    pub keys: Keys,
    http: reqwest::Client,
    _server: Child,
}

impl World {
    pub async fn start() -> World {
        World::start_on("127.0.0.1:0").await
    }

    pub async fn start_on(listen: &str) -> World {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::Builder::new().prefix("loopctl-mcp-").tempdir().expect("temp dir");
        let db = dir.path().join("loopctl.db").to_string_lossy().into_owned();
        let mut init = Command::new(BIN);
        clean_env(&mut init, &dir);
        let output = init
            .args(["admin", "init", "--tenant", "MCP Team", "--database-url", &db, "--format", "json"])
            .output()
            .await
            .expect("admin init runs");
        assert!(output.status.success(), "admin init: {}", String::from_utf8_lossy(&output.stderr));
        let created: Value = serde_json::from_slice(&output.stdout).expect("admin init prints JSON");
        let key = |role: &str| created["keys"][role].as_str().expect("a key per role").to_string();
        let keys = Keys { user: key("user"), orch: key("orchestrator"), agent: key("agent") };

        let mut serve = Command::new(BIN);
        clean_env(&mut serve, &dir);
        let mut server = serve
            .args(["serve", "--listen", listen, "--database-url", &db])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("server starts");
        let stderr = server.stderr.take().expect("stderr is piped");
        let mut lines = BufReader::new(stderr).lines();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    return rest.split_whitespace().next().map(str::to_string);
                }
            }
            None
        })
        .await
        .expect("the server says where it listens within 30 s")
        .expect("the server prints `listening on http://…`");
        // Keep draining the server's log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let url = url.replace("0.0.0.0", "127.0.0.1");
        World { dir, url, keys, http: reqwest::Client::new(), _server: server }
    }

    /// A REST call: status and JSON body (`Null` when empty).
    pub async fn rest(&self, method: reqwest::Method, key: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.url)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        (status, if text.trim().is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON") })
    }

    pub async fn get(&self, key: &str, path: &str) -> Value {
        let (status, body) = self.rest(reqwest::Method::GET, key, path, None).await;
        assert!((200..300).contains(&status), "GET {path}: {status} {body}");
        body
    }

    pub async fn post(&self, key: &str, path: &str, body: Value) -> Value {
        let (status, answer) = self.rest(reqwest::Method::POST, key, path, Some(body)).await;
        assert!((200..300).contains(&status), "POST {path}: {status} {answer}");
        answer
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
        self.mcp_in(env, self.dir.path()).await
    }

    /// `mcp` started in `dir` (a checkout with its own `.loopctl.toml`).
    pub async fn mcp_in(&self, env: &[(&str, &str)], dir: &std::path::Path) -> Mcp {
        let mut command = Command::new(BIN);
        clean_env(&mut command, &self.dir);
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
        let mut command = Command::new(BIN);
        clean_env(&mut command, &self.dir);
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
        let mut command = Command::new(BIN);
        clean_env(&mut command, &self.dir);
        let output = command.args(args).output().await.expect("loopctl runs");
        assert!(output.status.success(), "loopctl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// An MCP client of the server's own `/mcp` endpoint with `key` as bearer.
    pub async fn mcp_http(&self, key: &str, query: &str) -> Mcp {
        let config = StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp{query}", self.url)).auth_header(key);
        let transport = StreamableHttpClientTransport::from_config(config);
        ().serve(transport).await.expect("MCP handshake over HTTP")
    }
}

/// Nothing from the outer environment that loopctl reads survives; HOME and XDG dirs are
/// private so no real profile is picked up.
pub fn clean_env(command: &mut Command, dir: &TempDir) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("LOOPCTL_") {
            command.env_remove(&key);
        }
    }
    let home = dir.path().join("home");
    let _ = std::fs::create_dir_all(&home);
    command
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("LOOPCTL_DATA_DIR", home.join("loopctl-data"))
        .env("LOOPCTL_LOG", "warn")
        .current_dir(dir.path());
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
