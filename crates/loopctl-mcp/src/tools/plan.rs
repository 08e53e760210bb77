//! Planning by hand: epics, story edits, and dependencies (whole breakdowns go through
//! import_stories).

use loopctl_client::{Method, encode_component};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::story::{StoryRef, text};
use super::{Effect, Outcome, Tier, ToolResult, ToolSpec, spec};
use crate::ctx::Ctx;
use crate::rows::{self, STORY_ROW};
use crate::speak::KeyRole;

pub(super) fn specs() -> Vec<ToolSpec> {
    vec![
        spec(
            Tier::Standard,
            "list_epics",
            "A project's epics (id, number, title, phase, story_count, completion_percentage).",
            Effect::Read,
            list_epics,
        ),
        spec(Tier::All, "get_epic", "One epic with its stories in compact rows.", Effect::Read, get_epic),
        spec(
            Tier::All,
            "create_epic",
            "Add one epic to a project (for whole breakdowns use import_stories).",
            Effect::Write,
            create_epic,
        ),
        spec(
            Tier::All,
            "update_story",
            "Change a story's title, description, acceptance criteria, estimate or metadata (not its status).",
            Effect::Write,
            update_story,
        ),
        spec(
            Tier::All,
            "add_story_dependency",
            "Make a story wait for another story's verification (cycles are refused).",
            Effect::Write,
            add_story_dependency,
        ),
        spec(
            Tier::All,
            "add_epic_dependency",
            "Make every story of an epic wait for another epic's stories (cycles are refused).",
            Effect::Write,
            add_epic_dependency,
        ),
        spec(
            Tier::All,
            "remove_dependency",
            "User: delete a story or epic dependency by its id (kind: story or epic).",
            Effect::Destroy,
            remove_dependency,
        ),
    ]
}

#[derive(Deserialize, JsonSchema)]
struct ProjectOnly {
    /// Project UUID or slug.
    project_id: Option<String>,
}

async fn list_epics(ctx: Ctx, params: ProjectOnly) -> ToolResult {
    let project = ctx.project_id(params.project_id.as_deref()).await?;
    let answer = ctx.get(&format!("/api/v1/projects/{project}/epics"), Vec::new()).await?;
    let base = ["id", "number", "title", "phase", "story_count", "completion_percentage"];
    let rows: Vec<Value> = answer["data"]
        .as_array()
        .map(|epics| epics.iter().map(|e| rows::pick(e, &base, None)).collect())
        .unwrap_or_default();
    let titles: Vec<String> =
        rows.iter().map(|e| format!("{} {}", e["number"], e["title"].as_str().unwrap_or(""))).collect();
    Ok(Outcome::new(json!({"data": rows}), format!("{} epic(s): {}", rows.len(), titles.join("; "))))
}

#[derive(Deserialize, JsonSchema)]
struct EpicParam {
    /// Epic UUID.
    epic_id: String,
}

async fn get_epic(ctx: Ctx, params: EpicParam) -> ToolResult {
    let answer = ctx.get(&format!("/api/v1/epics/{}", encode_component(params.epic_id.trim())), Vec::new()).await?;
    let mut epic = answer["epic"].clone();
    if let Some(stories) = epic["stories"].as_array() {
        epic["stories"] = json!(rows::pick_all(stories, STORY_ROW, None));
    }
    let summary = format!("epic {} \"{}\"", epic["number"], epic["title"].as_str().unwrap_or(""));
    Ok(Outcome::new(json!({"epic": epic}), summary))
}

#[derive(Deserialize, JsonSchema)]
struct CreateEpicParams {
    /// Project UUID or slug.
    project_id: Option<String>,
    number: i64,
    title: String,
    description: Option<String>,
    phase: Option<String>,
    position: Option<i64>,
}

