//! Acceptance criteria with evidence, verification runs, and the key that signs them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use loopctl_app::RecordVerificationRun;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiResult, Body, Caller, Path, id};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(story_criteria))
        .routes(routes!(record_verification_run, list_verification_runs))
        .routes(routes!(signing_key))
}

/// The story's criteria, each with this round's evidence and review/verify verdicts.
#[utoipa::path(get, path = "/api/v1/stories/{id}/acceptance_criteria", tag = "evidence")]
async fn story_criteria(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"data": s.app.story_criteria(&who, id(&story, "story")?).await?})))
}

/// Records a `verify-artifacts` run of the latest report; the server signs it.
#[utoipa::path(post, path = "/api/v1/stories/{id}/verification-runs", tag = "evidence", request_body = RecordVerificationRun)]
async fn record_verification_run(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
    Body(body): Body<RecordVerificationRun>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let run = s.app.record_verification_run(&who, id(&story, "story")?, body).await?;
    Ok((StatusCode::CREATED, Json(json!({"verification_run": run}))))
}

/// Verification runs of a story, each with whether its signature checks out.
#[utoipa::path(get, path = "/api/v1/stories/{id}/verification-runs", tag = "evidence")]
async fn list_verification_runs(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"data": s.app.verification_runs(&who, id(&story, "story")?).await?})))
}

/// The server's Ed25519 public key that signs verification runs (no authentication).
#[utoipa::path(get, path = "/.well-known/loopctl/signing-key", tag = "evidence")]
async fn signing_key(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(s.app.public_signing_key()))
}
