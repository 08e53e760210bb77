//! Reading and planning stories and epics: lists in compact rows, one story in full,
//! story creation, dependencies.

use loopctl_client::{ClientError, Method, encode_component};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::{Effect, Outcome, Tier, ToolResult, ToolSpec, spec};
use crate::ctx::Ctx;
use crate::refusal::invalid;
use crate::rows::{self, Page, STORY_ROW};
use crate::speak::KeyRole;

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

/// Accepts a JSON string, number or null as optional text.
pub(super) fn optional_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(value) => text(value).map(Some).map_err(serde::de::Error::custom),
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
    pub async fn resolve(&self, ctx: &Ctx) -> Result<String, ClientError> {
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
            return Err(invalid("say which epic: pass epic_id, or project_id and epic_number"));
        }
    };
    let answer = ctx.send(KeyRole::Orchestrator, Method::POST, &path, Some(body)).await?;
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
    let mut query =
        vec![("project_id", project), ("limit", page.limit.to_string()), ("offset", page.offset.to_string())];
    for (key, value) in [
        ("agent_status", params.agent_status),
        ("verified_status", params.verified_status),
        ("epic_id", params.epic_id),
    ] {
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

async fn get_story_history(ctx: Ctx, params: StoryRef) -> ToolResult {
    let id = params.resolve(&ctx).await?;
    let answer = ctx.get(&format!("/api/v1/stories/{id}/history"), Vec::new()).await?;
    let events = answer["data"].as_array().map_or(0, Vec::len);
    Ok(Outcome::new(answer, format!("{events} event(s) for story {}", params.story_id)))
}
