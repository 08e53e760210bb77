//! What the dashboard's forms do: sign in, sign out, and a verdict on a story (verify,
//! reject, force-unclaim, clear an escalation) through the same `App` calls as the API.
//! Every form carries a CSRF token, and a form posted from another origin is refused.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use loopctl_api::{ReasonRequest, RejectRequest, VerifyRequest};
use loopctl_app::{AppError, keys};
use loopctl_client::encode_component;
use serde::Deserialize;

use super::pages::{login_page, story_response};
use super::session::{LOGIN_COOKIE, SESSION_COOKIE, cookie, over_tls, same_token, set_cookie};
use super::{Signed, html_refusal};
use crate::AppState;

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    api_key: String,
    #[serde(default)]
    csrf: String,
}

/// A browser says where a form came from; one from another origin is refused even with a
/// token (defence in depth beside `SameSite=Strict`).
fn cross_origin(headers: &HeaderMap) -> bool {
    if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()).is_some_and(|s| s == "cross-site") {
        return true;
    }
    let (Some(origin), Some(host)) = (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    origin != "null" && origin.split_once("://").map(|(_, rest)| rest) != Some(host)
}

fn csrf_refusal() -> AppError {
    AppError::forbidden(
        "this form's CSRF token does not match your session (or it came from another site); reload the page and try again",
    )
}

fn redirect(to: &str, cookies: &[String]) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response();
    for c in cookies {
        if let Ok(value) = c.parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// `POST /login`: the key is checked as a bearer key would be; the session keeps its hash.
pub(crate) async fn login(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<LoginForm>) -> Response {
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_token(expected, &form.csrf) || cross_origin(&headers) {
        return login_page(&headers, Some(&csrf_refusal().message), StatusCode::FORBIDDEN);
    }
    let raw = form.api_key.trim();
    if let Err(err) = state.app.authenticate(raw).await {
        let message = format!("{}: {}", err.code.as_str(), err.message);
        return login_page(
            &headers,
            Some(&message),
            StatusCode::from_u16(err.code.http_status()).unwrap_or(StatusCode::UNAUTHORIZED),
        );
    }
    let (id, _csrf) = match state.sessions.start(keys::hash(raw)) {
        Ok(started) => started,
        Err(err) => return html_refusal(None, &err),
    };
    let tls = over_tls(&headers);
    redirect(
        "/",
        &[set_cookie(SESSION_COOKIE, &id, "/", tls, None), set_cookie(LOGIN_COOKIE, "", "/login", tls, Some(0))],
    )
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`.
pub(crate) async fn logout(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !same_token(&signed.csrf, &form.csrf) || cross_origin(&headers) {
        return html_refusal(Some(&signed.viewer()), &csrf_refusal());
    }
    state.sessions.end(&signed.session_id);
    redirect("/login", &[set_cookie(SESSION_COOKIE, "", "/", over_tls(&headers), Some(0))])
}

/// `GET` of a verdict's URL (a reload of the page a refusal answered, or the live refresh
/// of it): back to the story page.
pub(crate) async fn back_to_story(Path((slug, number, _action)): Path<(String, String, String)>) -> Response {
    redirect(&story_url(&slug, &number), &[])
}

/// The story page's path, its parts percent-encoded: they come from the request, and a
/// `Location` header takes no control characters (nor should it lead anywhere else).
fn story_url(slug: &str, number: &str) -> String {
    format!("/projects/{}/stories/{}", encode_component(slug), encode_component(number))
}

#[derive(Deserialize)]
pub(crate) struct VerdictForm {
    #[serde(default)]
    csrf: String,
    summary: Option<String>,
    reason: Option<String>,
}

/// `POST /projects/<slug>/stories/<number>/<verify|reject|force-unclaim|clear-escalation>`:
/// on success back to the story page; a refusal is the story page with the API's code,
/// message and status.
pub(crate) async fn story_action(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Path((slug, number, action)): Path<(String, String, String)>,
    Form(form): Form<VerdictForm>,
) -> Response {
    let viewer = signed.viewer();
    let refuse = |err: AppError| {
        let state = state.clone();
        let (slug, number) = (slug.clone(), number.clone());
        let viewer = viewer.clone();
        let signed = &signed;
        async move {
            let status = StatusCode::from_u16(err.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            story_response(&state, signed, &viewer, &slug, &number, Some(&err), None, status).await
        }
    };
    if !same_token(&signed.csrf, &form.csrf) || cross_origin(&headers) {
        return refuse(csrf_refusal()).await;
    }
    let who = &signed.who;
    let done = async {
        let project = state.app.resolve_project(who, &slug).await?;
        let story = state.app.resolve_story(who, Some(project.id), &number).await?;
        let reason = ReasonRequest { reason: form.reason.clone(), note: None };
        match action.as_str() {
            "verify" => {
                let request = VerifyRequest { summary: form.summary.clone(), ..VerifyRequest::default() };
                state.app.verify_story(who, story.id, request).await?;
            }
            "reject" => {
                let request = RejectRequest { reason: form.reason.clone(), ..RejectRequest::default() };
                state.app.reject_story(who, story.id, request).await?;
            }
            "force-unclaim" => {
                state.app.force_unclaim_story(who, story.id, reason).await?;
            }
            "clear-escalation" => {
                state.app.clear_escalation(who, story.id, reason).await?;
            }
            other => {
                return Err(AppError::new(
                    loopctl_api::ErrorCode::NotFound,
                    format!(
                        "`{other}` is not something the story page does: verify, reject, force-unclaim or clear-escalation"
                    ),
                ));
            }
        }
        Ok(())
    };
    match done.await {
        Ok(()) => redirect(&format!("{}?done={action}", story_url(&slug, &number)), &[]),
        Err(err) => refuse(err).await,
    }
}
