//! The tools over streamable HTTP, as a tower service the server mounts at `/mcp`.
//!
//! Stateless (no MCP sessions, JSON answers): any number of server instances can sit
//! behind one load balancer, and every request is authenticated by its own bearer key.

use std::sync::Arc;

use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use loopctl_client::Transport;

use crate::connection::Connection;
use crate::handler::{LoopctlMcp, Options};

/// The service type `http_service` builds.
pub type McpHttpService = StreamableHttpService<LoopctlMcp, NeverSessionManager>;

/// How `/mcp` is served.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub options: Options,
    /// Accept any `Host` header. Off, only loopback hosts are accepted (DNS-rebinding
    /// protection for a server on 127.0.0.1); a server listening on another address turns it
    /// on, since every request is authenticated by its bearer key anyway.
    pub any_host: bool,
    /// The largest JSON-RPC request accepted (imports are large).
    pub max_body_bytes: usize,
}

/// The MCP endpoint over `api` (the server's own router, in-process); each request gets a
/// fresh [`LoopctlMcp`] whose calls carry that request's bearer key.
pub fn http_service(api: Arc<dyn Transport>, http: HttpOptions) -> McpHttpService {
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_max_request_body_bytes(http.max_body_bytes);
    if http.any_host {
        config = config.disable_allowed_hosts();
    }
    let options = http.options;
    StreamableHttpService::new(
        move || Ok(LoopctlMcp::new(Connection::InProcess(api.clone()), options.clone())),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}
