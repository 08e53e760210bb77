//! `Idempotency-Key`: a mutating request repeated by the same key within 24 hours gets the
//! stored answer instead of running again, so a retried report or verify is never applied
//! twice (WIRE.md, "Idempotency").
//!
//! Three rules keep this from becoming a way around authentication or a store of secrets:
//!
//! 1. **Authenticate first.** The bearer key is resolved (and rate-limited) before anything is
//!    looked up, so a revoked or expired key that repeats its Idempotency-Key gets the 401 every
//!    other request of that key gets, never the stored answer. The principal is handed on to
//!    the handler ([`Authenticated`]), so a request is authenticated and counted once.
//! 2. **Applied once.** The first batch the handler commits carries an in-flight marker for
//!    (SHA-256 of the key, Idempotency-Key) ([`loopctl_app::once`]). The table's primary key
//!    lets exactly one of any number of concurrent requests commit it, on either store and
//!    across server processes, and a batch that loses it is not applied. A request that
//!    writes nothing claims the pair with its answer instead. A request that lost the pair,
//!    to a copy running or to one answered within 24 hours, replays that copy's answer (after
//!    polling for it up to [`WAIT`] while it runs; then 409 `idempotency_in_progress` with
//!    `Retry-After`). The winner's answer completes its marker after the response has gone;
//!    a retry meanwhile waits for it. So a write costs one commit on the answer's path, not
//!    three. The handler runs in a task of its own, so a client that hangs up does not strand
//!    the marker; a marker whose server died is taken over after [`MARKER_EXPIRES`].
//! 3. **No secrets at rest.** An answer that carries a raw key or token (a `raw_key` field, or
//!    any string shaped like a minted key) is never stored. What is kept instead is a 409
//!    `secret_not_replayed` holding that answer without its secrets, so a retry neither mints
//!    a second key nor learns the first one, and is told how to recover.

use loopctl_api::ErrorCode;
use std::time::{Duration as StdDuration, Instant};

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use loopctl_app::AppError;
use loopctl_app::once::{MarkerSlot, MarkerState};
use loopctl_store::{IdempotentResponse, Store, StoreError, WriteOp};
use serde_json::{Value, json};
use std::sync::Arc;

use crate::AppState;
use crate::error::{ApiError, Authenticated, bearer};

/// How long a stored answer is replayed.
pub const KEEP_FOR: Duration = Duration::hours(24);
/// A marker older than this was left by a server that died mid-request: a retry takes it
/// over. Longer than any request runs (the client gives up after 30 s).
pub const MARKER_EXPIRES: Duration = Duration::minutes(2);
/// How long a request waits for a concurrent one with the same key to answer.
pub const WAIT: StdDuration = StdDuration::from_secs(5);
/// How often a waiting request looks for the answer.
const POLL: StdDuration = StdDuration::from_millis(20);
/// Answers larger than this are not stored (they are not lifecycle answers).
const MAX_STORED_BODY: usize = 1 << 20;

pub async fn replay(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let method = request.method().clone();
    if matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::trim).map(str::to_string);
    let raw_key = bearer(headers).map(str::to_string);
    let (Some(key), Some(raw_key)) = (key, raw_key) else {
        return next.run(request).await;
    };
    if key.is_empty() || key.len() > 255 {
        return ApiError::from(AppError::field("Idempotency-Key", "must be 1 to 255 characters")).into_response();
    }
    let path = request.uri().path().to_string();
    // Rule 1: only a live key ever sees a stored answer.
    let who = match state.app.authenticate(&raw_key).await {
        Ok(who) => who,
        Err(err) => return ApiError::from(err).into_response(),
    };
    if let Err(err) = state.limiter.check(&who, &method, &path) {
        return ApiError::from(err).into_response();
    }
    request.extensions_mut().insert(Authenticated(who));

    let pair = Pair { scope: loopctl_app::keys::hash(&raw_key), key, method: method.as_str().to_string(), path };
    let store = state.app.store().clone();
    // Rule 2: the request runs to its end even when the client hangs up, so its answer is kept
    // and the marker never outlives it.
    let task = tokio::spawn(async move {
        let slot = MarkerSlot::pending(pair.marker(IdempotentResponse::IN_FLIGHT, String::new()));
        let response = slot.clone().scope(next.run(request)).await;
        let state = slot.state();
        keep(store, &pair, state, response).await
    });
    match task.await {
        Ok(response) => response,
        Err(err) => {
            tracing::error!(%err, "a request with an Idempotency-Key failed");
            ApiError::from(AppError::internal()).into_response()
        }
    }
}

/// One caller's Idempotency-Key and the request it names.
#[derive(Clone)]
struct Pair {
    scope: Vec<u8>,
    key: String,
    method: String,
    path: String,
}

