//! Projects, epics, stories, dependencies.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use loopctl_app::{
    CreateEpic, CreateEpicDependency, CreateProject, CreateStory, CreateStoryDependency, StoryQuery, UpdateEpic,
    UpdateProject, UpdateStory,
};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiResult, Body, Caller, Params, Path, id};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_project, list_projects))
        .routes(routes!(get_project, update_project, archive_project))
        .routes(routes!(project_progress))
        .routes(routes!(set_project_runner))
        .routes(routes!(create_epic, list_epics))
        .routes(routes!(get_epic, update_epic, delete_epic))
        .routes(routes!(epic_progress))
        .routes(routes!(create_epic_story, list_epic_stories))
        .routes(routes!(create_project_story))
        .routes(routes!(list_stories))
        .routes(routes!(get_story, update_story, delete_story))
        .routes(routes!(create_story_dependency))
        .routes(routes!(delete_story_dependency))
        .routes(routes!(create_epic_dependency))
        .routes(routes!(delete_epic_dependency))
        .routes(routes!(list_epic_dependencies))
        .routes(routes!(list_story_dependencies))
        .routes(routes!(dependency_graph))
}

#[utoipa::path(post, path = "/api/v1/projects", tag = "work", request_body = CreateProject)]
async fn create_project(
    State(s): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<CreateProject>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    Ok((StatusCode::CREATED, Json(json!({"project": s.app.create_project(&who, body).await?}))))
}

#[derive(Deserialize, Default)]
struct ProjectListQuery {
    include_archived: Option<bool>,
    status: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/projects", tag = "work")]
async fn list_projects(
    State(s): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<ProjectListQuery>,
) -> ApiResult<Json<Value>> {
    let include_archived = q.include_archived.unwrap_or(false) || q.status.as_deref() == Some("archived");
    let mut projects = s.app.list_projects(&who, include_archived).await?;
    if let Some(status) = &q.status {
        projects.retain(|p| &p.status == status);
    }
    let total = projects.len();
    Ok(Json(json!({"data": projects, "meta": {"page": 1, "page_size": total, "total_count": total, "total_pages": 1}})))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}", tag = "work")]
async fn get_project(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
) -> ApiResult<Json<Value>> {
    let project = s.app.resolve_project(&who, &project).await?;
    Ok(Json(json!({"project": s.app.get_project(&who, project.id).await?})))
}

#[utoipa::path(patch, path = "/api/v1/projects/{id}", tag = "work", request_body = UpdateProject)]
async fn update_project(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
    Body(body): Body<UpdateProject>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"project": s.app.update_project(&who, id(&project, "project")?, body).await?})))
}

/// Configures the verifier runner of a project (users only).
#[utoipa::path(put, path = "/api/v1/projects/{id}/runner", tag = "work", request_body = loopctl_app::RunnerConfig)]
async fn set_project_runner(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
    Body(body): Body<loopctl_app::RunnerConfig>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"runner": s.app.set_project_runner(&who, id(&project, "project")?, body).await?})))
}

/// Archives the project (nothing is deleted).
#[utoipa::path(delete, path = "/api/v1/projects/{id}", tag = "work")]
async fn archive_project(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"project": s.app.archive_project(&who, id(&project, "project")?).await?})))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/progress", tag = "work")]
async fn project_progress(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"progress": s.app.project_progress(&who, id(&project, "project")?).await?})))
}

#[utoipa::path(post, path = "/api/v1/projects/{id}/epics", tag = "work", request_body = CreateEpic)]
async fn create_epic(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
    Body(body): Body<CreateEpic>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let epic = s.app.create_epic(&who, id(&project, "project")?, body).await?;
    Ok((StatusCode::CREATED, Json(json!({"epic": epic}))))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/epics", tag = "work")]
async fn list_epics(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
) -> ApiResult<Json<Value>> {
    let epics = s.app.list_epics(&who, id(&project, "project")?).await?;
    let total = epics.len();
    Ok(Json(json!({"data": epics, "meta": {"page": 1, "page_size": total, "total_count": total, "total_pages": 1}})))
}

#[utoipa::path(get, path = "/api/v1/epics/{id}", tag = "work")]
async fn get_epic(State(s): State<AppState>, Caller(who): Caller, Path(epic): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"epic": s.app.get_epic(&who, id(&epic, "epic")?).await?})))
}

