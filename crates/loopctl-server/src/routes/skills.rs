//! Skills: built-in and published prompt documents, pinned versions, results per version.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use loopctl_app::{PublishSkill, RecordSkillResult};
use serde::Deserialize;
use serde_json::{Value, json};
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

#[utoipa::path(get, path = "/api/v1/skills", tag = "skills")]
async fn list_skills(State(s): State<AppState>, Caller(who): Caller) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"data": s.app.list_skills(&who).await?})))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct CreateSkill {
    name: String,
    prompt_text: String,
    description: Option<String>,
    changelog: Option<String>,
}

/// Publishes a skill (the next version when the name exists); user keys.
#[utoipa::path(post, path = "/api/v1/skills", tag = "skills", request_body = CreateSkill)]
async fn create_skill(
    State(s): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<CreateSkill>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let request =
        PublishSkill { prompt_text: body.prompt_text, changelog: body.changelog, description: body.description };
    let version = s.app.publish_skill(&who, &body.name, request).await?;
    Ok((StatusCode::CREATED, Json(json!({"skill": version}))))
}

#[derive(Deserialize, Default)]
struct VersionQuery {
    version: Option<i64>,
}

/// The latest version of a skill, or `?version=N`.
#[utoipa::path(get, path = "/api/v1/skills/{name}", tag = "skills")]
async fn get_skill(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(name): Path<String>,
    Params(q): Params<VersionQuery>,
) -> ApiResult<Json<Value>> {
    let skill = s.app.get_skill(&who, &name, q.version).await?;
    let prompt = skill.prompt_text.clone();
    Ok(Json(json!({"skill": skill, "current_prompt": prompt})))
}

#[utoipa::path(post, path = "/api/v1/skills/{name}/versions", tag = "skills", request_body = PublishSkill)]
async fn publish_skill_version(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(name): Path<String>,
    Body(body): Body<PublishSkill>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let version = s.app.publish_skill(&who, &name, body).await?;
    Ok((StatusCode::CREATED, Json(json!({"version": version}))))
}

#[utoipa::path(get, path = "/api/v1/skills/{name}/versions/{version}", tag = "skills")]
async fn get_skill_version(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let version: i64 = version
        .parse()
        .map_err(|_| crate::ApiError(loopctl_app::AppError::field("version", "must be a whole number")))?;
    Ok(Json(json!({"version": s.app.get_skill(&who, &name, Some(version)).await?})))
}

/// Pass/fail counts per version.
#[utoipa::path(get, path = "/api/v1/skills/{name}/stats", tag = "skills")]
async fn skill_stats(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"data": s.app.skill_stats(&who, &name).await?})))
}

/// Records how a story went with a skill version.
#[utoipa::path(post, path = "/api/v1/skills/{name}/results", tag = "skills", request_body = RecordSkillResult)]
async fn record_skill_result(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(name): Path<String>,
    Body(body): Body<RecordSkillResult>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    Ok((StatusCode::CREATED, Json(s.app.record_skill_result(&who, &name, body).await?)))
}
