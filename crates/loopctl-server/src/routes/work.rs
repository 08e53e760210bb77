//! Projects, epics, stories, dependencies.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use loopctl_api::{
    AgentStatusCounts, BudgetAnswer, CreateEpic, CreateEpicDependency, CreateProject, CreateStory,
    CreateStoryDependency, Data, DataMeta, EpicAnswer, EpicDependencyAnswer, EpicDependencyView, EpicStatusAnswer,
    EpicStatusCounts, EpicStoryParams, EpicView, GraphAnswer, PageInfo, ProgressAnswer, ProjectAnswer, ProjectBudget,
    ProjectListParams, ProjectView, RunnerAnswer, RunnerConfig, StoryAnswer, StoryBrief, StoryDependencyAnswer,
    StoryDependencyView, StoryDetailAnswer, StoryListAnswer, StoryListParams, StoryView, UpdateEpic, UpdateProject,
    UpdateStory, VerifiedStatusCounts,
};
use loopctl_app::StoryQuery;
use loopctl_app::view::FromRecordAt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiResult, Body, Caller, Params, Path, id};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_project, list_projects))
        .routes(routes!(get_project, update_project, archive_project))
        .routes(routes!(project_progress))
        .routes(routes!(set_project_runner))
        .routes(routes!(set_project_budget))
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

#[utoipa::path(post, path = "/api/v1/projects", tag = "work", request_body = CreateProject, responses((status = 201, body = ProjectAnswer)))]
async fn create_project(
    State(s): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<CreateProject>,
) -> ApiResult<(StatusCode, Json<ProjectAnswer>)> {
    Ok((StatusCode::CREATED, Json(ProjectAnswer { project: s.app.create_project(&who, body).await? })))
}

#[utoipa::path(get, path = "/api/v1/projects", tag = "work", params(ProjectListParams), responses((status = 200, body = DataMeta<Vec<ProjectView>, PageInfo>)))]
async fn list_projects(
    State(s): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<ProjectListParams>,
) -> ApiResult<Json<DataMeta<Vec<ProjectView>, PageInfo>>> {
    let include_archived = q.include_archived.unwrap_or(false) || q.status.as_deref() == Some("archived");
    let mut projects = s.app.list_projects(&who, include_archived).await?;
    if let Some(status) = &q.status {
        projects.retain(|p| &p.status == status);
    }
    let meta = PageInfo::whole(projects.len());
    Ok(Json(DataMeta { data: projects, meta }))
}

/// A project by UUID, slug or name.
#[utoipa::path(get, path = "/api/v1/projects/{id}", tag = "work", responses((status = 200, body = ProjectAnswer)))]
async fn get_project(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
) -> ApiResult<Json<ProjectAnswer>> {
    let project = s.app.resolve_project(&who, &project).await?;
    Ok(Json(ProjectAnswer { project: s.app.get_project(&who, project.id).await? }))
}

#[utoipa::path(patch, path = "/api/v1/projects/{id}", tag = "work", request_body = UpdateProject, responses((status = 200, body = ProjectAnswer)))]
async fn update_project(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
    Body(body): Body<UpdateProject>,
) -> ApiResult<Json<ProjectAnswer>> {
    Ok(Json(ProjectAnswer { project: s.app.update_project(&who, id(&project, "project")?, body).await? }))
}

/// Configures the verifier runner of a project (users only).
#[utoipa::path(put, path = "/api/v1/projects/{id}/runner", tag = "work", request_body = RunnerConfig, responses((status = 200, body = RunnerAnswer)))]
async fn set_project_runner(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
    Body(body): Body<RunnerConfig>,
) -> ApiResult<Json<RunnerAnswer>> {
    Ok(Json(RunnerAnswer { runner: s.app.set_project_runner(&who, id(&project, "project")?, body).await? }))
}

/// Sets the project's token and cost budget, where `orchestrate` stops dispatching (users only).
#[utoipa::path(put, path = "/api/v1/projects/{id}/budget", tag = "work", request_body = ProjectBudget, responses((status = 200, body = BudgetAnswer)))]
async fn set_project_budget(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
    Body(body): Body<ProjectBudget>,
) -> ApiResult<Json<BudgetAnswer>> {
    Ok(Json(BudgetAnswer { budget: s.app.set_project_budget(&who, id(&project, "project")?, body).await? }))
}

