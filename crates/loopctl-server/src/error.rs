//! HTTP mapping of `AppError`, and extractors whose refusals speak the same error shape
//! (a malformed body or a bad id never turns into axum's plain-text rejections).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use loopctl_api::ErrorCode;
use loopctl_app::{AppError, Principal};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::AppState;

/// An error on its way to the wire, with the HTTP status it travels with: its code's
/// (`ErrorCode::http_status`, the one mapping), unless the refusal is about the transport
/// itself (a 415 for the wrong content type, a 405 for the wrong method, a 400 for a path
/// that is not UTF-8), which only the server's own extractors and fallbacks decide.
#[derive(Debug)]
pub struct ApiError {
    pub error: AppError,
    status: StatusCode,
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> ApiError {
        let status = StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError { error, status }
    }
}

impl ApiError {
    /// A refusal of the transport, answered with `status` rather than its code's.
    pub(crate) fn transport(status: StatusCode, error: AppError) -> ApiError {
        ApiError { error, status }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let ApiError { error, status } = self;
        metrics::counter!("loopctl_refusals_total", "code" => error.code.as_str()).increment(1);
        let mut response = (status, axum::Json(error.body(status.as_u16()))).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        if status == StatusCode::TOO_MANY_REQUESTS
            && let Some(seconds) = error.context.as_ref().and_then(|c| c["retry_after_seconds"].as_i64())
            && let Ok(value) = axum::http::HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert("retry-after", value);
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A JSON body; malformed JSON, wrong types and oversized bodies get their own codes.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
        if !content_type_json {
            return Err(ApiError::from(AppError::new(
                ErrorCode::InvalidJson,
                "send the body as JSON with `Content-Type: application/json`",
            )));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|_| ApiError::from(too_large()))?;
        parse_json(&bytes).map(Body)
    }
}

/// A body that may be absent or empty (`POST /stories/:id/claim` with no body).
pub struct OptionalBody<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, &()).await.map_err(|_| ApiError::from(too_large()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalBody(T::default()));
        }
        parse_json(&bytes).map(OptionalBody)
    }
}

/// Parses a JSON body. Syntax is judged before shape: serde reports the first type mismatch
/// it meets, so `[[[` sent for an object would read as a wrong field type, though it is not
/// JSON at all. A NUL character is refused next: PostgreSQL cannot store it, and no loopctl
/// field has a use for it.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    use serde_json::error::Category;
    let parsed = serde_json::from_slice::<T>(bytes);
    let syntax = match &parsed {
        Ok(_) => None,
        Err(err) if err.classify() == Category::Data => {
            // Not `IgnoredAny`: it skips nesting without the parser's depth limit, and a body
            // nested past it is refused as `invalid_json` whatever type it was sent for.
            serde_json::from_slice::<serde_json::Value>(bytes).err().map(|err| invalid_json(&err))
        }
        Err(err) => Some(invalid_json(err)),
    };
    if let Some(refusal) = syntax {
        return Err(ApiError::from(refusal));
    }
    if bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
        return Err(ApiError::from(AppError::validation("text fields may not contain NUL (\\u0000) characters")));
    }
    parsed.map_err(|err| {
        ApiError::from(AppError::validation(format!("the body does not have the expected fields: {err}")))
    })
}

fn too_large() -> AppError {
    AppError::new(
        ErrorCode::PayloadTooLarge,
        "the request body is too large (1 MiB; imports 16 MiB); send less at once",
    )
}

fn invalid_json(err: &serde_json::Error) -> AppError {
    let text = err.to_string();
    let message = if text.contains("recursion limit") {
        "the body nests arrays and objects more than 128 levels deep; flatten it".to_string()
    } else {
        format!("the body is not valid JSON ({text}); send one JSON value with `Content-Type: application/json`")
    };
    AppError::new(ErrorCode::InvalidJson, message)
}

/// Query parameters; a bad one is a validation error naming it.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state).await.map(|q| Params(q.0)).map_err(
            |rejection: QueryRejection| {
                ApiError::from(AppError::validation(format!("bad query parameters: {}", rejection.body_text())))
            },
        )
    }
}

/// Path parameters. A segment that does not percent-decode to UTF-8 (`/skills/%ff%fe`), or
/// does not fit the parameter, is refused in the API's error shape like every other input.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state).await.map(|p| Path(p.0)).map_err(path_rejection)
    }
}

impl<T> std::ops::Deref for Path<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

