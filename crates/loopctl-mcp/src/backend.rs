//! The one thing the MCP tools need from the outside world: "send this REST request". Two
//! backends answer it: [`crate::RemoteBackend`] (stdio mode, a loopctl HTTP client with the
//! process's one key) and the server's in-process backend (HTTP mode, the caller's own bearer
//! key against the API router), so auth, custody and errors are always exactly the REST ones.
//! Either way one MCP session acts as one identity.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

/// A boxed `Send` future, so that [`Backend`] stays dyn-compatible.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The role a call is made for. The reference MCP server picked one of several keys by it;
/// loopctl's acts as one identity (so a client cannot claim and report a story as the agent
/// and then verify it as the orchestrator), and uses the role only to say, when its key may
/// not make a call, which role's MCP server should.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyRole {
    /// Reads and anything the reference sends with its default key (the orchestrator's).
    Default,
    Orchestrator,
    /// The implementing agent: contract, claim, start, report (seed custody), unclaim.
    Agent,
    /// A human: destructive or administrative calls.
    User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// One REST request under the server root (`/api/v1/...`).
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub role: KeyRole,
    pub method: Method,
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Value>,
    /// Extra headers, e.g. `X-Claim-Epoch`.
    pub headers: Vec<(&'static str, String)>,
    /// The MCP caller's own `Authorization` header (streamable HTTP only).
    pub authorization: Option<String>,
}

impl ApiRequest {
    pub fn new(role: KeyRole, method: Method, path: impl Into<String>) -> ApiRequest {
        ApiRequest {
            role,
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            headers: Vec::new(),
            authorization: None,
        }
    }
}

/// An error answer, with loopctl's stable code (`not_found`, `self_verify_blocked`, …).
/// `status` is 0 when the request never reached the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// The error's `details` when the API sent any: the fields at fault, or a bulk call's
    /// per-story results (each with its own code).
    pub details: Option<Value>,
}

impl ApiFailure {
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> ApiFailure {
        ApiFailure { status, code: code.into(), message: message.into(), details: None }
    }

    /// A mistake in the tool's arguments, found before any request.
    pub fn invalid(message: impl Into<String>) -> ApiFailure {
        ApiFailure::new(422, "validation_failed", message)
    }

    /// Reads the error body `{"error":{"status","code","message"}}` of a non-2xx answer.
    pub fn from_body(status: u16, body: &Value) -> ApiFailure {
        let error = &body["error"];
        ApiFailure {
            status,
            code: error["code"].as_str().unwrap_or("internal").to_string(),
            message: error["message"]
                .as_str()
                .map_or_else(|| format!("the server answered HTTP {status}"), str::to_string),
            details: error.get("details").filter(|d| !d.is_null()).cloned(),
        }
    }
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Sends REST requests on behalf of the tools.
pub trait Backend: Send + Sync {
    /// The JSON answer (`Null` for 204), or the error answer.
    fn call(&self, request: ApiRequest) -> BoxFuture<'_, Result<Value, ApiFailure>>;
}

/// Percent-encodes one path segment or query value (RFC 3986 unreserved characters stay).
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// `path?k=v&…` with the values encoded.
pub fn path_with_query(path: &str, query: &[(&'static str, String)]) -> String {
    if query.is_empty() {
        return path.to_string();
    }
    let pairs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", encode_component(v))).collect();
    format!("{path}?{}", pairs.join("&"))
}
