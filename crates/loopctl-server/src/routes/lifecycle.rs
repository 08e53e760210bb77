//! The story lifecycle: contract → claim → start → report → review → verify / reject.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use loopctl_api::{
    BackfillRequest, ClaimNextRequest, ContractRequest, HeartbeatAnswer, ReasonRequest, RejectRequest, ReportRequest,
    ReviewAnswer, ReviewRequest, TransitionOutcome, VerifyAnswer, VerifyRequest,
};
use loopctl_app::once::answer_with;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiResult, Body, Caller, ClaimEpochHeader, OptionalBody, Path, claim_epoch, id};
use crate::idempotency::kept_as_is;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(contract_story))
        .routes(routes!(claim_story))
        .routes(routes!(claim_next))
        .routes(routes!(start_story))
        .routes(routes!(start_work))
        .routes(routes!(heartbeat_story))
        .routes(routes!(request_review))
        .routes(routes!(report_story))
        .routes(routes!(report_done))
        .routes(routes!(unclaim_story))
        .routes(routes!(force_unclaim_story))
        .routes(routes!(review_complete))
        .routes(routes!(verify_story))
        .routes(routes!(reject_story))
        .routes(routes!(backfill_story))
        .routes(routes!(clear_escalation))
}

type Outcome = ApiResult<Json<TransitionOutcome>>;

fn outcome(o: TransitionOutcome) -> Json<TransitionOutcome> {
    Json(o)
}

// A route answering with its transition's outcome says how (`answer_with`) before it runs
// the use case, so an Idempotency-Key's marker goes in with the answer and the writes.

fn render_outcome(o: &TransitionOutcome) -> Option<(u16, String)> {
    kept_as_is(StatusCode::OK, o)
}

fn heartbeat_answer(o: TransitionOutcome) -> HeartbeatAnswer {
    let lease_expires_at = o.story.lease_expires_at;
    HeartbeatAnswer { story: o.story, next_actions: o.next_actions, lease_expires_at }
}

fn render_heartbeat(o: &TransitionOutcome) -> Option<(u16, String)> {
    kept_as_is(StatusCode::OK, &heartbeat_answer(o.clone()))
}

fn verify_answer(o: TransitionOutcome) -> VerifyAnswer {
    VerifyAnswer { status: "verified".into(), run_id: None, story: o.story, next_actions: o.next_actions }
}

fn render_verify(o: &TransitionOutcome) -> Option<(u16, String)> {
    kept_as_is(StatusCode::ACCEPTED, &verify_answer(o.clone()))
}

/// Acknowledges the story: `{story_title, ac_count}` must match it.
#[utoipa::path(post, path = "/api/v1/stories/{id}/contract", tag = "lifecycle", request_body = ContractRequest, responses((status = 200, body = TransitionOutcome)))]
async fn contract_story(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
    OptionalBody(body): OptionalBody<ContractRequest>,
) -> Outcome {
    answer_with(render_outcome);
    Ok(outcome(s.app.contract_story(&who, id(&story, "story")?, body).await?))
}

/// Claims a contracted story; answers its `claim_epoch` and `lease_expires_at`.
#[utoipa::path(post, path = "/api/v1/stories/{id}/claim", tag = "lifecycle", responses((status = 200, body = TransitionOutcome)))]
async fn claim_story(State(s): State<AppState>, Caller(who): Caller, Path(story): Path<String>) -> Outcome {
    answer_with(render_outcome);
    Ok(outcome(s.app.claim_story(&who, id(&story, "story")?).await?))
}

/// Picks, contracts and claims the first ready story in one transaction.
#[utoipa::path(post, path = "/api/v1/stories/claim-next", tag = "lifecycle", request_body = ClaimNextRequest, responses((status = 200, body = TransitionOutcome)))]
async fn claim_next(State(s): State<AppState>, Caller(who): Caller, Body(body): Body<ClaimNextRequest>) -> Outcome {
    Ok(outcome(s.app.claim_next(&who, body).await?))
}

#[utoipa::path(post, path = "/api/v1/stories/{id}/start", tag = "lifecycle", responses((status = 200, body = TransitionOutcome)), params(ClaimEpochHeader))]
async fn start_story(
    State(s): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    Path(story): Path<String>,
) -> Outcome {
    answer_with(render_outcome);
    Ok(outcome(s.app.start_story(&who, id(&story, "story")?, claim_epoch(&headers)?).await?))
}

/// Alias of `start` (the reference's path).
#[utoipa::path(post, path = "/api/v1/stories/{id}/start-work", tag = "lifecycle", responses((status = 200, body = TransitionOutcome)), params(ClaimEpochHeader))]
async fn start_work(state: State<AppState>, caller: Caller, headers: HeaderMap, story: Path<String>) -> Outcome {
    start_story(state, caller, headers, story).await
}

/// Renews the claimant's lease.
#[utoipa::path(post, path = "/api/v1/stories/{id}/heartbeat", tag = "lifecycle", responses((status = 200, body = HeartbeatAnswer)), params(ClaimEpochHeader))]
async fn heartbeat_story(
    State(s): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    Path(story): Path<String>,
) -> ApiResult<Json<HeartbeatAnswer>> {
    answer_with(render_heartbeat);
    let o = s.app.heartbeat_story(&who, id(&story, "story")?, claim_epoch(&headers)?).await?;
    Ok(Json(heartbeat_answer(o)))
}

