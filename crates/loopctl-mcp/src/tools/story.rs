//! Reading and planning stories and epics: lists in compact rows, one story in full,
//! story creation, dependencies.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::{Effect, Outcome, Tier, ToolResult, ToolSpec, spec};
use crate::backend::{ApiFailure, KeyRole, Method, encode_component};
use crate::ctx::Ctx;
use crate::rows::{self, Page, STORY_ROW};

pub(super) fn specs() -> Vec<ToolSpec> {
    vec![
        spec(
            Tier::Core,
            "create_story",
            "Add one story to an existing epic: pass epic_id, or project_id + epic_number. For many stories use \
             import_stories with merge=true.",
            Effect::Write,
            create_story,
        ),
        spec(
            Tier::Core,
            "list_stories",
            "A project's stories in compact rows (id, number, title, agent_status, verified_status), filtered by \
             status or epic, paged (limit ≤ 100, offset). Add row fields with fields, e.g. [\"ac_count\"].",
            Effect::Read,
            list_stories,
        ),
        spec(
            Tier::Core,
            "list_ready_stories",
            "Stories ready to work on (pending, dependencies verified), in work order, with ac_count and \
             suggested=true on the batch to dispatch next (up to max_concurrent_agents minus those in flight).",
            Effect::Read,
            list_ready_stories,
        ),
        spec(
            Tier::Core,
            "get_story",
            "One story in full: description, acceptance criteria, status, claim, artifacts, reviews, \
             verifications, dependencies. Pass fields to get only some of them.",
            Effect::Read,
            get_story,
        ),
        spec(
            Tier::Standard,
            "get_acceptance_criteria",
            "Only a story's title and acceptance criteria with their count: what contract_story needs.",
            Effect::Read,
            get_acceptance_criteria,
        ),
        spec(
            Tier::Standard,
            "list_blocked_stories",
            "Pending stories whose dependencies are not verified yet, each with the story numbers it waits for.",
            Effect::Read,
            list_blocked_stories,
        ),
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
            "Delete a story or epic dependency by its id (kind: story or epic).",
            Effect::Destroy,
            remove_dependency,
        ),
        spec(
            Tier::All,
            "get_story_history",
            "Every event of one story, oldest first: transitions, reviews, verifications, with who did them.",
            Effect::Read,
            get_story_history,
        ),
    ]
}

/// Accepts a JSON string or number as text (agents write `2.1` as either).
pub(super) fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::String(text) => Ok(text),
        Value::Number(number) => Ok(number.to_string()),
        other => Err(serde::de::Error::custom(format!("expected a string, got {other}"))),
    }
}

/// A story named by UUID or by number within a project.
#[derive(Deserialize, JsonSchema)]
pub(super) struct StoryRef {
    /// Story UUID, or its number like "2.1" (with project_id).
    #[serde(deserialize_with = "text")]
    pub story_id: String,
    /// Project UUID or slug, for story numbers.
    pub project_id: Option<String>,
}

impl StoryRef {
    pub async fn resolve(&self, ctx: &Ctx) -> Result<String, ApiFailure> {
        ctx.story_id(&self.story_id, self.project_id.as_deref()).await
    }
}

#[derive(Deserialize, JsonSchema)]
struct NewStory {
    /// Story number within the project, e.g. "2.4".
    #[serde(deserialize_with = "text")]
    number: String,
    title: String,
    description: Option<String>,
    /// [{"id":"AC-2.4.1","description":"…"}] or plain strings.
    acceptance_criteria: Option<Vec<Value>>,
    estimated_hours: Option<f64>,
    metadata: Option<Value>,
}

#[derive(Deserialize, JsonSchema)]
struct CreateStoryParams {
    story: NewStory,
    /// Epic UUID; or give project_id and epic_number.
    epic_id: Option<String>,
    /// Project UUID or slug.
    project_id: Option<String>,
    epic_number: Option<i64>,
}

async fn create_story(ctx: Ctx, params: CreateStoryParams) -> ToolResult {
    let story = params.story;
    let mut body = json!({"number": story.number, "title": story.title});
    if let Some(description) = story.description {
        body["description"] = json!(description);
    }
    if let Some(criteria) = story.acceptance_criteria {
        body["acceptance_criteria"] = json!(criteria);
    }
    if let Some(hours) = story.estimated_hours {
        body["estimated_hours"] = json!(hours);
    }
    if let Some(metadata) = story.metadata {
        body["metadata"] = metadata;
    }
    let path = match (params.epic_id.as_deref().map(str::trim).filter(|e| !e.is_empty()), params.epic_number) {
        (Some(epic), _) => format!("/api/v1/epics/{}/stories", encode_component(epic)),
        (None, Some(epic_number)) => {
            body["epic_number"] = json!(epic_number);
            format!("/api/v1/projects/{}/stories", ctx.project_id(params.project_id.as_deref()).await?)
        }
        (None, None) => {
            return Err(ApiFailure::invalid("say which epic: pass epic_id, or project_id and epic_number"));
        }
    };
    let answer = ctx.send(KeyRole::Orchestrator, Method::Post, &path, Some(body)).await?;
    let summary = format!("created {}", rows::story_line(&answer["story"]));
    Ok(Outcome::new(answer, summary))
}