fn path_rejection(rejection: PathRejection) -> ApiError {
    use axum::extract::path::ErrorKind;
    let message = match &rejection {
        PathRejection::FailedToDeserializePathParams(err) => match err.kind() {
            ErrorKind::InvalidUtf8InPathParam { key } => format!(
                "the URL segment `{key}` is not valid UTF-8 once percent-decoded; percent-encode the UTF-8 bytes of the name or id"
            ),
            _ => format!("the URL path does not fit this endpoint: {}", err.body_text()),
        },
        other => format!("the URL path does not fit this endpoint: {}", other.body_text()),
    };
    ApiError::transport(StatusCode::BAD_REQUEST, AppError::validation(message))
}

/// Every refusal leaves the server as `{"error":{"status","code","message"}}`: a response of
/// 400 or above that is not JSON (a framework's or a library's plain-text rejection, e.g.
/// rmcp's 415 or 406 on `/mcp`) is rewritten into that shape, its text kept in the message.
pub async fn json_refusals(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if status.as_u16() < 400 {
        return response;
    }
    let content_type = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    // JSON is an API refusal already; HTML is a dashboard page that says what went wrong.
    if content_type.starts_with("application/json")
        || content_type.contains("+json")
        || content_type.starts_with("text/html")
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let mut rewritten = ApiError::transport(status, refusal(status, &text)).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewritten
}

/// The code and a next step for a plain-text refusal of `status`.
fn refusal(status: StatusCode, text: &str) -> AppError {
    let said =
        if text.is_empty() { status.canonical_reason().unwrap_or("refused").to_string() } else { text.to_string() };
    let (code, hint) = match status.as_u16() {
        401 => (ErrorCode::Unauthorized, "send `Authorization: Bearer <api key>`"),
        403 => (ErrorCode::Forbidden, "this request is not allowed here"),
        404 | 405 => (ErrorCode::NotFound, "see /api/v1/openapi.json for the API"),
        406 => (ErrorCode::ValidationFailed, "send `Accept: application/json, text/event-stream`"),
        408 => (ErrorCode::Unavailable, "the server took too long to answer; retry in a moment"),
        413 => (ErrorCode::PayloadTooLarge, "send less at once"),
        415 => (ErrorCode::InvalidJson, "send the body as JSON with `Content-Type: application/json`"),
        429 => (ErrorCode::RateLimited, "retry later"),
        503 => return AppError::new(ErrorCode::Unavailable, format!("{said}; retry in a moment")),
        500.. => return AppError::internal(),
        _ => (ErrorCode::ValidationFailed, "see /api/v1/openapi.json for what this endpoint takes"),
    };
    AppError::new(code, format!("{said}; {hint}"))
}

/// Parses an id from the path.
pub fn id(text: &str, what: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(text).map_err(|_| {
        ApiError::from(AppError::field(
            "id",
            format!("`{text}` is not a {what} id (a UUID); name stories by number with GET /api/v1/stories?project_id=…&number=2.1"),
        ))
    })
}

/// The authenticated caller.
pub struct Caller(pub Principal);

/// A caller a middleware has already authenticated and counted against the rate limits (the
/// idempotency layer does, before it replays anything), so the handler does neither again.
/// Only server code inserts request extensions; a client cannot send one.
#[derive(Clone)]
pub(crate) struct Authenticated(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(Authenticated(who)) = parts.extensions.get::<Authenticated>() {
            return Ok(Caller(who.clone()));
        }
        let raw = bearer(&parts.headers).ok_or_else(|| {
            ApiError::from(AppError::unauthorized(
                "missing `Authorization: Bearer <api key>`; run `loopctl auth login` or set LOOPCTL_API_KEY",
            ))
        })?;
        let who = state.app.authenticate(raw).await.map_err(ApiError::from)?;
        state.limiter.check(&who, &parts.method, parts.uri.path()).map_err(ApiError::from)?;
        Ok(Caller(who))
    }
}

/// The key of `Authorization: Bearer <key>`, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    loopctl_api::bearer_key(headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?)
}

/// The `X-Claim-Epoch` header, as the OpenAPI document declares it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // read by `claim_epoch`; the struct only describes it
pub struct ClaimEpochHeader {
    /// The `claim_epoch` your claim returned: a write by an earlier holder is refused (`stale_claim`).
    #[param(rename = "X-Claim-Epoch")]
    x_claim_epoch: Option<i64>,
}

/// `X-Claim-Epoch`: the fencing token a claimant got from its claim.
pub fn claim_epoch(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(value) = headers.get("x-claim-epoch") else {
        return Ok(None);
    };
    value.to_str().ok().and_then(|v| v.trim().parse().ok()).map(Some).ok_or_else(|| {
        ApiError::from(AppError::field("X-Claim-Epoch", "must be the integer claim_epoch your claim returned"))
    })
}
