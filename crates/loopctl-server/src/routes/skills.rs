//! Skills: built-in and published prompt documents, pinned versions, results per version.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use loopctl_api::{
    CreateSkill, Data, PublishSkill, RecordSkillResult, SkillAnswer, SkillResultAnswer, SkillStats, SkillVersionAnswer,
    SkillVersionParams, SkillView, VersionAnswer,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiResult, Body, Caller, Params, Path};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_skills, create_skill))
        .routes(routes!(get_skill))
        .routes(routes!(publish_skill_version))
        .routes(routes!(get_skill_version))
        .routes(routes!(skill_stats))
        .routes(routes!(record_skill_result))
}

#[utoipa::path(get, path = "/api/v1/skills", tag = "skills", responses((status = 200, body = Data<Vec<SkillView>>)))]
async fn list_skills(State(s): State<AppState>, Caller(who): Caller) -> ApiResult<Json<Data<Vec<SkillView>>>> {
    Ok(Json(Data { data: s.app.list_skills(&who).await? }))
}

/// Publishes a skill (the next version when the name exists); user keys.
#[utoipa::path(post, path = "/api/v1/skills", tag = "skills", request_body = CreateSkill, responses((status = 201, body = SkillVersionAnswer)))]
async fn create_skill(
    State(s): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<CreateSkill>,
) -> ApiResult<(StatusCode, Json<SkillVersionAnswer>)> {
    let request =
        PublishSkill { prompt_text: body.prompt_text, changelog: body.changelog, description: body.description };
    let version = s.app.publish_skill(&who, &body.name, request).await?;
    Ok((StatusCode::CREATED, Json(SkillVersionAnswer { skill: version })))
}

/// The latest version of a skill, or `?version=N`.
#[utoipa::path(get, path = "/api/v1/skills/{name}", tag = "skills", params(SkillVersionParams), responses((status = 200, body = SkillAnswer)))]
async fn get_skill(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(name): Path<String>,
    Params(q): Params<SkillVersionParams>,
) -> ApiResult<Json<SkillAnswer>> {
    let skill = s.app.get_skill(&who, &name, q.version).await?;
    let current_prompt = skill.prompt_text.clone();
    Ok(Json(SkillAnswer { skill, current_prompt }))
}

#[utoipa::path(post, path = "/api/v1/skills/{name}/versions", tag = "skills", request_body = PublishSkill, responses((status = 201, body = VersionAnswer)))]
async fn publish_skill_version(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(name): Path<String>,
    Body(body): Body<PublishSkill>,
) -> ApiResult<(StatusCode, Json<VersionAnswer>)> {
    let version = s.app.publish_skill(&who, &name, body).await?;
    Ok((StatusCode::CREATED, Json(VersionAnswer { version })))
}

#[utoipa::path(get, path = "/api/v1/skills/{name}/versions/{version}", tag = "skills", responses((status = 200, body = VersionAnswer)))]
async fn get_skill_version(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<VersionAnswer>> {
    let version: i64 = version
        .parse()
        .map_err(|_| crate::ApiError::from(loopctl_app::AppError::field("version", "must be a whole number")))?;
    Ok(Json(VersionAnswer { version: s.app.get_skill(&who, &name, Some(version)).await? }))
}

/// Pass/fail counts per version.
#[utoipa::path(get, path = "/api/v1/skills/{name}/stats", tag = "skills", responses((status = 200, body = Data<SkillStats>)))]
async fn skill_stats(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Data<SkillStats>>> {
    Ok(Json(Data { data: s.app.skill_stats(&who, &name).await? }))
}

/// Records how a story went with a skill version.
#[utoipa::path(post, path = "/api/v1/skills/{name}/results", tag = "skills", request_body = RecordSkillResult, responses((status = 201, body = SkillResultAnswer)))]
async fn record_skill_result(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(name): Path<String>,
    Body(body): Body<RecordSkillResult>,
) -> ApiResult<(StatusCode, Json<SkillResultAnswer>)> {
    Ok((StatusCode::CREATED, Json(s.app.record_skill_result(&who, &name, body).await?)))
}