impl Pair {
    fn row(&self, status: u16, body: String) -> IdempotentResponse {
        IdempotentResponse {
            scope: self.scope.clone(),
            key: self.key.clone(),
            method: self.method.clone(),
            path: self.path.clone(),
            status,
            body,
            created_at: Utc::now(),
        }
    }

    /// Claims the pair with this row, unless another request holds it (a `Duplicate`).
    fn marker(&self, status: u16, body: String) -> WriteOp {
        let marker = self.row(status, body);
        let stale_before = marker.created_at - MARKER_EXPIRES;
        WriteOp::BeginIdempotentRequest { marker, stale_before }
    }
}

/// The answer a repeat of `pair` gets: the kept one, or, while the first request is still
/// running, that one's once it comes (`idempotency_in_progress` after [`WAIT`]). `None` when
/// the pair is free: never used, forgotten, abandoned, or left by a server that died.
async fn answer_of(store: &dyn Store, pair: &Pair) -> Result<Option<Response>, AppError> {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = Utc::now();
        let Some(row) = store.idempotent_response(&pair.scope, &pair.key).await? else {
            return Ok(None);
        };
        if row.method != pair.method || row.path != pair.path {
            return Err(AppError::field(
                "Idempotency-Key",
                "was already used for a different request; send a new key for a new request",
            ));
        }
        if !row.in_flight() {
            if row.created_at > now - KEEP_FOR {
                return Ok(Some(stored_response(&row)));
            }
            // Expired but not purged yet: it no longer counts.
            store.commit(vec![WriteOp::PurgeIdempotentResponses { before: now - KEEP_FOR }]).await?;
            return Ok(None);
        }
        if row.created_at <= now - MARKER_EXPIRES {
            return Ok(None);
        }
        if Instant::now() >= deadline {
            return Ok(Some(in_progress()));
        }
        tokio::time::sleep(POLL).await;
    }
}

fn in_progress() -> Response {
    let mut response = ApiError::from(AppError::new(ErrorCode::IdempotencyInProgress,
        "a request with this Idempotency-Key is still running; retry it with the same key in a second to get its answer",
    ))
    .into_response();
    response.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
    response
}