#[utoipa::path(patch, path = "/api/v1/epics/{id}", tag = "work", request_body = UpdateEpic)]
async fn update_epic(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(epic): Path<String>,
    Body(body): Body<UpdateEpic>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"epic": s.app.update_epic(&who, id(&epic, "epic")?, body).await?})))
}

#[utoipa::path(delete, path = "/api/v1/epics/{id}", tag = "work")]
async fn delete_epic(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(epic): Path<String>,
) -> ApiResult<StatusCode> {
    s.app.delete_epic(&who, id(&epic, "epic")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/epics/{id}/progress", tag = "work")]
async fn epic_progress(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(epic): Path<String>,
) -> ApiResult<Json<Value>> {
    let epic = s.app.get_epic(&who, id(&epic, "epic")?).await?;
    let stories = epic.stories.unwrap_or_default();
    let count = |f: &dyn Fn(&loopctl_app::view::StoryBrief) -> bool| stories.iter().filter(|st| f(st)).count();
    Ok(Json(json!({"progress": {
        "stories_by_agent_status": {
            "pending": count(&|st| st.agent_status == "pending"),
            "contracted": count(&|st| st.agent_status == "contracted"),
            "assigned": count(&|st| st.agent_status == "assigned"),
            "implementing": count(&|st| st.agent_status == "implementing"),
            "reported_done": count(&|st| st.agent_status == "reported_done"),
        },
        "stories_by_verified_status": {
            "unverified": count(&|st| st.verified_status == "unverified"),
            "verified": count(&|st| st.verified_status == "verified"),
            "rejected": count(&|st| st.verified_status == "rejected"),
        },
    }})))
}

#[utoipa::path(post, path = "/api/v1/epics/{id}/stories", tag = "work", request_body = CreateStory)]
async fn create_epic_story(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(epic): Path<String>,
    Body(body): Body<CreateStory>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let story = s.app.create_story(&who, Some(id(&epic, "epic")?), None, body).await?;
    Ok((StatusCode::CREATED, Json(json!({"story": story}))))
}

#[derive(Deserialize, Default)]
struct EpicStoriesQuery {
    agent_status: Option<String>,
    verified_status: Option<String>,
    page: Option<i64>,
    page_size: Option<i64>,
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/epics/{id}/stories", tag = "work")]
async fn list_epic_stories(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(epic): Path<String>,
    Params(q): Params<EpicStoriesQuery>,
) -> ApiResult<Json<Value>> {
    let epic = s.app.get_epic(&who, id(&epic, "epic")?).await?;
    let page_size = q.page_size.or(q.limit).unwrap_or(100).clamp(1, 500);
    let page = q.page.unwrap_or(1).max(1);
    let query = StoryQuery {
        project_id: epic.project_id,
        epic_id: Some(epic.id),
        agent_status: q.agent_status,
        verified_status: q.verified_status,
        limit: Some(page_size),
        offset: Some((page - 1).saturating_mul(page_size)),
    };
    let stories = s.app.list_stories(&who, query).await?;
    let total = stories.meta.total_count;
    Ok(Json(
        json!({"data": stories.data, "meta": {"page": page, "page_size": page_size, "total_count": total, "total_pages": total.saturating_add(page_size - 1) / page_size}}),
    ))
}

#[utoipa::path(post, path = "/api/v1/projects/{id}/stories", tag = "work", request_body = CreateStory)]
async fn create_project_story(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
    Body(body): Body<CreateStory>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let story = s.app.create_story(&who, None, Some(id(&project, "project")?), body).await?;
    Ok((StatusCode::CREATED, Json(json!({"story": story}))))
}

#[derive(Deserialize, Default)]
struct StoriesQuery {
    project_id: Option<String>,
    epic_id: Option<Uuid>,
    agent_status: Option<String>,
    verified_status: Option<String>,
    number: Option<String>,
    limit: Option<i64>,
    page_size: Option<i64>,
    offset: Option<i64>,
}

/// Lists a project's stories; with `number`, answers that one story.
#[utoipa::path(get, path = "/api/v1/stories", tag = "work")]
async fn list_stories(
    State(s): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<StoriesQuery>,
) -> ApiResult<Json<Value>> {
    let project = q.project_id.as_deref().ok_or_else(|| {
        crate::ApiError(loopctl_app::AppError::new(400, "validation_failed", "project_id query parameter is required"))
    })?;
    let project = s.app.resolve_project(&who, project).await?;
    if let Some(number) = q.number {
        let story = s.app.resolve_story(&who, Some(project.id), &number).await?;
        return Ok(Json(json!({"story": loopctl_app::view::StoryView::from(&story)})));
    }
    let page = s
        .app
        .list_stories(
            &who,
            StoryQuery {
                project_id: project.id,
                epic_id: q.epic_id,
                agent_status: q.agent_status,
                verified_status: q.verified_status,
                limit: q.limit.or(q.page_size),
                offset: q.offset,
            },
        )
        .await?;
    Ok(Json(json!(page)))
}

/// One story with its dependencies, artifacts, reviews and verifications.
#[utoipa::path(get, path = "/api/v1/stories/{id}", tag = "work")]
async fn get_story(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"story": s.app.story_detail(&who, id(&story, "story")?).await?})))
}

