//! HTTP mapping of `AppError`, and extractors whose refusals speak the same error shape
//! (a malformed body or a bad id never turns into axum's plain-text rejections).

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use loopctl_app::{AppError, Principal};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::AppState;

/// An error on its way to the wire.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(err: AppError) -> ApiError {
        ApiError(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self.0.body())).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        if status == StatusCode::TOO_MANY_REQUESTS
            && let Some(seconds) = self.0.context.as_ref().and_then(|c| c["retry_after_seconds"].as_i64())
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
            return Err(ApiError(AppError::new(
                400,
                "invalid_json",
                "send the body as JSON with `Content-Type: application/json`",
            )));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|_| ApiError(too_large()))?;
        parse_json(&bytes).map(Body)
    }
}

/// A body that may be absent or empty (`POST /stories/:id/claim` with no body).
pub struct OptionalBody<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, &()).await.map_err(|_| ApiError(too_large()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalBody(T::default()));
        }
        parse_json(&bytes).map(OptionalBody)
    }
}

/// Parses a JSON body. A NUL character is refused up front: PostgreSQL cannot store it, and
/// no loopctl field has a use for it.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
        return Err(ApiError(AppError::validation("text fields may not contain NUL (\\u0000) characters")));
    }
    serde_json::from_slice(bytes).map_err(|err| ApiError(serde_error(&err)))
}

fn too_large() -> AppError {
    AppError::new(413, "payload_too_large", "the request body is too large (1 MiB; imports 16 MiB); send less at once")
}

fn serde_error(err: &serde_json::Error) -> AppError {
    use serde_json::error::Category;
    match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            AppError::new(400, "invalid_json", format!("the body is not valid JSON: {err}"))
        }
        Category::Data => AppError::validation(format!("the body does not have the expected fields: {err}")),
    }
}

/// Query parameters; a bad one is a validation error naming it.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state).await.map(|q| Params(q.0)).map_err(
            |rejection: QueryRejection| {
                ApiError(AppError::validation(format!("bad query parameters: {}", rejection.body_text())))
            },
        )
    }
}

/// Parses an id from the path.
pub fn id(text: &str, what: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(text).map_err(|_| {
        ApiError(AppError::field(
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
            ApiError(AppError::unauthorized(
                "missing `Authorization: Bearer <api key>`; run `loopctl auth login` or set LOOPCTL_API_KEY",
            ))
        })?;
        let who = state.app.authenticate(raw).await.map_err(ApiError)?;
        state.limiter.check(&who, &parts.method, parts.uri.path()).map_err(ApiError)?;
        Ok(Caller(who))
    }
}

/// The key of `Authorization: Bearer <key>`, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::trim).filter(|key| !key.is_empty())
}

/// `X-Claim-Epoch`: the fencing token a claimant got from its claim.
pub fn claim_epoch(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(value) = headers.get("x-claim-epoch") else {
        return Ok(None);
    };
    value.to_str().ok().and_then(|v| v.trim().parse().ok()).map(Some).ok_or_else(|| {
        ApiError(AppError::field("X-Claim-Epoch", "must be the integer claim_epoch your claim returned"))
    })
}
