//! Every `ErrorCode` survives the whole way, unchanged: the server's error mapping answers it
//! with its HTTP status and the error shape, the client decodes the same code, the CLI exits
//! with its class's exit code and prints it, and `loopctl mcp` turns it into an `isError`
//! result naming it. The server side is a stub router that answers every request with the
//! one refusal under test, built with the server's own `ApiError`, so each code is reached
//! without staging the situation that causes it.

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use loopctl_api::{ErrorCode, ExitClass};
use loopctl_app::AppError;
use loopctl_client::{Client, ClientError};
use loopctl_server::ApiError;
use loopctl_test_support::sandbox::Sandbox;
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;

const BIN: &str = env!("CARGO_BIN_EXE_loopctl");

/// A server that refuses everything with the code it is told.
async fn refusing_server(code: Arc<Mutex<ErrorCode>>) -> String {
    let router = axum::Router::new().fallback(move || {
        let code = *code.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        async move { ApiError::from(AppError::new(code, format!("refused with {code} on purpose"))) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

fn set(code: &Arc<Mutex<ErrorCode>>, to: ErrorCode) {
    *code.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = to;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_code_round_trips_through_http_the_client_the_cli_and_mcp() {
    let current = Arc::new(Mutex::new(ErrorCode::Internal));
    let url = refusing_server(current.clone()).await;
    let key = "lc_error_code_round_trip_test_key_000000000000";
    let sandbox = Sandbox::new("error-codes");
    // The loopctl client installs the process's TLS provider; the plain reqwest one relies on it.
    let client = Client::new(&url, Some(key.into())).expect("client");
    let http = reqwest::Client::new();

    let mut mcp_command = tokio::process::Command::from(sandbox.command(BIN));
    mcp_command.arg("mcp").env("LOOPCTL_SERVER", &url).env("LOOPCTL_API_KEY", key).env("LOOPCTL_LOG", "error");
    let (transport, _stderr) =
        TokioChildProcess::builder(mcp_command).stderr(Stdio::null()).spawn().expect("loopctl mcp");
    let mcp = ().serve(transport).await.expect("MCP handshake");

    for &code in ErrorCode::ALL {
        set(&current, code);
        let name = code.as_str();

        // HTTP: the code's status, the error shape, the status repeated in the body.
        let response = http.get(format!("{url}/api/v1/whoami")).bearer_auth(key).send().await.expect("answer");
        let status = response.status().as_u16();
        assert_eq!(status, code.http_status(), "{code:?}: HTTP status");
        let body: serde_json::Value = response.json().await.expect("JSON error body");
        assert_eq!(body["error"]["code"], name, "{code:?}: body {body}");
        assert_eq!(body["error"]["status"], status, "{code:?}: body {body}");

        // The client: the same code, typed; the exit class follows from it. A retryable code
        // is retried first (after Retry-After), then still reported as itself.
        let refused = client.whoami().await.expect_err("a refusal");
        let ClientError::Api { status: got, ref error, .. } = refused else { panic!("{code:?}: {refused:?}") };
        assert_eq!((got, error.code.as_str()), (status, name), "{code:?}: client");
        assert_eq!(refused.exit_class(), code.exit_class(), "{code:?}: exit class");

        // The CLI: exit code of the class, and the code in its JSON error.
        let output = sandbox
            .command(BIN)
            .args(["auth", "whoami", "--format", "json"])
            .env("LOOPCTL_SERVER", &url)
            .env("LOOPCTL_API_KEY", key)
            .env("LOOPCTL_LOG", "error")
            .output()
            .expect("run loopctl");
        let exit = output.status.code().expect("an exit code");
        assert_eq!(exit, i32::from(code.exit_class().exit_code()), "{code:?}: CLI exit code");
        assert_ne!(code.exit_class(), ExitClass::Unreachable, "{code:?}: the server answered");
        let printed = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
        assert!(printed.contains(&format!("\"{name}\"")), "{code:?}: CLI printed {printed}");

        // MCP: an error result (not a protocol error) that names the code.
        let params = CallToolRequestParams::new("list_projects".to_string());
        let result = mcp.call_tool(params).await.expect("a tool result, not a protocol error");
        assert_eq!(result.is_error, Some(true), "{code:?}: MCP isError");
        let structured = result.structured_content.clone().expect("errors carry structured content");
        assert_eq!(structured["error"]["code"], name, "{code:?}: MCP {structured}");
    }
    mcp.cancel().await.ok();
}