#[utoipa::path(patch, path = "/api/v1/stories/{id}", tag = "work", request_body = UpdateStory)]
async fn update_story(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
    Body(body): Body<UpdateStory>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"story": s.app.update_story(&who, id(&story, "story")?, body).await?})))
}

#[utoipa::path(delete, path = "/api/v1/stories/{id}", tag = "work")]
async fn delete_story(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
) -> ApiResult<StatusCode> {
    s.app.delete_story(&who, id(&story, "story")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/story_dependencies", tag = "work", request_body = CreateStoryDependency)]
async fn create_story_dependency(
    State(s): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<CreateStoryDependency>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let dep = s.app.add_story_dependency(&who, body).await?;
    Ok((StatusCode::CREATED, Json(json!({"story_dependency": dep}))))
}

#[utoipa::path(delete, path = "/api/v1/story_dependencies/{id}", tag = "work")]
async fn delete_story_dependency(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(dep): Path<String>,
) -> ApiResult<StatusCode> {
    s.app.delete_story_dependency(&who, id(&dep, "dependency")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/epic_dependencies", tag = "work", request_body = CreateEpicDependency)]
async fn create_epic_dependency(
    State(s): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<CreateEpicDependency>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let dep = s.app.add_epic_dependency(&who, body).await?;
    Ok((StatusCode::CREATED, Json(json!({"epic_dependency": dep}))))
}

#[utoipa::path(delete, path = "/api/v1/epic_dependencies/{id}", tag = "work")]
async fn delete_epic_dependency(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(dep): Path<String>,
) -> ApiResult<StatusCode> {
    s.app.delete_epic_dependency(&who, id(&dep, "dependency")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/epic_dependencies", tag = "work")]
async fn list_epic_dependencies(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"data": s.app.list_epic_dependencies(&who, id(&project, "project")?).await?})))
}

#[utoipa::path(get, path = "/api/v1/epics/{id}/story_dependencies", tag = "work")]
async fn list_story_dependencies(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(epic): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"data": s.app.list_story_dependencies(&who, id(&epic, "epic")?).await?})))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/dependency_graph", tag = "work")]
async fn dependency_graph(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(s.app.dependency_graph(&who, id(&project, "project")?).await?))
}
