//! The change feed, orchestrator state, skills, and the administration an agent may do
//! (tenant settings and audit need a user key; API keys stay off MCP entirely).

use loopctl_client::{Method, encode_component};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::project::NoParams;
use super::story::optional_text;
use super::{Effect, Outcome, Tier, ToolResult, ToolSpec, spec};
use crate::ctx::Ctx;
use crate::refusal::invalid;
use crate::rows::{self, Page};
use crate::speak::KeyRole;

pub(super) fn specs() -> Vec<ToolSpec> {
    vec![
        spec(
            Tier::Standard,
            "get_changes",
            "The change feed after a cursor or ISO-8601 time (since), oldest first; poll it with next_cursor \
             to see what agents did since the last round.",
            Effect::Read,
            get_changes,
        ),
        spec(
            Tier::Standard,
            "save_state",
            "Orchestrator: checkpoint your loop state (any JSON) for crash recovery; pass version to refuse a \
             stale overwrite.",
            Effect::Write,
            save_state,
        ),
        spec(
            Tier::Standard,
            "load_state",
            "Orchestrator: load the last checkpoint of a project (after a restart).",
            Effect::Read,
            load_state,
        ),
        spec(
            Tier::Standard,
            "list_skills",
            "The skills (versioned prompt documents) this tenant has, e.g. loopctl:orchestrate, loopctl:review.",
            Effect::Read,
            list_skills,
        ),
        spec(
            Tier::Standard,
            "get_skill",
            "A skill's prompt text (latest version, or version N), e.g. loopctl:review before an independent \
             review.",
            Effect::Read,
            get_skill,
        ),
        spec(
            Tier::All,
            "get_state_history",
            "Earlier versions of a project's orchestrator checkpoint, newest first.",
            Effect::Read,
            get_state_history,
        ),
        spec(
            Tier::All,
            "publish_skill",
            "User: publish a new version of a skill's prompt text.",
            Effect::Write,
            publish_skill,
        ),
        spec(
            Tier::All,
            "record_skill_result",
            "Record how a story went with a skill version (pass or fail), to compare prompt versions.",
            Effect::Write,
            record_skill_result,
        ),
        spec(Tier::All, "get_skill_stats", "Pass/fail counts per version of a skill.", Effect::Read, get_skill_stats),
        spec(
            Tier::All,
            "get_audit_log",
            "User: the audit log, newest first: who did what, with before and after.",
            Effect::Read,
            get_audit_log,
        ),
        spec(
            Tier::All,
            "update_tenant_settings",
            "User: change tenant settings (max_concurrent_agents, escalate_after_rejections, max_review_cycles, \
             claim_lease_seconds, custody_mode, …).",
            Effect::Write,
            update_tenant_settings,
        ),
        spec(
            Tier::All,
            "list_agents",
            "The tenant's agent identities (one per agent key or dispatch).",
            Effect::Read,
            list_agents,
        ),
        spec(
            Tier::All,
            "reclaim_expired",
            "Orchestrator: return stories whose claim lease ran out to the queue now.",
            Effect::Write,
            reclaim_expired,
        ),
    ]
}

#[derive(Deserialize, JsonSchema)]
struct ChangesParams {
    /// Project UUID or slug; absent, every project.
    project_id: Option<String>,
    /// A cursor (next_cursor of the last call) or an ISO-8601 time; absent, from the start.
    #[serde(default, deserialize_with = "optional_text")]
    since: Option<String>,
    /// e.g. story, project.
    entity_type: Option<String>,
    /// e.g. status_changed, verified, rejected.
    action: Option<String>,
    /// Events per call (default 50, max 1000).
    limit: Option<u32>,
    /// Extra event fields, e.g. ["old_state","new_state"].
    fields: Option<Vec<String>>,
}

async fn get_changes(ctx: Ctx, params: ChangesParams) -> ToolResult {
    let mut query = vec![("limit", params.limit.unwrap_or(50).clamp(1, 1000).to_string())];
    if let Some(project) = params.project_id.as_deref().filter(|p| !p.trim().is_empty()) {
        query.push(("project_id", ctx.project_id(Some(project)).await?));
    }
    for (key, value) in [("since", params.since), ("entity_type", params.entity_type), ("action", params.action)] {
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            query.push((key, value));
        }
    }
    let answer = ctx.get("/api/v1/changes", query).await?;
    let base = ["cursor", "entity_type", "entity_id", "action", "actor_label", "inserted_at"];
    let events: Vec<Value> = answer["data"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|event| {
                    let mut row = rows::pick(event, &base, params.fields.as_deref());
                    let change = rows::pick(
                        &event["new_state"],
                        &["number", "transition", "agent_status", "verified_status"],
                        None,
                    );
                    if change.as_object().is_some_and(|c| !c.is_empty()) {
                        row["change"] = change;
                    }
                    row
                })
                .collect()
        })
        .unwrap_or_default();
    let summary = format!(
        "{} event(s); next_cursor {}{}",
        events.len(),
        answer["next_cursor"],
        if answer["has_more"] == json!(true) { "; more waiting" } else { "" }
    );
    let value = json!({
        "data": events,
        "has_more": answer["has_more"],
        "next_cursor": answer["next_cursor"],
        "next_since": answer["next_since"],
    });
    Ok(Outcome::new(value, summary))
}

