//! loopctl's MCP server: the reference MCP server's tool names and parameters, a `loopctl`
//! progress resource per project, and the built-in skills as prompts.
//!
//! Every tool is a thin adapter over one or two REST calls made through the one loopctl
//! client ([`Connection`]), so permissions, custody and error codes are exactly the REST
//! API's. stdio mode (`loopctl mcp`) sends over HTTP with the process's one key; the server
//! mounts the same tools at `/mcp` over its own router, with the caller's bearer key.
//! Either way one MCP session is one identity: several roles mean several MCP servers.
//!
//! What deliberately does not live here: any rule of the loop. The MCP layer resolves story
//! numbers and project slugs, trims list rows and transition answers to save the agent's
//! context, and says the API's next steps and hints in tool names (and, when a call is
//! forbidden, which role's MCP server makes it); it never decides who may do what.

// Tools fail with the client's own error type, whose size is the client's to change; an error
// is built at most once per tool call, so its bytes are not worth a wrapper of our own.

mod connection;
mod ctx;
mod handler;
mod http;
mod local_file;
mod refusal;
mod remote;
mod rows;
mod speak;
mod tools;

pub use connection::Connection;
pub use handler::{LoopctlMcp, Options, TextMode};
pub use http::{HttpOptions, McpHttpService, http_service};
/// What [`http_service`] is built over and [`Connection`] holds: the client's transport.
pub use loopctl_client::{BoxFuture, Client, Incoming, Outgoing, Transport, Unanswered};
pub use remote::{KEY_VARIABLES, RemoteConfig};
pub use tools::{Tier, tool_names};

/// Serves the tools over stdin/stdout until the client closes the connection.
///
/// # Errors
/// When the MCP handshake fails or the transport breaks.
pub async fn serve_stdio(server: LoopctlMcp) -> Result<(), String> {
    use rmcp::ServiceExt as _;
    let running = server.serve(rmcp::transport::stdio()).await.map_err(|err| format!("MCP handshake failed: {err}"))?;
    running.waiting().await.map_err(|err| format!("MCP session ended with an error: {err}"))?;
    Ok(())
}
