//! `Idempotency-Key`: a mutating request repeated by the same key within 24 hours gets the
//! stored answer instead of running again, so a retried report or verify is never applied
//! twice (WIRE.md, "Idempotency").

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use loopctl_app::AppError;
use loopctl_store::{IdempotentResponse, WriteOp};

use crate::{AppState, error::ApiError};

/// How long a stored answer is replayed.
pub const KEEP_FOR: Duration = Duration::hours(24);
/// Answers larger than this are not stored (they are not lifecycle answers).
const MAX_STORED_BODY: usize = 1 << 20;

pub async fn replay(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    if matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::trim).map(str::to_string);
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_string);
    let (Some(key), Some(bearer)) = (key, bearer) else {
        return next.run(request).await;
    };
    if key.is_empty() || key.len() > 255 {
        return ApiError(AppError::field("Idempotency-Key", "must be 1 to 255 characters")).into_response();
    }
    let scope = loopctl_app::keys::hash(&bearer);
    let path = request.uri().path().to_string();
    let store = state.app.store().clone();
    match store.idempotent_response(&scope, &key).await {
        Ok(Some(stored)) if stored.created_at > Utc::now() - KEEP_FOR => {
            if stored.method != method.as_str() || stored.path != path {
                return ApiError(AppError::field(
                    "Idempotency-Key",
                    "was already used for a different request; send a new key for a new request",
                ))
                .into_response();
            }
            return stored_response(&stored);
        }
        Ok(_) => {}
        Err(err) => return ApiError(err.into()).into_response(),
    }
    let response = next.run(request).await;
    // Server errors are not answers: a retry should run again.
    if response.status().is_server_error() {
        return response;
    }
    // Only small answers are kept for replay; a larger one (an export, a big import) is
    // passed through untouched and simply not replayed.
    let size = HttpBody::size_hint(response.body()).upper();
    if size.is_none_or(|len| len > MAX_STORED_BODY as u64) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_STORED_BODY).await {
        Ok(bytes) => bytes,
        Err(err) => {
            tracing::warn!(%err, "could not read an answer to keep for replay");
            return ApiError(AppError::internal()).into_response();
        }
    };
    let record = IdempotentResponse {
        scope,
        key,
        method: method.as_str().to_string(),
        path,
        status: parts.status.as_u16(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
        created_at: Utc::now(),
    };
    if let Err(err) = store.commit(vec![WriteOp::SaveIdempotentResponse(record)]).await {
        tracing::warn!(%err, "could not store an idempotent answer");
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn stored_response(stored: &IdempotentResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body.clone()).into_response();
    let headers = response.headers_mut();
    headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}
