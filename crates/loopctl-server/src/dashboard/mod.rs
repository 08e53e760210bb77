//! The web dashboard at `/`: sign-in, the projects, a board per project, its dependency
//! graph, each story's chain of custody, the live activity, the agents and what needs a
//! person. Each handler reads through the same `App` calls as the API (same custody rules,
//! same error codes) and renders with `loopctl-dashboard`; pages are complete without
//! JavaScript, and `/dashboard/events` (the change feed for the session) drives the live
//! refresh.

mod actions;
mod pages;
mod session;

use axum::Router;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use loopctl_app::{AppError, Principal};
use loopctl_core::Role;
use loopctl_dashboard::Viewer;

pub(crate) use session::Sessions;
use session::{SESSION_COOKIE, cookie};

use crate::AppState;

/// The dashboard's routes, each answer with the pages' security headers.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::projects))
        .route("/login", get(pages::login_form).post(actions::login))
        .route("/logout", post(actions::logout))
        .route("/projects/{slug}", get(pages::board))
        .route("/projects/{slug}/graph", get(pages::graph))
        .route("/projects/{slug}/stories/{number}", get(pages::story))
        .route("/projects/{slug}/stories/{number}/{action}", get(actions::back_to_story).post(actions::story_action))
        .route("/activity", get(pages::activity))
        .route("/agents", get(pages::agents))
        .route("/needs-you", get(pages::needs_you))
        .route("/dashboard/events", get(pages::events))
        .route("/assets/{name}", get(asset))
        .layer(axum::middleware::map_response(secure_headers))
}

/// Only this origin's scripts, styles, images and connections; no framing; no referrer;
/// nothing cached.
async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, "x-frame-options", "DENY");
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "referrer-policy", "no-referrer");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, "cache-control", "no-store");
    }
    response
}

async fn asset(Path(name): Path<String>) -> Response {
    match loopctl_dashboard::assets::asset(&name) {
        Some((content_type, body)) => {
            ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=300")], body)
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], "no such asset")
            .into_response(),
    }
}

/// A signed-in person: the principal of the session's key (re-checked on every request)
/// and the session's CSRF token. Without a live session, every page redirects to `/login`.
pub(crate) struct Signed {
    pub who: Principal,
    pub csrf: String,
    pub session_id: String,
    /// The newest event's cursor as the request came in (see `Viewer::feed_cursor`).
    pub feed_cursor: i64,
}

impl Signed {
    pub fn viewer(&self) -> Viewer {
        let role = self.who.role;
        Viewer {
            name: self.who.key_name.clone(),
            role: if self.who.scope.is_some() {
                format!("{} (dispatched)", role.as_str())
            } else {
                role.as_str().into()
            },
            csrf: self.csrf.clone(),
            can_judge: matches!(role, Role::Orchestrator | Role::User),
            can_clear_escalations: role == Role::User,
            feed_cursor: self.feed_cursor,
        }
    }
}

pub(crate) fn to_login() -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response()
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else { return Err(to_login()) };
        let Some(session) = state.sessions.get(id) else { return Err(to_login()) };
        match state.app.authenticate_hash(&session.key_hash).await {
            Ok(who) => {
                if let Err(err) = state.limiter.check(&who, &parts.method, parts.uri.path()) {
                    return Err(html_refusal(None, &err));
                }
                let newest = state.app.recent_changes(&who, None, None, 1).await;
                let feed_cursor = newest.ok().and_then(|events| events.first().map(|e| e.cursor)).unwrap_or(0);
                Ok(Signed { who, csrf: session.csrf, session_id: id.to_string(), feed_cursor })
            }
            // Revoked, expired, or its tenant suspended: the session ends with the key.
            Err(_) => {
                state.sessions.end(id);
                Err(to_login())
            }
        }
    }
}

/// An HTML page for a refusal, with the status the API gives the same error.
pub(crate) fn html_refusal(viewer: Option<&Viewer>, err: &AppError) -> Response {
    let status = StatusCode::from_u16(err.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let body = match viewer {
        Some(viewer) => loopctl_dashboard::refusal(viewer, err.code.as_str(), &err.message),
        None => loopctl_dashboard::login("", Some(&err.message)),
    };
    html(status, body)
}

pub(crate) fn html(status: StatusCode, body: loopctl_dashboard::Html) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body.into_string()).into_response()
}