#[utoipa::path(post, path = "/api/v1/stories/{id}/request-review", tag = "lifecycle", responses((status = 200, body = TransitionOutcome)), params(ClaimEpochHeader))]
async fn request_review(
    State(s): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    Path(story): Path<String>,
) -> Outcome {
    answer_with(render_outcome);
    Ok(outcome(s.app.request_review(&who, id(&story, "story")?, claim_epoch(&headers)?).await?))
}

/// Reports the work done, with its artifacts.
#[utoipa::path(post, path = "/api/v1/stories/{id}/report", tag = "lifecycle", request_body = ReportRequest, responses((status = 200, body = TransitionOutcome)), params(ClaimEpochHeader))]
async fn report_story(
    State(s): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    Path(story): Path<String>,
    OptionalBody(body): OptionalBody<ReportRequest>,
) -> Outcome {
    answer_with(render_outcome);
    Ok(outcome(s.app.report_story(&who, id(&story, "story")?, body, claim_epoch(&headers)?).await?))
}

/// Alias of `report` (the reference's path).
#[utoipa::path(post, path = "/api/v1/stories/{id}/report-done", tag = "lifecycle", request_body = ReportRequest, responses((status = 200, body = TransitionOutcome)), params(ClaimEpochHeader))]
async fn report_done(
    state: State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    story: Path<String>,
    body: OptionalBody<ReportRequest>,
) -> Outcome {
    report_story(state, caller, headers, story, body).await
}

#[utoipa::path(post, path = "/api/v1/stories/{id}/unclaim", tag = "lifecycle", responses((status = 200, body = TransitionOutcome)), params(ClaimEpochHeader))]
async fn unclaim_story(
    State(s): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    Path(story): Path<String>,
) -> Outcome {
    answer_with(render_outcome);
    Ok(outcome(s.app.unclaim_story(&who, id(&story, "story")?, claim_epoch(&headers)?).await?))
}

/// Takes a story back (orchestrator or user); the old holder is fenced off by the new epoch.
#[utoipa::path(post, path = "/api/v1/stories/{id}/force-unclaim", tag = "lifecycle", request_body = ReasonRequest, responses((status = 200, body = TransitionOutcome)))]
async fn force_unclaim_story(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
    OptionalBody(body): OptionalBody<ReasonRequest>,
) -> Outcome {
    // No default reason: taking work away from an agent is audited with the caller's words.
    answer_with(render_outcome);
    Ok(outcome(s.app.force_unclaim_story(&who, id(&story, "story")?, body).await?))
}

/// Records a review by anyone but the implementer.
#[utoipa::path(post, path = "/api/v1/stories/{id}/review-complete", tag = "lifecycle", request_body = ReviewRequest, responses((status = 201, body = ReviewAnswer)))]
async fn review_complete(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
    OptionalBody(body): OptionalBody<ReviewRequest>,
) -> ApiResult<(StatusCode, Json<ReviewAnswer>)> {
    let review_record = s.app.review_complete(&who, id(&story, "story")?, body).await?;
    Ok((StatusCode::CREATED, Json(ReviewAnswer { review_record })))
}

/// Verifies a reported story (202, as the reference answers).
#[utoipa::path(post, path = "/api/v1/stories/{id}/verify", tag = "lifecycle", request_body = VerifyRequest, responses((status = 202, body = VerifyAnswer)))]
async fn verify_story(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
    OptionalBody(body): OptionalBody<VerifyRequest>,
) -> ApiResult<(StatusCode, Json<VerifyAnswer>)> {
    answer_with(render_verify);
    let o = s.app.verify_story(&who, id(&story, "story")?, body).await?;
    Ok((StatusCode::ACCEPTED, Json(verify_answer(o))))
}

/// Rejects with a reason: the story goes back to pending and its iteration count rises.
#[utoipa::path(post, path = "/api/v1/stories/{id}/reject", tag = "lifecycle", request_body = RejectRequest, responses((status = 200, body = TransitionOutcome)))]
async fn reject_story(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
    OptionalBody(body): OptionalBody<RejectRequest>,
) -> Outcome {
    answer_with(render_outcome);
    Ok(outcome(s.app.reject_story(&who, id(&story, "story")?, body).await?))
}

/// Marks work done outside loopctl as verified, with the reason recorded.
#[utoipa::path(post, path = "/api/v1/stories/{id}/backfill", tag = "lifecycle", request_body = BackfillRequest, responses((status = 200, body = TransitionOutcome)))]
async fn backfill_story(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
    OptionalBody(body): OptionalBody<BackfillRequest>,
) -> Outcome {
    answer_with(render_outcome);
    Ok(outcome(s.app.backfill_story(&who, id(&story, "story")?, body).await?))
}

/// Clears an escalation (user keys only).
#[utoipa::path(post, path = "/api/v1/stories/{id}/clear-escalation", tag = "lifecycle", request_body = ReasonRequest, responses((status = 200, body = TransitionOutcome)))]
async fn clear_escalation(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
    OptionalBody(body): OptionalBody<ReasonRequest>,
) -> Outcome {
    answer_with(render_outcome);
    Ok(outcome(s.app.clear_escalation(&who, id(&story, "story")?, body).await?))
}
