//! `/mcp`: loopctl's MCP tools over streamable HTTP. Each tool call goes through the one
//! loopctl client over [`RouterTransport`], this server's own API router called in-process,
//! with the MCP caller's own bearer key, so auth, custody and errors are exactly those of the
//! REST API.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use loopctl_api::{ErrorBody, ErrorCode, ErrorEnvelope};
use loopctl_mcp::{BoxFuture, HttpOptions, Incoming, Options, Outgoing, Tier, Transport, Unanswered};
use tower::ServiceExt as _;

use crate::error::Caller;
use crate::{AppState, BODY_LIMIT, IMPORT_BODY_LIMIT};

/// The largest API answer a tool reads (an export of a big project).
const MAX_ANSWER: usize = 64 << 20;

/// Adds `/mcp` to `api`. `any_host` accepts any `Host` header (a server not on loopback);
/// otherwise only loopback names pass rmcp's DNS-rebinding check.
pub(crate) fn with_mcp(state: AppState, api: Router, any_host: bool) -> Router {
    let transport = Arc::new(RouterTransport { api: api.clone() });
    let tier = std::env::var("LOOPCTL_MCP_TOOLS").ok().and_then(|t| Tier::parse(&t)).unwrap_or(Tier::Core);
    let options = Options { tier, local_files: false, ..Options::default() };
    let service = loopctl_mcp::http_service(
        transport,
        HttpOptions { options, any_host, max_body_bytes: IMPORT_BODY_LIMIT + BODY_LIMIT },
    );
    // rmcp answers some refusals in plain text (415 for a wrong content type, 406, 405): they
    // leave in the API's error shape like every other refusal.
    let mcp = Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(state, require_key))
        .layer(axum::middleware::from_fn(crate::error::json_refusals));
    api.merge(mcp)
}

/// A missing or bad bearer key is refused with the API's 401 before any MCP handling.
async fn require_key(Caller(_): Caller, request: Request, next: Next) -> Response {
    next.run(request).await
}

/// The API router itself, as the client's transport.
struct RouterTransport {
    api: Router,
}

impl Transport for RouterTransport {
    fn server(&self) -> &str {
        "in-process"
    }

    fn send(&self, request: Outgoing) -> BoxFuture<'_, Result<Incoming, Unanswered>> {
        let api = self.api.clone();
        Box::pin(async move {
            let response = match api.oneshot(build(request)?).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            match axum::body::to_bytes(response.into_body(), MAX_ANSWER).await {
                Ok(body) => Ok(Incoming { status, retry_after, body: body.to_vec() }),
                Err(err) => Ok(unreadable(&err)),
            }
        })
    }
}

/// An answer too large (or broken) to read, as the refusal it is for the tool: sending the
/// request again would only get the same answer.
fn unreadable(err: &axum::Error) -> Incoming {
    let code = ErrorCode::Internal;
    let error = ErrorBody {
        status: code.http_status(),
        code,
        message: format!("cannot read the answer (at most {} MiB): {err}", MAX_ANSWER >> 20),
        context: None,
        details: None,
    };
    // Should the envelope not serialize, the client still reads an empty 500 as `internal`.
    let body = serde_json::to_vec(&ErrorEnvelope { error }).unwrap_or_default();
    Incoming { status: code.http_status(), retry_after: None, body }
}

fn build(request: Outgoing) -> Result<Request, Unanswered> {
    let mut builder = Request::builder().method(request.method).uri(request.path);
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let body = match request.body {
        Some(body) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Body::from(body)
        }
        None => Body::empty(),
    };
    builder
        .body(body)
        .map_err(|err| Unanswered { reason: format!("cannot build the request: {err}"), may_have_arrived: false })
}
