//! `/mcp`: loopctl's MCP tools over streamable HTTP. Each tool call is sent through this
//! server's own API router in-process with the caller's `Authorization` header, so auth,
//! custody and errors are exactly those of the REST API.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use loopctl_mcp::{ApiFailure, ApiRequest, Backend, BoxFuture, HttpOptions, Options, Tier, path_with_query};
use serde_json::Value;
use tower::ServiceExt as _;

use crate::error::Caller;
use crate::{AppState, BODY_LIMIT, IMPORT_BODY_LIMIT};

/// The largest API answer a tool reads (an export of a big project).
const MAX_ANSWER: usize = 64 << 20;

/// Adds `/mcp` to `api`. `any_host` accepts any `Host` header (a server not on loopback);
/// otherwise only loopback names pass rmcp's DNS-rebinding check.
pub(crate) fn with_mcp(state: AppState, api: Router, any_host: bool) -> Router {
    let backend = Arc::new(InProcess { api: api.clone() });
    let tier = std::env::var("LOOPCTL_MCP_TOOLS").ok().and_then(|t| Tier::parse(&t)).unwrap_or(Tier::Core);
    let options = Options { tier, local_files: false, ..Options::default() };
    let service = loopctl_mcp::http_service(
        backend,
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

/// Calls the API router itself.
struct InProcess {
    api: Router,
}

impl Backend for InProcess {
    fn call(&self, request: ApiRequest) -> BoxFuture<'_, Result<Value, ApiFailure>> {
        let api = self.api.clone();
        Box::pin(async move {
            let http_request = build(request)?;
            let response = match api.oneshot(http_request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            decode(response).await
        })
    }
}

fn build(request: ApiRequest) -> Result<Request, ApiFailure> {
    let bad =
        |err: axum::http::Error| ApiFailure::new(400, "validation_failed", format!("cannot build the request: {err}"));
    let mut builder =
        Request::builder().method(request.method.as_str()).uri(path_with_query(&request.path, &request.query));
    if let Some(auth) = request.authorization.as_deref().and_then(|a| HeaderValue::from_str(a).ok()) {
        builder = builder.header(header::AUTHORIZATION, auth);
    }
    for (name, value) in &request.headers {
        builder = builder.header(*name, value.as_str());
    }
    let body = match request.body {
        Some(body) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Body::from(serde_json::to_vec(&body).map_err(|err| ApiFailure::invalid(err.to_string()))?)
        }
        None => Body::empty(),
    };
    builder.body(body).map_err(bad)
}

async fn decode(response: Response) -> Result<Value, ApiFailure> {
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER)
        .await
        .map_err(|err| ApiFailure::new(500, "internal", format!("cannot read the answer: {err}")))?;
    if status == StatusCode::NO_CONTENT || bytes.iter().all(u8::is_ascii_whitespace) {
        return if status.is_success() {
            Ok(Value::Null)
        } else {
            Err(ApiFailure::new(status.as_u16(), "internal", format!("HTTP {status}")))
        };
    }
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|_| ApiFailure::new(status.as_u16(), "internal", format!("HTTP {status}, not JSON")))?;
    if status.is_success() { Ok(body) } else { Err(ApiFailure::from_body(status.as_u16(), &body)) }
}
