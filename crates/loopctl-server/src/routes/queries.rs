//! Ready, blocked, reclaim of expired leases.

use axum::Json;
use axum::extract::State;
use loopctl_app::Paging;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiResult, Body, Caller, Params};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ready_stories))
        .routes(routes!(blocked_stories))
        .routes(routes!(reclaim_expired))
}

#[derive(Deserialize, Default)]
struct ListQuery {
    project_id: Option<String>,
    epic_id: Option<Uuid>,
    page: Option<i64>,
    page_size: Option<i64>,
    limit: Option<i64>,
}

async fn project_of(s: &AppState, who: &loopctl_app::Principal, project: Option<&str>) -> ApiResult<Uuid> {
    let project = project.ok_or_else(|| {
        crate::ApiError(loopctl_app::AppError::new(400, "validation_failed", "project_id query parameter is required"))
    })?;
    Ok(s.app.resolve_project(who, project).await?.id)
}

/// Stories ready to work on, in order; `suggested` marks the next batch for parallel agents.
#[utoipa::path(get, path = "/api/v1/stories/ready", tag = "queries")]
async fn ready_stories(
    State(s): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<ListQuery>,
) -> ApiResult<Json<Value>> {
    let project = project_of(&s, &who, q.project_id.as_deref()).await?;
    let paging = Paging { page: q.page, page_size: q.page_size.or(q.limit) };
    Ok(Json(json!(s.app.ready_stories(&who, project, q.epic_id, paging).await?)))
}

/// Stories waiting for dependencies, each with what it waits for and that dependency's status.
#[utoipa::path(get, path = "/api/v1/stories/blocked", tag = "queries")]
async fn blocked_stories(
    State(s): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<ListQuery>,
) -> ApiResult<Json<Value>> {
    let project = project_of(&s, &who, q.project_id.as_deref()).await?;
    let paging = Paging { page: q.page, page_size: q.page_size.or(q.limit) };
    Ok(Json(json!(s.app.blocked_stories(&who, project, paging).await?)))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ReclaimRequest {
    project_id: Uuid,
}

/// Returns stories whose lease expired to the queue.
#[utoipa::path(post, path = "/api/v1/stories/reclaim-expired", tag = "queries", request_body = ReclaimRequest)]
async fn reclaim_expired(
    State(s): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<ReclaimRequest>,
) -> ApiResult<Json<Value>> {
    loopctl_app::require_manager(&who)?;
    let reclaimed = s.app.reclaim_expired(&who, body.project_id).await?;
    Ok(Json(json!({"reclaimed": reclaimed})))
}