#[derive(Deserialize, JsonSchema)]
struct SaveStateParams {
    /// Project UUID or slug.
    project_id: Option<String>,
    /// The checkpoint: any JSON object, e.g. {"phase":"…","last_verified":"US-2.1"}.
    state: Value,
    /// Several checkpoints per project are kept apart by key (default "main").
    state_key: Option<String>,
    /// The version you loaded; a newer one on the server makes the save fail (version_conflict).
    version: Option<i64>,
}

async fn save_state(ctx: Ctx, params: SaveStateParams) -> ToolResult {
    let project = ctx.project_id(params.project_id.as_deref()).await?;
    let mut body = json!({"state_data": params.state});
    if let Some(key) = params.state_key {
        body["state_key"] = json!(key);
    }
    if let Some(version) = params.version {
        body["version"] = json!(version);
    }
    let path = format!("/api/v1/orchestrator/state/{project}");
    let answer = ctx.send(KeyRole::Orchestrator, Method::PUT, &path, Some(body)).await?;
    let summary = format!("checkpoint saved as version {}", answer["state"]["version"]);
    Ok(Outcome::new(answer, summary))
}

#[derive(Deserialize, JsonSchema)]
struct LoadStateParams {
    /// Project UUID or slug.
    project_id: Option<String>,
    state_key: Option<String>,
}

async fn load_state(ctx: Ctx, params: LoadStateParams) -> ToolResult {
    let project = ctx.project_id(params.project_id.as_deref()).await?;
    let path = format!("/api/v1/orchestrator/state/{project}");
    let query: Vec<(&str, String)> = params.state_key.into_iter().map(|key| ("state_key", key)).collect();
    let answer = ctx.request(KeyRole::Orchestrator, Method::GET, &path, None, &query, &[]).await?;
    let summary = match answer["state"]["version"].as_i64() {
        Some(version) => format!("checkpoint version {version}"),
        None => "no checkpoint saved yet".to_string(),
    };
    Ok(Outcome::new(answer, summary))
}

#[derive(Deserialize, JsonSchema)]
struct StateHistoryParams {
    /// Project UUID or slug.
    project_id: Option<String>,
    state_key: Option<String>,
    limit: Option<u32>,
}

async fn get_state_history(ctx: Ctx, params: StateHistoryParams) -> ToolResult {
    let project = ctx.project_id(params.project_id.as_deref()).await?;
    let mut query = vec![("limit", Page::new(params.limit, None).limit.to_string())];
    if let Some(key) = params.state_key {
        query.push(("state_key", key));
    }
    let answer = ctx.get(&format!("/api/v1/orchestrator/state/{project}/history"), query).await?;
    let versions = answer["data"].as_array().map_or(0, Vec::len);
    Ok(Outcome::new(answer, format!("{versions} checkpoint version(s)")))
}

async fn list_skills(ctx: Ctx, _: NoParams) -> ToolResult {
    let answer = ctx.get("/api/v1/skills", Vec::new()).await?;
    let rows: Vec<Value> = answer["data"]
        .as_array()
        .map(|skills| skills.iter().map(|s| rows::pick(s, &["name", "description", "current_version"], None)).collect())
        .unwrap_or_default();
    let names: Vec<&str> = rows.iter().filter_map(|s| s["name"].as_str()).collect();
    Ok(Outcome::new(json!({"data": rows}), format!("{} skill(s): {}", rows.len(), names.join(", "))))
}

#[derive(Deserialize, JsonSchema)]
struct SkillParams {
    /// e.g. loopctl:review
    name: String,
    /// Default: the latest.
    version: Option<i64>,
}

async fn get_skill(ctx: Ctx, params: SkillParams) -> ToolResult {
    let mut query = Vec::new();
    if let Some(version) = params.version {
        query.push(("version", version.to_string()));
    }
    let answer = ctx.get(&format!("/api/v1/skills/{}", encode_component(params.name.trim())), query).await?;
    let skill = &answer["skill"];
    let value = json!({
        "name": skill["name"],
        "version": skill["version"],
        "prompt_text": skill["prompt_text"],
    });
    let summary = format!(
        "skill {} version {} ({} characters; prompt_text in the result)",
        params.name,
        skill["version"],
        skill["prompt_text"].as_str().map_or(0, str::len)
    );
    Ok(Outcome::new(value, summary))
}

#[derive(Deserialize, JsonSchema)]
struct PublishSkillParams {
    name: String,
    prompt_text: String,
    changelog: Option<String>,
    description: Option<String>,
}

