//! Acceptance criteria with evidence, verification runs, and the key that signs them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use loopctl_api::{
    CriterionView, Data, RecordVerificationRun, SigningKeyInfo, VerificationRunAnswer, VerificationRunView,
};
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
#[utoipa::path(get, path = "/api/v1/stories/{id}/acceptance_criteria", tag = "evidence", responses((status = 200, body = Data<Vec<CriterionView>>)))]
async fn story_criteria(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
) -> ApiResult<Json<Data<Vec<CriterionView>>>> {
    Ok(Json(Data { data: s.app.story_criteria(&who, id(&story, "story")?).await? }))
}

/// Records a `verify-artifacts` run of the latest report; the server signs it.
#[utoipa::path(post, path = "/api/v1/stories/{id}/verification-runs", tag = "evidence", request_body = RecordVerificationRun, responses((status = 201, body = VerificationRunAnswer)))]
async fn record_verification_run(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
    Body(body): Body<RecordVerificationRun>,
) -> ApiResult<(StatusCode, Json<VerificationRunAnswer>)> {
    let verification_run = s.app.record_verification_run(&who, id(&story, "story")?, body).await?;
    Ok((StatusCode::CREATED, Json(VerificationRunAnswer { verification_run })))
}

/// Verification runs of a story, each with whether its signature checks out.
#[utoipa::path(get, path = "/api/v1/stories/{id}/verification-runs", tag = "evidence", responses((status = 200, body = Data<Vec<VerificationRunView>>)))]
async fn list_verification_runs(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
) -> ApiResult<Json<Data<Vec<VerificationRunView>>>> {
    Ok(Json(Data { data: s.app.verification_runs(&who, id(&story, "story")?).await? }))
}

/// The server's Ed25519 public key that signs verification runs (no authentication).
#[utoipa::path(get, path = "/.well-known/loopctl/signing-key", tag = "evidence", responses((status = 200, body = SigningKeyInfo)))]
async fn signing_key(State(s): State<AppState>) -> ApiResult<Json<SigningKeyInfo>> {
    Ok(Json(s.app.public_signing_key()))
}
