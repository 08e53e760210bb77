//! Change feed, audit log, story history, orchestrator state.

use axum::Json;
use axum::extract::State;
use loopctl_api::{
    ArtifactView, AuditParams, AuditVerification, Changes, ChangesParams, CountMeta, Data, DataMeta, EventPage,
    EventView, Pagination, SaveState, StateAnswer, StateParams, StateVersion, VerificationView,
};
use loopctl_app::{AuditQuery, ChangesQuery};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiResult, Body, Caller, Params, Path, id};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(changes))
        .routes(routes!(super::events::events))
        .routes(routes!(audit))
        .routes(routes!(verify_audit))
        .routes(routes!(story_history))
        .routes(routes!(story_artifacts))
        .routes(routes!(story_verifications))
        .routes(routes!(save_state, load_state))
        .routes(routes!(state_history))
}

/// Events after `since` (a cursor or an ISO-8601 time), oldest first.
#[utoipa::path(get, path = "/api/v1/changes", tag = "feed", params(ChangesParams), responses((status = 200, body = Changes)))]
async fn changes(
    State(s): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<ChangesParams>,
) -> ApiResult<Json<Changes>> {
    let query = ChangesQuery {
        project_id: q.project_id,
        since: q.since,
        entity_type: q.entity_type,
        action: q.action,
        limit: q.limit,
    };
    Ok(Json(s.app.changes(&who, query).await?))
}

/// Re-walks the tenant's audit chain (user keys): every event hashed again and chained, every
/// signed head checked; names the first entry that does not match. Events not yet chained are
/// chained first.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "feed", responses((status = 200, body = Data<AuditVerification>)))]
async fn verify_audit(State(s): State<AppState>, Caller(who): Caller) -> ApiResult<Json<Data<AuditVerification>>> {
    Ok(Json(Data { data: s.app.verify_audit(&who).await? }))
}

/// The audit log, newest first (user keys).
#[utoipa::path(get, path = "/api/v1/audit", tag = "feed", params(AuditParams), responses((status = 200, body = EventPage)))]
async fn audit(
    State(s): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<AuditParams>,
) -> ApiResult<Json<EventPage>> {
    let limit = q.limit.or(q.page_size);
    let query = AuditQuery {
        project_id: q.project_id,
        entity_type: q.entity_type,
        entity_id: q.entity_id,
        action: q.action,
        limit,
    };
    Ok(Json(whole_page(s.app.audit(&who, query).await?)))
}

/// Every event of one story, oldest first.
#[utoipa::path(get, path = "/api/v1/stories/{id}/history", tag = "feed", responses((status = 200, body = EventPage)))]
async fn story_history(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
) -> ApiResult<Json<EventPage>> {
    Ok(Json(whole_page(s.app.story_history(&who, id(&story, "story")?).await?)))
}

fn whole_page(data: Vec<EventView>) -> EventPage {
    let total = data.len();
    EventPage { data, pagination: Pagination { total, page: 1, page_size: total } }
}

#[utoipa::path(get, path = "/api/v1/stories/{id}/artifacts", tag = "feed", responses((status = 200, body = Data<Vec<ArtifactView>>)))]
async fn story_artifacts(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
) -> ApiResult<Json<Data<Vec<ArtifactView>>>> {
    let detail = s.app.story_detail(&who, id(&story, "story")?).await?;
    Ok(Json(Data { data: detail.artifacts }))
}

#[utoipa::path(get, path = "/api/v1/stories/{id}/verifications", tag = "feed", responses((status = 200, body = Data<Vec<VerificationView>>)))]
async fn story_verifications(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
) -> ApiResult<Json<Data<Vec<VerificationView>>>> {
    let detail = s.app.story_detail(&who, id(&story, "story")?).await?;
    let mut rows = detail.verifications;
    rows.reverse();
    Ok(Json(Data { data: rows }))
}

/// Saves a checkpoint; with `version`, a stale one is refused (`version_conflict`).
#[utoipa::path(put, path = "/api/v1/orchestrator/state/{project_id}", tag = "state", request_body = SaveState, responses((status = 200, body = StateAnswer)))]
async fn save_state(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
    Body(body): Body<SaveState>,
) -> ApiResult<Json<StateAnswer>> {
    let project = s.app.resolve_project(&who, &project).await?;
    Ok(Json(StateAnswer { state: s.app.save_state(&who, project.id, body).await? }))
}

#[utoipa::path(get, path = "/api/v1/orchestrator/state/{project_id}", tag = "state", params(StateParams), responses((status = 200, body = StateAnswer)))]
async fn load_state(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
    Params(q): Params<StateParams>,
) -> ApiResult<Json<StateAnswer>> {
    let project = s.app.resolve_project(&who, &project).await?;
    Ok(Json(StateAnswer { state: s.app.load_state(&who, project.id, q.state_key.as_deref()).await? }))
}

#[utoipa::path(get, path = "/api/v1/orchestrator/state/{project_id}/history", tag = "state", params(StateParams), responses((status = 200, body = DataMeta<Vec<StateVersion>, CountMeta>)))]
async fn state_history(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
    Params(q): Params<StateParams>,
) -> ApiResult<Json<DataMeta<Vec<StateVersion>, CountMeta>>> {
    let project = s.app.resolve_project(&who, &project).await?;
    let rows = s.app.state_history(&who, project.id, q.state_key.as_deref(), q.limit.unwrap_or(25)).await?;
    let meta = CountMeta { total_count: rows.len() };
    Ok(Json(DataMeta { data: rows, meta }))
}
