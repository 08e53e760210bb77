//! Change feed, audit log, story history, orchestrator state.

use axum::Json;
use axum::extract::State;
use loopctl_app::{AuditQuery, ChangesQuery, SaveState};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiResult, Body, Caller, Params, Path, id};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(changes))
        .routes(routes!(super::events::events))
        .routes(routes!(audit))
        .routes(routes!(story_history))
        .routes(routes!(story_artifacts))
        .routes(routes!(story_verifications))
        .routes(routes!(save_state, load_state))
        .routes(routes!(state_history))
}

#[derive(Deserialize, Default)]
struct ChangesParams {
    project_id: Option<Uuid>,
    since: Option<String>,
    entity_type: Option<String>,
    action: Option<String>,
    limit: Option<i64>,
}

/// Events after `since` (a cursor or an ISO-8601 time), oldest first.
#[utoipa::path(get, path = "/api/v1/changes", tag = "feed")]
async fn changes(
    State(s): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<ChangesParams>,
) -> ApiResult<Json<Value>> {
    let query = ChangesQuery {
        project_id: q.project_id,
        since: q.since,
        entity_type: q.entity_type,
        action: q.action,
        limit: q.limit,
    };
    Ok(Json(json!(s.app.changes(&who, query).await?)))
}

#[derive(Deserialize, Default)]
struct AuditParams {
    project_id: Option<Uuid>,
    entity_type: Option<String>,
    entity_id: Option<Uuid>,
    action: Option<String>,
    limit: Option<i64>,
    page_size: Option<i64>,
}

/// The audit log, newest first (user keys).
#[utoipa::path(get, path = "/api/v1/audit", tag = "feed")]
async fn audit(
    State(s): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<AuditParams>,
) -> ApiResult<Json<Value>> {
    let limit = q.limit.or(q.page_size);
    let query = AuditQuery {
        project_id: q.project_id,
        entity_type: q.entity_type,
        entity_id: q.entity_id,
        action: q.action,
        limit,
    };
    let rows = s.app.audit(&who, query).await?;
    let total = rows.len();
    Ok(Json(json!({"data": rows, "pagination": {"total": total, "page": 1, "page_size": total}})))
}

/// Every event of one story, oldest first.
#[utoipa::path(get, path = "/api/v1/stories/{id}/history", tag = "feed")]
async fn story_history(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
) -> ApiResult<Json<Value>> {
    let rows = s.app.story_history(&who, id(&story, "story")?).await?;
    let total = rows.len();
    Ok(Json(json!({"data": rows, "pagination": {"total": total, "page": 1, "page_size": total}})))
}

#[utoipa::path(get, path = "/api/v1/stories/{id}/artifacts", tag = "feed")]
async fn story_artifacts(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
) -> ApiResult<Json<Value>> {
    let detail = s.app.story_detail(&who, id(&story, "story")?).await?;
    Ok(Json(json!({"data": detail.artifacts})))
}

#[utoipa::path(get, path = "/api/v1/stories/{id}/verifications", tag = "feed")]
async fn story_verifications(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
) -> ApiResult<Json<Value>> {
    let detail = s.app.story_detail(&who, id(&story, "story")?).await?;
    let mut rows = detail.verifications;
    rows.reverse();
    Ok(Json(json!({"data": rows})))
}

#[derive(Deserialize, Default)]
struct StateParams {
    state_key: Option<String>,
    limit: Option<i64>,
}

/// Saves a checkpoint; with `version`, a stale one is refused (`version_conflict`).
#[utoipa::path(put, path = "/api/v1/orchestrator/state/{project_id}", tag = "state", request_body = SaveState)]
async fn save_state(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
    Body(body): Body<SaveState>,
) -> ApiResult<Json<Value>> {
    let project = s.app.resolve_project(&who, &project).await?;
    Ok(Json(json!({"state": s.app.save_state(&who, project.id, body).await?})))
}

#[utoipa::path(get, path = "/api/v1/orchestrator/state/{project_id}", tag = "state")]
async fn load_state(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
    Params(q): Params<StateParams>,
) -> ApiResult<Json<Value>> {
    let project = s.app.resolve_project(&who, &project).await?;
    Ok(Json(json!({"state": s.app.load_state(&who, project.id, q.state_key.as_deref()).await?})))
}

#[utoipa::path(get, path = "/api/v1/orchestrator/state/{project_id}/history", tag = "state")]
async fn state_history(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
    Params(q): Params<StateParams>,
) -> ApiResult<Json<Value>> {
    let project = s.app.resolve_project(&who, &project).await?;
    let rows = s.app.state_history(&who, project.id, q.state_key.as_deref(), q.limit.unwrap_or(25)).await?;
    let total = rows.len();
    Ok(Json(json!({"data": rows, "meta": {"total_count": total}})))
}
