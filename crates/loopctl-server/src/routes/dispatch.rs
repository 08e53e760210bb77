//! Dispatch (capability tokens for sub-agents) and the bulk calls.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use loopctl_api::{
    BulkAnswer, BulkIds, BulkRefused, BulkResult, BulkStories, BulkStory, CountMeta, CreateDispatch, Data, DataMeta,
    DispatchAnswer, DispatchCreated, DispatchListParams, DispatchView, ErrorBody, ErrorCode, VerifyAll,
    VerifyAllAnswer,
};
use loopctl_app::BulkAction;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiResult, Body, Caller, OptionalBody, Params, Path, id};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_dispatch, list_dispatches))
        .routes(routes!(get_dispatch, revoke_dispatch))
        .routes(routes!(bulk_verify))
        .routes(routes!(bulk_reject))
        .routes(routes!(bulk_mark_complete))
        .routes(routes!(bulk_claim))
        .routes(routes!(verify_all_in_epic))
}

/// Mints a sub-agent identity and a token scoped to one story and one capacity (shown once).
#[utoipa::path(post, path = "/api/v1/dispatches", tag = "custody", request_body = CreateDispatch, responses((status = 201, body = Data<DispatchCreated>)))]
async fn create_dispatch(
    State(s): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<CreateDispatch>,
) -> ApiResult<(StatusCode, Json<Data<DispatchCreated>>)> {
    Ok((StatusCode::CREATED, Json(Data { data: s.app.create_dispatch(&who, body).await? })))
}

/// Dispatches with their lineage (which orchestrator dispatched which agent for which story).
#[utoipa::path(get, path = "/api/v1/dispatches", tag = "custody", params(DispatchListParams), responses((status = 200, body = DataMeta<Vec<DispatchView>, CountMeta>)))]
async fn list_dispatches(
    State(s): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<DispatchListParams>,
) -> ApiResult<Json<DataMeta<Vec<DispatchView>, CountMeta>>> {
    let rows = s.app.list_dispatches(&who, q.story_id, q.active_only.unwrap_or(false)).await?;
    let meta = CountMeta { total_count: rows.len() };
    Ok(Json(DataMeta { data: rows, meta }))
}

#[utoipa::path(get, path = "/api/v1/dispatches/{id}", tag = "custody", responses((status = 200, body = Data<DispatchView>)))]
async fn get_dispatch(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(dispatch): Path<String>,
) -> ApiResult<Json<Data<DispatchView>>> {
    Ok(Json(Data { data: s.app.get_dispatch(&who, id(&dispatch, "dispatch")?).await? }))
}

/// Revokes a dispatch and its token; the token then gets 401.
#[utoipa::path(delete, path = "/api/v1/dispatches/{id}", tag = "custody", responses((status = 200, body = Data<DispatchAnswer>)))]
async fn revoke_dispatch(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(dispatch): Path<String>,
) -> ApiResult<Json<Data<DispatchAnswer>>> {
    let dispatch = s.app.revoke_dispatch(&who, id(&dispatch, "dispatch")?).await?;
    Ok(Json(Data { data: DispatchAnswer { dispatch } }))
}

/// 200 with every story's result when at least one went through. When every story was
/// refused the call as a whole is a refusal: 422 in the API's error shape with the first
/// story's code (`self_verify_blocked`, …) and every result in `details`, so a client that reads
/// only `error.code` (an MCP client among them) still learns why; `results` stays at the top
/// level too, where the reference's clients read it.
fn bulk_answer(results: Vec<BulkResult>) -> Response {
    let first_refusal = results.iter().find(|r| r.status != "success");
    let any_success = results.iter().any(|r| r.status == "success");
    let Some(first) = first_refusal.filter(|_| !any_success) else {
        return Json(BulkAnswer { results }).into_response();
    };
    let code = first.code.unwrap_or(ErrorCode::ValidationFailed);
    let each: Vec<String> = results
        .iter()
        .map(|r| {
            format!(
                "{} {}: {}",
                r.story_id,
                r.code.map_or("refused", ErrorCode::as_str),
                r.reason.as_deref().unwrap_or("refused")
            )
        })
        .collect();
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    let error = ErrorBody {
        status: status.as_u16(),
        code,
        message: format!("every story was refused: {}", each.join("; ")),
        context: None,
        details: Some(json!({ "results": results })),
    };
    (status, Json(BulkRefused { error, results })).into_response()
}

async fn run_bulk(
    s: &AppState,
    who: &loopctl_app::Principal,
    action: BulkAction,
    stories: Vec<BulkStory>,
) -> ApiResult<Response> {
    Ok(bulk_answer(s.app.bulk(who, action, stories).await?))
}

/// Verifies each story with the same custody checks as a single verify; refused ones are reported.
#[utoipa::path(post, path = "/api/v1/stories/bulk/verify", tag = "custody", request_body = BulkStories, responses((status = 200, body = BulkAnswer), (status = 422, description = "every story was refused", body = BulkRefused)))]
async fn bulk_verify(
    State(s): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<BulkStories>,
) -> ApiResult<Response> {
    run_bulk(&s, &who, BulkAction::Verify, body.stories).await
}

#[utoipa::path(post, path = "/api/v1/stories/bulk/reject", tag = "custody", request_body = BulkStories, responses((status = 200, body = BulkAnswer), (status = 422, description = "every story was refused", body = BulkRefused)))]
async fn bulk_reject(
    State(s): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<BulkStories>,
) -> ApiResult<Response> {
    run_bulk(&s, &who, BulkAction::Reject, body.stories).await
}

/// Marks reported stories complete (a verify per story, custody included).
#[utoipa::path(post, path = "/api/v1/stories/bulk/mark-complete", tag = "custody", request_body = BulkStories, responses((status = 200, body = BulkAnswer), (status = 422, description = "every story was refused", body = BulkRefused)))]
async fn bulk_mark_complete(
    State(s): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<BulkStories>,
) -> ApiResult<Response> {
    run_bulk(&s, &who, BulkAction::MarkComplete, body.stories).await
}

#[utoipa::path(post, path = "/api/v1/stories/bulk/claim", tag = "custody", request_body = BulkIds, responses((status = 200, body = BulkAnswer), (status = 422, description = "every story was refused", body = BulkRefused)))]
async fn bulk_claim(State(s): State<AppState>, Caller(who): Caller, Body(body): Body<BulkIds>) -> ApiResult<Response> {
    let stories = body
        .story_ids
        .into_iter()
        .map(|story_id| BulkStory { story_id, summary: None, review_type: None, reason: None, findings: None })
        .collect();
    run_bulk(&s, &who, BulkAction::Claim, stories).await
}

/// Verifies every reported story of the epic this caller may verify.
#[utoipa::path(post, path = "/api/v1/epics/{id}/verify-all", tag = "custody", request_body = VerifyAll, responses((status = 200, body = VerifyAllAnswer)))]
async fn verify_all_in_epic(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(epic): Path<String>,
    OptionalBody(body): OptionalBody<VerifyAll>,
) -> ApiResult<Json<VerifyAllAnswer>> {
    Ok(Json(s.app.verify_all_in_epic(&who, id(&epic, "epic")?, body.summary, body.review_type).await?))
}