/// Keeps the answer for replay (without secrets), or drops the marker when there is nothing
/// worth replaying; answers what the handler answered, or, when another request with the
/// same key got there first, that request's answer.
async fn keep(store: Arc<dyn Store>, pair: &Pair, marker: MarkerState, response: Response) -> Response {
    let committed = match marker {
        MarkerState::Lost => return lost_to_another(store.as_ref(), pair).await,
        // The marker went in complete, with the writes: the answer is kept already.
        MarkerState::Answered => return response,
        MarkerState::Committed => true,
        MarkerState::Pending(_) => false,
    };
    // Server errors are not answers: a retry should run again. Only small answers are kept
    // for replay; a larger one (an export, a big import) is passed through untouched and
    // simply not replayed.
    let size = HttpBody::size_hint(response.body()).upper();
    if response.status().is_server_error() || size.is_none_or(|len| len > MAX_STORED_BODY as u64) {
        if committed {
            abandon(store.as_ref(), pair).await;
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_STORED_BODY).await {
        Ok(bytes) => bytes,
        Err(err) => {
            tracing::warn!(%err, "could not read an answer to keep for replay");
            if committed {
                abandon(store.as_ref(), pair).await;
            }
            return ApiError::from(AppError::internal()).into_response();
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let (status, body) = match without_secrets(&text) {
        None => (parts.status.as_u16(), text.into_owned()),
        Some(answer) => {
            let withheld = secret_not_replayed(answer);
            let status = withheld.code.http_status();
            (status, serde_json::to_string(&withheld.body(status)).unwrap_or_default())
        }
    };
    if committed {
        // The marker went in with the request's writes, so the pair is this request's: the
        // answer completes it off the answer's path (a retry meanwhile waits for it).
        let record = pair.row(status, body);
        let (store, pair) = (store.clone(), pair.clone());
        tokio::spawn(async move {
            if let Err(err) = store.commit(vec![WriteOp::SaveIdempotentResponse(record)]).await {
                tracing::warn!(%err, "could not store an idempotent answer");
                abandon(store.as_ref(), &pair).await;
            }
        });
    } else {
        // Nothing was written: the answer claims the pair itself, in one write, unless a
        // concurrent request with this key claimed it first; then that one's answer counts.
        match store.commit(vec![pair.marker(status, body)]).await {
            Ok(_) => {}
            Err(StoreError::Duplicate { .. }) => return lost_to_another(store.as_ref(), pair).await,
            Err(err) => tracing::warn!(%err, "could not store an idempotent answer"),
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// A route's answer as it will be kept for replay, when it can go in with the request's
/// writes (`loopctl_app::once::answer_with`): the same bytes `Json` sends, and only when
/// they would be kept as they are (small, no secret).
pub(crate) fn kept_as_is<T: serde::Serialize>(status: StatusCode, answer: &T) -> Option<(u16, String)> {
    let body = serde_json::to_string(answer).ok()?;
    (body.len() <= MAX_STORED_BODY && without_secrets(&body).is_none()).then_some((status.as_u16(), body))
}

/// The answer for a request whose key another request holds.
async fn lost_to_another(store: &dyn Store, pair: &Pair) -> Response {
    match answer_of(store, pair).await {
        Ok(Some(answer)) => answer,
        Ok(None) => in_progress(),
        Err(err) => ApiError::from(err).into_response(),
    }
}

async fn abandon(store: &dyn Store, pair: &Pair) {
    let op = WriteOp::AbandonIdempotentRequest { scope: pair.scope.clone(), key: pair.key.clone() };
    if let Err(err) = store.commit(vec![op]).await {
        // The marker expires on its own after MARKER_EXPIRES.
        tracing::warn!(%err, "could not drop an idempotency marker");
    }
}

/// What a retry of a request whose answer held a secret gets instead of that answer.
fn secret_not_replayed(answer: Option<Value>) -> AppError {
    let error = AppError::new(
        ErrorCode::SecretNotReplayed,
        "this request was already applied under this Idempotency-Key, but its answer held a raw key, which is \
         shown once and never stored; `context.answer` is that answer without it. If you did not receive the key, \
         revoke it (`loopctl keys revoke ID`, or `loopctl dispatch revoke ID` for a dispatch) and send the \
         request again with a new Idempotency-Key",
    );
    match answer {
        Some(answer) => error.with_context(json!({"answer": answer})),
        None => error,
    }
}

/// `None` when the answer carries no secret; otherwise the answer without its secrets (`None`
/// inside when it is not JSON, so nothing of it can be kept).
fn without_secrets(text: &str) -> Option<Option<Value>> {
    // Most answers (every lifecycle answer) name neither; they need no parse. Our serializer
    // never escapes ASCII letters, so a secret cannot hide from this look.
    if !text.contains("lc_") && !text.contains("raw_key") {
        return None;
    }
    match serde_json::from_str::<Value>(text) {
        Ok(mut value) => redact(&mut value).then_some(Some(value)),
        Err(_) => has_key_shape(text).then_some(None),
    }
}

/// Removes every `raw_key` field and blanks every string that holds something shaped like a
/// minted key; answers whether there was a secret. The key prefixes of an answer that had one
/// go too: the stored row then holds nothing of the key but its id.
fn redact(value: &mut Value) -> bool {
    match value {
        Value::Object(fields) => {
            let mut secret = fields.remove("raw_key").is_some_and(|raw| !raw.is_null());
            for field in fields.values_mut() {
                secret |= redact(field);
            }
            if secret {
                fields.remove("key_prefix");
            }
            secret
        }
        Value::Array(items) => items.iter_mut().fold(false, |secret, item| redact(item) | secret),
        Value::String(text) if has_key_shape(text) => {
            *text = "[withheld]".into();
            true
        }
        _ => false,
    }
}

/// `lc_` and at least 40 URL-safe base64 characters: how `keys::mint` makes keys and tokens.
fn has_key_shape(text: &str) -> bool {
    const BODY: usize = 40;
    text.match_indices("lc_").any(|(at, _)| {
        text[at + 3..].bytes().take(BODY).filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')).count()
            == BODY
    })
}

fn stored_response(stored: &IdempotentResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body.clone()).into_response();
    let headers = response.headers_mut();
    headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_with_a_raw_key_is_kept_without_it_or_its_prefix() {
        let raw = format!("lc_{}", "A".repeat(40));
        let text =
            json!({"api_key": {"id": "k1", "raw_key": raw, "key_prefix": "lc_AAAAA", "role": "agent"}}).to_string();
        let kept = without_secrets(&text).expect("a secret was found").expect("JSON stays JSON");
        assert_eq!(kept, json!({"api_key": {"id": "k1", "role": "agent"}}));
        assert!(!kept.to_string().contains("lc_"), "{kept}");
    }

    #[test]
    fn a_key_shaped_string_in_any_field_is_a_secret_too() {
        let raw = format!("lc_{}", "x-_9".repeat(10));
        let text = json!({"data": [{"note": format!("use {raw} now")}]}).to_string();
        let kept = without_secrets(&text).expect("a secret was found").expect("JSON");
        assert_eq!(kept, json!({"data": [{"note": "[withheld]"}]}));
        assert_eq!(without_secrets(&format!("not json {raw}")), Some(None));
    }

    #[test]
    fn ordinary_answers_and_prefixes_alone_are_kept_as_they_are() {
        let text = json!({"api_key": {"id": "k1", "key_prefix": "lc_AAAAA", "raw_key": null}}).to_string();
        assert_eq!(without_secrets(&text), None);
        assert_eq!(without_secrets(r#"{"project":{"slug":"calc_tool"}}"#), None);
        assert!(!has_key_shape(&format!("lc_{}", "A".repeat(39))));
    }
}
