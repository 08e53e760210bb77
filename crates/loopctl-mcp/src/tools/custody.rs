//! Chain of custody: dispatching fresh sub-agents, recording artifact verification runs, and
//! the reference's bulk verification calls (each story still gets every custody check).

use loopctl_client::{Method, encode_component};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::story::{StoryRef, optional_text, text};
use super::{Effect, Outcome, Tier, ToolResult, ToolSpec, spec};
use crate::ctx::Ctx;
use crate::refusal::invalid;
use crate::speak::KeyRole;

pub(super) fn specs() -> Vec<ToolSpec> {
    vec![
        spec(
            Tier::Core,
            "dispatch",
            "Orchestrator: mint a capability key for a fresh sub-agent for one story and role (implementer or \
             reviewer). The raw key is in this answer only; hand it to the sub-agent as its LOOPCTL_API_KEY.",
            Effect::Write,
            dispatch,
        ),
        spec(
            Tier::Standard,
            "record_verification_run",
            "Record the result of checking a story's reported artifacts against the repository \
             (loopctl:verify-artifacts): pass or fail with one entry per check.",
            Effect::Write,
            record_verification_run,
        ),
        spec(
            Tier::All,
            "list_dispatches",
            "Dispatches with their lineage: which orchestrator dispatched which agent for which story.",
            Effect::Read,
            list_dispatches,
        ),
        spec(
            Tier::All,
            "revoke_dispatch",
            "Revoke a dispatch and its key at once (e.g. when the sub-agent is done or went astray).",
            Effect::Destroy,
            revoke_dispatch,
        ),
        spec(
            Tier::All,
            "bulk_mark_complete",
            "Orchestrator: verify several reported stories at once; each gets the custody checks of verify_story \
             and the answer says which were refused.",
            Effect::Write,
            bulk_mark_complete,
        ),
        spec(
            Tier::All,
            "verify_all_in_epic",
            "Orchestrator: verify every reported, unverified story of an epic you may verify.",
            Effect::Write,
            verify_all_in_epic,
        ),
    ]
}

#[derive(Deserialize, JsonSchema)]
struct DispatchParams {
    /// implementer or reviewer (the reference's agent means implementer).
    role: String,
    /// The story the key is scoped to: UUID or number.
    #[serde(default, deserialize_with = "optional_text")]
    story_id: Option<String>,
    /// Project UUID or slug, for story numbers.
    project_id: Option<String>,
    /// An existing agent identity; absent, a fresh one is created.
    agent_id: Option<String>,
    parent_dispatch_id: Option<String>,
    /// Key lifetime (default 3600, at most 86400).
    expires_in_seconds: Option<i64>,
}

async fn dispatch(ctx: Ctx, params: DispatchParams) -> ToolResult {
    let mut body = json!({"role": params.role.trim()});
    if let Some(story) = params.story_id.as_deref() {
        body["story_id"] = json!(ctx.story_id(story, params.project_id.as_deref()).await?);
    }
    for (key, value) in [("agent_id", params.agent_id), ("parent_dispatch_id", params.parent_dispatch_id)] {
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            body[key] = json!(value);
        }
    }
    if let Some(seconds) = params.expires_in_seconds {
        body["expires_in_seconds"] = json!(seconds);
    }
    let answer = ctx.send(KeyRole::Default, Method::POST, "/api/v1/dispatches", Some(body)).await?;
    let dispatch = &answer["data"]["dispatch"];
    let summary = format!(
        "dispatched {} for story {}: dispatch {}, agent {}, key expires {} (raw_key in the result, shown once)",
        dispatch["role"].as_str().unwrap_or("?"),
        params.story_id.as_deref().unwrap_or("-"),
        dispatch["id"].as_str().unwrap_or("?"),
        dispatch["agent_id"].as_str().unwrap_or("?"),
        dispatch["expires_at"].as_str().unwrap_or("?"),
    );
    Ok(Outcome::new(answer, summary))
}

#[derive(Deserialize, JsonSchema)]
struct VerificationRunParams {
    #[serde(flatten)]
    story: StoryRef,
    /// pass or fail.
    result: String,
    /// The commit that was checked.
    commit_sha: Option<String>,
    /// One entry per check: {"name","ok","detail"}.
    checks: Vec<Value>,
}

async fn record_verification_run(ctx: Ctx, params: VerificationRunParams) -> ToolResult {
    let id = params.story.resolve(&ctx).await?;
    let body = json!({"result": params.result, "commit_sha": params.commit_sha, "checks": params.checks});
    let path = format!("/api/v1/stories/{id}/verification-runs");
    let answer = ctx.send(KeyRole::Orchestrator, Method::POST, &path, Some(body)).await?;
    let run = &answer["verification_run"];
    let summary = format!(
        "verification run {} recorded for story {}: {}",
        run["round"],
        params.story.story_id,
        run["result"].as_str().unwrap_or("?")
    );
    Ok(Outcome::new(answer, summary))
}