async fn create_epic(ctx: Ctx, params: CreateEpicParams) -> ToolResult {
    let project = ctx.project_id(params.project_id.as_deref()).await?;
    let mut body = json!({"number": params.number, "title": params.title});
    if let Some(description) = params.description {
        body["description"] = json!(description);
    }
    if let Some(phase) = params.phase {
        body["phase"] = json!(phase);
    }
    if let Some(position) = params.position {
        body["position"] = json!(position);
    }
    let path = format!("/api/v1/projects/{project}/epics");
    let answer = ctx.send(KeyRole::Orchestrator, Method::POST, &path, Some(body)).await?;
    let summary =
        format!("created epic {} ({})", answer["epic"]["number"], answer["epic"]["id"].as_str().unwrap_or("?"));
    Ok(Outcome::new(answer, summary))
}

#[derive(Deserialize, JsonSchema)]
struct UpdateStoryParams {
    #[serde(flatten)]
    story: StoryRef,
    title: Option<String>,
    description: Option<String>,
    acceptance_criteria: Option<Vec<Value>>,
    estimated_hours: Option<f64>,
    metadata: Option<Value>,
}

async fn update_story(ctx: Ctx, params: UpdateStoryParams) -> ToolResult {
    let id = params.story.resolve(&ctx).await?;
    let body = json!({
        "title": params.title,
        "description": params.description,
        "acceptance_criteria": params.acceptance_criteria,
        "estimated_hours": params.estimated_hours,
        "metadata": params.metadata,
    });
    let body = Value::Object(
        body.as_object().cloned().unwrap_or_default().into_iter().filter(|(_, v)| !v.is_null()).collect(),
    );
    let answer = ctx.send(KeyRole::Orchestrator, Method::PATCH, &format!("/api/v1/stories/{id}"), Some(body)).await?;
    let summary = format!("updated {}", rows::story_line(&answer["story"]));
    Ok(Outcome::new(answer, summary))
}

#[derive(Deserialize, JsonSchema)]
struct StoryDependencyParams {
    #[serde(flatten)]
    story: StoryRef,
    /// The story it waits for: UUID or number.
    #[serde(deserialize_with = "text")]
    depends_on_story_id: String,
}

async fn add_story_dependency(ctx: Ctx, params: StoryDependencyParams) -> ToolResult {
    let story = params.story.resolve(&ctx).await?;
    let depends_on = ctx.story_id(&params.depends_on_story_id, params.story.project_id.as_deref()).await?;
    let body = json!({"story_id": story, "depends_on_story_id": depends_on});
    let answer = ctx.send(KeyRole::Orchestrator, Method::POST, "/api/v1/story_dependencies", Some(body)).await?;
    Ok(Outcome::new(answer, format!("story {} now waits for {}", params.story.story_id, params.depends_on_story_id)))
}

#[derive(Deserialize, JsonSchema)]
struct EpicDependencyParams {
    /// Epic UUID.
    epic_id: String,
    /// UUID of the epic it waits for.
    depends_on_epic_id: String,
}

async fn add_epic_dependency(ctx: Ctx, params: EpicDependencyParams) -> ToolResult {
    let body = json!({"epic_id": params.epic_id.trim(), "depends_on_epic_id": params.depends_on_epic_id.trim()});
    let answer = ctx.send(KeyRole::Orchestrator, Method::POST, "/api/v1/epic_dependencies", Some(body)).await?;
    Ok(Outcome::new(answer, format!("epic {} now waits for {}", params.epic_id, params.depends_on_epic_id)))
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum DependencyKind {
    Story,
    Epic,
}

#[derive(Deserialize, JsonSchema)]
struct RemoveDependencyParams {
    /// The dependency's id (from add_*_dependency or get_dependency_graph).
    dependency_id: String,
    kind: DependencyKind,
}

async fn remove_dependency(ctx: Ctx, params: RemoveDependencyParams) -> ToolResult {
    let kind = match params.kind {
        DependencyKind::Story => "story",
        DependencyKind::Epic => "epic",
    };
    let path = format!("/api/v1/{kind}_dependencies/{}", encode_component(params.dependency_id.trim()));
    let answer = ctx.send(KeyRole::User, Method::DELETE, &path, None).await?;
    Ok(Outcome::new(answer, format!("removed {kind} dependency {}", params.dependency_id)))
}