#[derive(Deserialize, JsonSchema)]
struct ListStoriesParams {
    /// Project UUID or slug.
    project_id: Option<String>,
    /// pending, contracted, assigned, implementing or reported_done.
    agent_status: Option<String>,
    /// unverified, verified or rejected.
    verified_status: Option<String>,
    /// Epic UUID.
    epic_id: Option<String>,
    /// Rows per page (default 20, max 100).
    limit: Option<u32>,
    offset: Option<u32>,
    /// Extra row fields, e.g. ["ac_count","epic_id"]; ["*"] for all.
    fields: Option<Vec<String>>,
}

async fn list_stories(ctx: Ctx, params: ListStoriesParams) -> ToolResult {
    let project = ctx.project_id(params.project_id.as_deref()).await?;
    let page = Page::new(params.limit, params.offset);
    let mut query = vec![("project_id", project), ("limit", page.limit.to_string()), ("offset", page.offset.to_string())];
    for (key, value) in
        [("agent_status", params.agent_status), ("verified_status", params.verified_status), ("epic_id", params.epic_id)]
    {
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            query.push((key, value));
        }
    }
    let answer = ctx.get("/api/v1/stories", query).await?;
    let data = answer["data"].as_array().cloned().unwrap_or_default();
    let total = answer["meta"]["total_count"].as_u64().unwrap_or(data.len() as u64);
    let rows = rows::pick_all(&data, STORY_ROW, params.fields.as_deref());
    let summary = page_line("stories", &rows, total, page);
    Ok(Outcome::new(json!({"data": rows, "meta": page.meta(total, data.len())}), summary))
}

/// `3 of 12 stories: 1.1, 1.2, 2.1 (next: offset 3)`.
fn page_line(what: &str, rows: &[Value], total: u64, page: Page) -> String {
    let mut line = format!("{} of {total} {what}: {}", rows.len(), rows::numbers(rows));
    let next = u64::from(page.offset) + rows.len() as u64;
    if next < total {
        line.push_str(&format!(" (more: offset {next})"));
    }
    line
}

#[derive(Deserialize, JsonSchema)]
struct ReadyParams {
    /// Project UUID or slug.
    project_id: Option<String>,
    /// Only this epic (UUID).
    epic_id: Option<String>,
    /// Rows per page (default 20, max 100).
    limit: Option<u32>,
    offset: Option<u32>,
    /// Extra row fields, e.g. ["epic_id"]; ["*"] for all.
    fields: Option<Vec<String>>,
}

async fn list_ready_stories(ctx: Ctx, params: ReadyParams) -> ToolResult {
    let project = ctx.project_id(params.project_id.as_deref()).await?;
    let page = Page::new(params.limit, params.offset);
    let (api_page, page_size, skip) = page.window();
    let mut query = vec![("project_id", project), ("page", api_page.to_string()), ("page_size", page_size.to_string())];
    if let Some(epic) = params.epic_id.filter(|e| !e.trim().is_empty()) {
        query.push(("epic_id", epic));
    }
    let answer = ctx.get("/api/v1/stories/ready", query).await?;
    let data: Vec<Value> = answer["data"].as_array().cloned().unwrap_or_default().into_iter().skip(skip).collect();
    let data: Vec<Value> = data.into_iter().take(page.limit as usize).collect();
    let meta = &answer["meta"];
    let total = meta["total_count"].as_u64().unwrap_or(data.len() as u64);
    let base: Vec<&str> = STORY_ROW.iter().copied().chain(["ac_count", "suggested"]).collect();
    let rows = rows::pick_all(&data, &base, params.fields.as_deref());
    let suggested: Vec<Value> = rows.iter().filter(|r| r["suggested"] == json!(true)).cloned().collect();
    let mut page_meta = page.meta(total, rows.len());
    page_meta["in_flight"] = meta["in_flight"].clone();
    page_meta["max_concurrent_agents"] = meta["max_concurrent_agents"].clone();
    let summary = format!(
        "{}; suggested next: {}; in flight {}/{}",
        page_line("ready stories", &rows, total, page),
        rows::numbers(&suggested),
        meta["in_flight"],
        meta["max_concurrent_agents"],
    );
    Ok(Outcome::new(json!({"data": rows, "meta": page_meta}), summary))
}