#[derive(Deserialize, JsonSchema)]
struct ListDispatchesParams {
    /// Only this story: UUID or number.
    #[serde(default, deserialize_with = "optional_text")]
    story_id: Option<String>,
    /// Project UUID or slug, for story numbers.
    project_id: Option<String>,
    /// Leave out revoked and expired dispatches.
    active_only: Option<bool>,
}

async fn list_dispatches(ctx: Ctx, params: ListDispatchesParams) -> ToolResult {
    let mut query = Vec::new();
    if let Some(story) = params.story_id.as_deref() {
        query.push(("story_id", ctx.story_id(story, params.project_id.as_deref()).await?));
    }
    if let Some(active) = params.active_only {
        query.push(("active_only", active.to_string()));
    }
    let answer = ctx.get("/api/v1/dispatches", query).await?;
    let count = answer["data"].as_array().map_or(0, Vec::len);
    Ok(Outcome::new(answer, format!("{count} dispatch(es)")))
}

#[derive(Deserialize, JsonSchema)]
struct DispatchIdParam {
    dispatch_id: String,
}

async fn revoke_dispatch(ctx: Ctx, params: DispatchIdParam) -> ToolResult {
    let path = format!("/api/v1/dispatches/{}", encode_component(params.dispatch_id.trim()));
    let answer = ctx.send(KeyRole::Orchestrator, Method::DELETE, &path, None).await?;
    Ok(Outcome::new(answer, format!("revoked dispatch {}", params.dispatch_id)))
}

#[derive(Deserialize, JsonSchema)]
struct BulkStoryParam {
    /// Story UUID or number.
    #[serde(deserialize_with = "text")]
    story_id: String,
    summary: Option<String>,
    review_type: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
struct BulkParams {
    stories: Vec<BulkStoryParam>,
    /// Project UUID or slug, for story numbers.
    project_id: Option<String>,
}

async fn bulk_mark_complete(ctx: Ctx, params: BulkParams) -> ToolResult {
    if params.stories.is_empty() {
        return Err(invalid("stories is empty; pass [{\"story_id\",\"summary\",\"review_type\"}]"));
    }
    let mut stories = Vec::with_capacity(params.stories.len());
    for story in params.stories {
        let id = ctx.story_id(&story.story_id, params.project_id.as_deref()).await?;
        stories.push(json!({"story_id": id, "summary": story.summary, "review_type": story.review_type}));
    }
    let body = json!({"stories": stories});
    let answer =
        ctx.send(KeyRole::Orchestrator, Method::POST, "/api/v1/stories/bulk/mark-complete", Some(body)).await?;
    Ok(Outcome::new(answer.clone(), bulk_line(&answer["results"])))
}

/// `2 succeeded, 1 refused (self_verify_blocked)`.
fn bulk_line(results: &Value) -> String {
    let results = results.as_array().cloned().unwrap_or_default();
    let ok = results.iter().filter(|r| r["status"] == "success").count();
    let refused: Vec<&str> =
        results.iter().filter(|r| r["status"] != "success").filter_map(|r| r["code"].as_str()).collect();
    format!(
        "{ok} succeeded, {} refused{}",
        refused.len(),
        if refused.is_empty() { String::new() } else { format!(" ({})", refused.join(", ")) }
    )
}

#[derive(Deserialize, JsonSchema)]
struct VerifyAllParams {
    /// Epic UUID.
    epic_id: String,
    review_type: Option<String>,
    summary: Option<String>,
}

async fn verify_all_in_epic(ctx: Ctx, params: VerifyAllParams) -> ToolResult {
    let path = format!("/api/v1/epics/{}/verify-all", encode_component(params.epic_id.trim()));
    let body = json!({"summary": params.summary, "review_type": params.review_type});
    let answer = ctx.send(KeyRole::Orchestrator, Method::POST, &path, Some(body)).await?;
    let refused: Vec<&str> =
        answer["errors"].as_array().into_iter().flatten().filter_map(|e| e["code"].as_str()).collect();
    let mut summary = format!(
        "verified {} of {} reported stories in epic {}",
        answer["verified_count"], answer["total_eligible"], params.epic_id
    );
    if !refused.is_empty() {
        summary.push_str(&format!("; {} refused ({})", refused.len(), refused.join(", ")));
    }
    Ok(Outcome::new(answer, summary))
}
