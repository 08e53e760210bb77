//! Ready, blocked, reclaim of expired leases.

use axum::Json;
use axum::extract::State;
use loopctl_api::{BlockedList, FrontierParams, ReadyList, ReclaimAnswer, ReclaimRequest};
use loopctl_app::Paging;
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

async fn project_of(s: &AppState, who: &loopctl_app::Principal, project: Option<&str>) -> ApiResult<Uuid> {
    let project = project.ok_or_else(|| {
        crate::ApiError::transport(
            axum::http::StatusCode::BAD_REQUEST,
            loopctl_app::AppError::validation("project_id query parameter is required"),
        )
    })?;
    Ok(s.app.resolve_project(who, project).await?.id)
}

/// Stories ready to work on, in order; `suggested` marks the next batch for parallel agents.
#[utoipa::path(get, path = "/api/v1/stories/ready", tag = "queries", params(FrontierParams), responses((status = 200, body = ReadyList)))]
async fn ready_stories(
    State(s): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<FrontierParams>,
) -> ApiResult<Json<ReadyList>> {
    let project = project_of(&s, &who, q.project_id.as_deref()).await?;
    let paging = Paging { page: q.page, page_size: q.page_size.or(q.limit) };
    Ok(Json(s.app.ready_stories(&who, project, q.epic_id, paging).await?))
}

/// Stories waiting for dependencies, each with what it waits for and that dependency's status.
#[utoipa::path(get, path = "/api/v1/stories/blocked", tag = "queries", params(FrontierParams), responses((status = 200, body = BlockedList)))]
async fn blocked_stories(
    State(s): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<FrontierParams>,
) -> ApiResult<Json<BlockedList>> {
    let project = project_of(&s, &who, q.project_id.as_deref()).await?;
    let paging = Paging { page: q.page, page_size: q.page_size.or(q.limit) };
    Ok(Json(s.app.blocked_stories(&who, project, paging).await?))
}

/// Returns stories whose lease expired to the queue.
#[utoipa::path(post, path = "/api/v1/stories/reclaim-expired", tag = "queries", request_body = ReclaimRequest, responses((status = 200, body = ReclaimAnswer)))]
async fn reclaim_expired(
    State(s): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<ReclaimRequest>,
) -> ApiResult<Json<ReclaimAnswer>> {
    loopctl_app::require_manager(&who)?;
    let reclaimed = s.app.reclaim_expired(&who, body.project_id).await?;
    Ok(Json(ReclaimAnswer { reclaimed }))
}