#[derive(Deserialize, JsonSchema)]
struct GetStoryParams {
    #[serde(flatten)]
    story: StoryRef,
    /// Only these fields (plus id, number, title, statuses), e.g. ["acceptance_criteria","artifacts"].
    fields: Option<Vec<String>>,
}

async fn get_story(ctx: Ctx, params: GetStoryParams) -> ToolResult {
    let id = params.story.resolve(&ctx).await?;
    let answer = ctx.get(&format!("/api/v1/stories/{id}"), Vec::new()).await?;
    let story = &answer["story"];
    let summary = format!("{} ({} acceptance criteria)", rows::story_line(story), story["ac_count"]);
    let value = match params.fields.as_deref() {
        Some(fields) => json!({"story": rows::pick(story, STORY_ROW, Some(fields))}),
        None => answer.clone(),
    };
    Ok(Outcome::new(value, summary))
}

async fn get_acceptance_criteria(ctx: Ctx, params: StoryRef) -> ToolResult {
    let id = params.resolve(&ctx).await?;
    let answer = ctx.get(&format!("/api/v1/stories/{id}"), Vec::new()).await?;
    let story = rows::pick(&answer["story"], &["id", "number", "title", "ac_count", "acceptance_criteria"], None);
    let summary = format!(
        "story {} \"{}\" has {} acceptance criteria",
        story["number"].as_str().unwrap_or("?"),
        story["title"].as_str().unwrap_or(""),
        story["ac_count"]
    );
    Ok(Outcome::new(json!({"story": story}), summary))
}

#[derive(Deserialize, JsonSchema)]
struct BlockedParams {
    /// Project UUID or slug.
    project_id: Option<String>,
    /// Rows per page (default 20, max 100).
    limit: Option<u32>,
    offset: Option<u32>,
}

async fn list_blocked_stories(ctx: Ctx, params: BlockedParams) -> ToolResult {
    let project = ctx.project_id(params.project_id.as_deref()).await?;
    let page = Page::new(params.limit, params.offset);
    let (api_page, page_size, skip) = page.window();
    let query = vec![("project_id", project), ("page", api_page.to_string()), ("page_size", page_size.to_string())];
    let answer = ctx.get("/api/v1/stories/blocked", query).await?;
    let rows: Vec<Value> = answer["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .skip(skip)
        .take(page.limit as usize)
        .map(|blocked| {
            let mut row = rows::pick(&blocked["story"], STORY_ROW, None);
            let waits: Vec<Value> = blocked["blocking_dependencies"]
                .as_array()
                .map(|deps| deps.iter().map(|d| rows::pick(d, &["number", "verified_status"], None)).collect())
                .unwrap_or_default();
            row["waits_for"] = json!(waits);
            row
        })
        .collect();
    let total = answer["meta"]["total_count"].as_u64().unwrap_or(rows.len() as u64);
    let summary = page_line("blocked stories", &rows, total, page);
    Ok(Outcome::new(json!({"data": rows, "meta": page.meta(total, rows.len())}), summary))
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
    let titles: Vec<String> = rows
        .iter()
        .map(|e| format!("{} {}", e["number"], e["title"].as_str().unwrap_or("")))
        .collect();
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
    let answer = ctx.send(KeyRole::Orchestrator, Method::Post, &path, Some(body)).await?;
    let summary = format!("created epic {} ({})", answer["epic"]["number"], answer["epic"]["id"].as_str().unwrap_or("?"));
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
    let body = Value::Object(body.as_object().cloned().unwrap_or_default().into_iter().filter(|(_, v)| !v.is_null()).collect());
    let answer = ctx.send(KeyRole::Orchestrator, Method::Patch, &format!("/api/v1/stories/{id}"), Some(body)).await?;
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
    let answer = ctx.send(KeyRole::Orchestrator, Method::Post, "/api/v1/story_dependencies", Some(body)).await?;
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
    let answer = ctx.send(KeyRole::Orchestrator, Method::Post, "/api/v1/epic_dependencies", Some(body)).await?;
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
    let answer = ctx.send(KeyRole::Orchestrator, Method::Delete, &path, None).await?;
    Ok(Outcome::new(answer, format!("removed {kind} dependency {}", params.dependency_id)))
}

async fn get_story_history(ctx: Ctx, params: StoryRef) -> ToolResult {
    let id = params.resolve(&ctx).await?;
    let answer = ctx.get(&format!("/api/v1/stories/{id}/history"), Vec::new()).await?;
    let events = answer["data"].as_array().map_or(0, Vec::len);
    Ok(Outcome::new(answer, format!("{events} event(s) for story {}", params.story_id)))
}