/// Archives the project (nothing is deleted).
#[utoipa::path(delete, path = "/api/v1/projects/{id}", tag = "work", responses((status = 200, body = ProjectAnswer)))]
async fn archive_project(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
) -> ApiResult<Json<ProjectAnswer>> {
    Ok(Json(ProjectAnswer { project: s.app.archive_project(&who, id(&project, "project")?).await? }))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/progress", tag = "work", responses((status = 200, body = ProgressAnswer)))]
async fn project_progress(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
) -> ApiResult<Json<ProgressAnswer>> {
    Ok(Json(ProgressAnswer { progress: s.app.project_progress(&who, id(&project, "project")?).await? }))
}

#[utoipa::path(post, path = "/api/v1/projects/{id}/epics", tag = "work", request_body = CreateEpic, responses((status = 201, body = EpicAnswer)))]
async fn create_epic(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
    Body(body): Body<CreateEpic>,
) -> ApiResult<(StatusCode, Json<EpicAnswer>)> {
    let epic = s.app.create_epic(&who, id(&project, "project")?, body).await?;
    Ok((StatusCode::CREATED, Json(EpicAnswer { epic })))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/epics", tag = "work", responses((status = 200, body = DataMeta<Vec<EpicView>, PageInfo>)))]
async fn list_epics(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
) -> ApiResult<Json<DataMeta<Vec<EpicView>, PageInfo>>> {
    let epics = s.app.list_epics(&who, id(&project, "project")?).await?;
    let meta = PageInfo::whole(epics.len());
    Ok(Json(DataMeta { data: epics, meta }))
}

#[utoipa::path(get, path = "/api/v1/epics/{id}", tag = "work", responses((status = 200, body = EpicAnswer)))]
async fn get_epic(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(epic): Path<String>,
) -> ApiResult<Json<EpicAnswer>> {
    Ok(Json(EpicAnswer { epic: s.app.get_epic(&who, id(&epic, "epic")?).await? }))
}

#[utoipa::path(patch, path = "/api/v1/epics/{id}", tag = "work", request_body = UpdateEpic, responses((status = 200, body = EpicAnswer)))]
async fn update_epic(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(epic): Path<String>,
    Body(body): Body<UpdateEpic>,
) -> ApiResult<Json<EpicAnswer>> {
    Ok(Json(EpicAnswer { epic: s.app.update_epic(&who, id(&epic, "epic")?, body).await? }))
}

#[utoipa::path(delete, path = "/api/v1/epics/{id}", tag = "work", responses((status = 204, description = "deleted")))]
async fn delete_epic(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(epic): Path<String>,
) -> ApiResult<StatusCode> {
    s.app.delete_epic(&who, id(&epic, "epic")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/epics/{id}/progress", tag = "work", responses((status = 200, body = EpicStatusAnswer)))]
async fn epic_progress(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(epic): Path<String>,
) -> ApiResult<Json<EpicStatusAnswer>> {
    let epic = s.app.get_epic(&who, id(&epic, "epic")?).await?;
    let stories = epic.stories.unwrap_or_default();
    let count = |f: &dyn Fn(&StoryBrief) -> bool| stories.iter().filter(|st| f(st)).count();
    let progress = EpicStatusCounts {
        stories_by_agent_status: AgentStatusCounts {
            pending: count(&|st| st.agent_status == "pending"),
            contracted: count(&|st| st.agent_status == "contracted"),
            assigned: count(&|st| st.agent_status == "assigned"),
            implementing: count(&|st| st.agent_status == "implementing"),
            reported_done: count(&|st| st.agent_status == "reported_done"),
        },
        stories_by_verified_status: VerifiedStatusCounts {
            unverified: count(&|st| st.verified_status == "unverified"),
            verified: count(&|st| st.verified_status == "verified"),
            rejected: count(&|st| st.verified_status == "rejected"),
        },
    };
    Ok(Json(EpicStatusAnswer { progress }))
}

#[utoipa::path(post, path = "/api/v1/epics/{id}/stories", tag = "work", request_body = CreateStory, responses((status = 201, body = StoryAnswer)))]
async fn create_epic_story(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(epic): Path<String>,
    Body(body): Body<CreateStory>,
) -> ApiResult<(StatusCode, Json<StoryAnswer>)> {
    let story = s.app.create_story(&who, Some(id(&epic, "epic")?), None, body).await?;
    Ok((StatusCode::CREATED, Json(StoryAnswer { story })))
}

#[utoipa::path(get, path = "/api/v1/epics/{id}/stories", tag = "work", params(EpicStoryParams), responses((status = 200, body = DataMeta<Vec<StoryView>, PageInfo>)))]
async fn list_epic_stories(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(epic): Path<String>,
    Params(q): Params<EpicStoryParams>,
) -> ApiResult<Json<DataMeta<Vec<StoryView>, PageInfo>>> {
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
    let total_count = stories.meta.total_count;
    let total_pages = total_count.saturating_add(page_size - 1) / page_size;
    Ok(Json(DataMeta { data: stories.data, meta: PageInfo { page, page_size, total_count, total_pages } }))
}

#[utoipa::path(post, path = "/api/v1/projects/{id}/stories", tag = "work", request_body = CreateStory, responses((status = 201, body = StoryAnswer)))]
async fn create_project_story(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
    Body(body): Body<CreateStory>,
) -> ApiResult<(StatusCode, Json<StoryAnswer>)> {
    let story = s.app.create_story(&who, None, Some(id(&project, "project")?), body).await?;
    Ok((StatusCode::CREATED, Json(StoryAnswer { story })))
}

/// Lists a project's stories; with `number`, answers that one story.
#[utoipa::path(get, path = "/api/v1/stories", tag = "work", params(StoryListParams), responses((status = 200, body = StoryListAnswer)))]
async fn list_stories(
    State(s): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<StoryListParams>,
) -> ApiResult<Json<StoryListAnswer>> {
    let project = q.project_id.as_deref().ok_or_else(|| {
        crate::ApiError::transport(
            axum::http::StatusCode::BAD_REQUEST,
            loopctl_app::AppError::validation("project_id query parameter is required"),
        )
    })?;
    let project = s.app.resolve_project(&who, project).await?;
    if let Some(number) = q.number {
        let story = s.app.resolve_story(&who, Some(project.id), &number).await?;
        return Ok(Json(StoryListAnswer::One(Box::new(StoryAnswer {
            story: StoryView::from_record_at(&story, s.app.now()),
        }))));
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
    Ok(Json(StoryListAnswer::Page(page)))
}

/// One story with its dependencies, artifacts, reviews and verifications.
#[utoipa::path(get, path = "/api/v1/stories/{id}", tag = "work", responses((status = 200, body = StoryDetailAnswer)))]
async fn get_story(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
) -> ApiResult<Json<StoryDetailAnswer>> {
    Ok(Json(StoryDetailAnswer { story: s.app.story_detail(&who, id(&story, "story")?).await? }))
}

#[utoipa::path(patch, path = "/api/v1/stories/{id}", tag = "work", request_body = UpdateStory, responses((status = 200, body = StoryAnswer)))]
async fn update_story(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
    Body(body): Body<UpdateStory>,
) -> ApiResult<Json<StoryAnswer>> {
    Ok(Json(StoryAnswer { story: s.app.update_story(&who, id(&story, "story")?, body).await? }))
}

#[utoipa::path(delete, path = "/api/v1/stories/{id}", tag = "work", responses((status = 204, description = "deleted")))]
async fn delete_story(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(story): Path<String>,
) -> ApiResult<StatusCode> {
    s.app.delete_story(&who, id(&story, "story")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/story_dependencies", tag = "work", request_body = CreateStoryDependency, responses((status = 201, body = StoryDependencyAnswer)))]
async fn create_story_dependency(
    State(s): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<CreateStoryDependency>,
) -> ApiResult<(StatusCode, Json<StoryDependencyAnswer>)> {
    let story_dependency = s.app.add_story_dependency(&who, body).await?;
    Ok((StatusCode::CREATED, Json(StoryDependencyAnswer { story_dependency })))
}

#[utoipa::path(delete, path = "/api/v1/story_dependencies/{id}", tag = "work", responses((status = 204, description = "deleted")))]
async fn delete_story_dependency(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(dep): Path<String>,
) -> ApiResult<StatusCode> {
    s.app.delete_story_dependency(&who, id(&dep, "dependency")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/epic_dependencies", tag = "work", request_body = CreateEpicDependency, responses((status = 201, body = EpicDependencyAnswer)))]
async fn create_epic_dependency(
    State(s): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<CreateEpicDependency>,
) -> ApiResult<(StatusCode, Json<EpicDependencyAnswer>)> {
    let epic_dependency = s.app.add_epic_dependency(&who, body).await?;
    Ok((StatusCode::CREATED, Json(EpicDependencyAnswer { epic_dependency })))
}

#[utoipa::path(delete, path = "/api/v1/epic_dependencies/{id}", tag = "work", responses((status = 204, description = "deleted")))]
async fn delete_epic_dependency(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(dep): Path<String>,
) -> ApiResult<StatusCode> {
    s.app.delete_epic_dependency(&who, id(&dep, "dependency")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/epic_dependencies", tag = "work", responses((status = 200, body = Data<Vec<EpicDependencyView>>)))]
async fn list_epic_dependencies(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
) -> ApiResult<Json<Data<Vec<EpicDependencyView>>>> {
    Ok(Json(Data { data: s.app.list_epic_dependencies(&who, id(&project, "project")?).await? }))
}

#[utoipa::path(get, path = "/api/v1/epics/{id}/story_dependencies", tag = "work", responses((status = 200, body = Data<Vec<StoryDependencyView>>)))]
async fn list_story_dependencies(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(epic): Path<String>,
) -> ApiResult<Json<Data<Vec<StoryDependencyView>>>> {
    Ok(Json(Data { data: s.app.list_story_dependencies(&who, id(&epic, "epic")?).await? }))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/dependency_graph", tag = "work", responses((status = 200, body = GraphAnswer)))]
async fn dependency_graph(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
) -> ApiResult<Json<GraphAnswer>> {
    Ok(Json(s.app.dependency_graph(&who, id(&project, "project")?).await?))
}