async fn publish_skill(ctx: Ctx, params: PublishSkillParams) -> ToolResult {
    let body = json!({
        "name": params.name,
        "prompt_text": params.prompt_text,
        "changelog": params.changelog,
        "description": params.description,
    });
    let answer = ctx.send(KeyRole::User, Method::POST, "/api/v1/skills", Some(body)).await?;
    let summary = format!("published {} version {}", params.name, answer["skill"]["version"]);
    Ok(Outcome::new(answer, summary))
}

#[derive(Deserialize, JsonSchema)]
struct SkillResultParams {
    name: String,
    /// pass or fail.
    result: String,
    version: Option<i64>,
    /// Story UUID or number.
    #[serde(default, deserialize_with = "optional_text")]
    story_id: Option<String>,
    /// Project UUID or slug, for story numbers.
    project_id: Option<String>,
    metrics: Option<Value>,
}

async fn record_skill_result(ctx: Ctx, params: SkillResultParams) -> ToolResult {
    let mut body = json!({"result": params.result, "version": params.version, "metrics": params.metrics});
    if let Some(story) = params.story_id.as_deref() {
        body["story_id"] = json!(ctx.story_id(story, params.project_id.as_deref()).await?);
    }
    let path = format!("/api/v1/skills/{}/results", encode_component(params.name.trim()));
    let answer = ctx.send(KeyRole::Orchestrator, Method::POST, &path, Some(body)).await?;
    Ok(Outcome::new(answer, format!("recorded {} for {}", params.result, params.name)))
}

#[derive(Deserialize, JsonSchema)]
struct SkillNameParam {
    name: String,
}

async fn get_skill_stats(ctx: Ctx, params: SkillNameParam) -> ToolResult {
    let answer = ctx.get(&format!("/api/v1/skills/{}/stats", encode_component(params.name.trim())), Vec::new()).await?;
    Ok(Outcome::new(answer, format!("results per version of {}", params.name)))
}

#[derive(Deserialize, JsonSchema)]
struct AuditParams {
    /// Project UUID or slug.
    project_id: Option<String>,
    entity_type: Option<String>,
    /// UUID of the story, epic or project.
    entity_id: Option<String>,
    action: Option<String>,
    /// Entries (default 20, max 100).
    limit: Option<u32>,
}

async fn get_audit_log(ctx: Ctx, params: AuditParams) -> ToolResult {
    let mut query = vec![("limit", Page::new(params.limit, None).limit.to_string())];
    if let Some(project) = params.project_id.as_deref().filter(|p| !p.trim().is_empty()) {
        query.push(("project_id", ctx.project_id(Some(project)).await?));
    }
    for (key, value) in
        [("entity_type", params.entity_type), ("entity_id", params.entity_id), ("action", params.action)]
    {
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            query.push((key, value));
        }
    }
    let answer = ctx.request(KeyRole::User, Method::GET, "/api/v1/audit", None, &query, &[]).await?;
    let entries = answer["data"].as_array().map_or(0, Vec::len);
    Ok(Outcome::new(answer, format!("{entries} audit entries")))
}

#[derive(Deserialize, JsonSchema)]
struct SettingsParams {
    /// Settings to change, e.g. {"max_concurrent_agents": 4}; unknown names are refused.
    settings: Value,
}

async fn update_tenant_settings(ctx: Ctx, params: SettingsParams) -> ToolResult {
    if !params.settings.is_object() {
        return Err(invalid("settings must be an object such as {\"max_concurrent_agents\": 4}"));
    }
    let body = json!({"settings": params.settings});
    let answer = ctx.send(KeyRole::User, Method::PATCH, "/api/v1/tenants/me", Some(body)).await?;
    Ok(Outcome::new(answer, "tenant settings updated"))
}

async fn list_agents(ctx: Ctx, _: NoParams) -> ToolResult {
    let answer = ctx.get("/api/v1/agents", Vec::new()).await?;
    let rows: Vec<Value> = answer["agents"]
        .as_array()
        .map(|agents| agents.iter().map(|a| rows::pick(a, &["id", "name", "agent_type", "status"], None)).collect())
        .unwrap_or_default();
    Ok(Outcome::new(json!({"data": rows}), format!("{} agent(s)", rows.len())))
}

#[derive(Deserialize, JsonSchema)]
struct ReclaimParams {
    /// Project UUID or slug.
    project_id: Option<String>,
}

async fn reclaim_expired(ctx: Ctx, params: ReclaimParams) -> ToolResult {
    let project = ctx.project_id(params.project_id.as_deref()).await?;
    let body = json!({"project_id": project});
    let answer = ctx.send(KeyRole::Orchestrator, Method::POST, "/api/v1/stories/reclaim-expired", Some(body)).await?;
    Ok(Outcome::new(answer.clone(), format!("reclaimed {}", answer["reclaimed"])))
}
