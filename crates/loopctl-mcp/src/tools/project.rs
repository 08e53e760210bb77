//! Tenant and project tools: list, progress, import, create.

use loopctl_client::{ClientError, Method};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Effect, Outcome, Tier, ToolResult, ToolSpec, spec};
use crate::ctx::Ctx;
use crate::refusal::invalid;
use crate::speak::KeyRole;

/// Import documents up to the API's own import limit.
const MAX_IMPORT_FILE: u64 = 16 << 20;

pub(super) fn specs() -> Vec<ToolSpec> {
    vec![
        spec(
            Tier::Core,
            "list_projects",
            "List the tenant's projects (id, slug, name, status). Start here to find project_id.",
            Effect::Read,
            list_projects,
        ),
        spec(
            Tier::Core,
            "get_progress",
            "Story counts of a project by agent_status and verified_status, in-flight and escalated counts. \
             Use it each round to see where the loop stands.",
            Effect::Read,
            get_progress,
        ),
        spec(
            Tier::Core,
            "import_stories",
            "Import a work breakdown (epics, stories with acceptance_criteria, story_dependencies, \
             epic_dependencies) into a project in one transaction. merge=true adds to or updates an existing \
             project without touching story status.",
            Effect::Write,
            import_stories,
        ),
        spec(
            Tier::Standard,
            "get_tenant",
            "Your tenant and its settings (max_concurrent_agents, custody_mode, escalation limits); a connectivity check.",
            Effect::Read,
            get_tenant,
        ),
        spec(
            Tier::Standard,
            "whoami",
            "The calling key's role, agent identity and tenant. Use it to check which identity you act as.",
            Effect::Read,
            whoami,
        ),
        spec(
            Tier::Standard,
            "create_project",
            "Create a project (name, slug) before importing its stories.",
            Effect::Write,
            create_project,
        ),
        spec(
            Tier::All,
            "delete_project",
            "Archive a project (user key): it leaves lists; nothing is erased.",
            Effect::Destroy,
            delete_project,
        ),
        spec(
            Tier::All,
            "export_project",
            "Export a project as an import document (round-trips through import_stories).",
            Effect::Read,
            export_project,
        ),
        spec(
            Tier::All,
            "get_dependency_graph",
            "A project's story and epic dependency graph.",
            Effect::Read,
            get_dependency_graph,
        ),
    ]
}

#[derive(Deserialize, JsonSchema, Default)]
pub(super) struct NoParams {}

#[derive(Deserialize, JsonSchema)]
pub(super) struct ProjectParam {
    /// Project UUID or slug.
    project_id: String,
}

async fn list_projects(ctx: Ctx, _: NoParams) -> ToolResult {
    let answer = ctx.get("/api/v1/projects", Vec::new()).await?;
    let rows: Vec<Value> = answer["data"]
        .as_array()
        .map(|projects| {
            projects.iter().map(|p| crate::rows::pick(p, &["id", "slug", "name", "status"], None)).collect()
        })
        .unwrap_or_default();
    let slugs: Vec<&str> = rows.iter().filter_map(|p| p["slug"].as_str()).collect();
    let summary = format!("{} project(s): {}", rows.len(), slugs.join(", "));
    Ok(Outcome::new(json!({"data": rows}), summary))
}

#[derive(Deserialize, JsonSchema)]
struct ProgressParams {
    /// Project UUID or slug.
    project_id: Option<String>,
}

async fn get_progress(ctx: Ctx, params: ProgressParams) -> ToolResult {
    let project = ctx.project_id(params.project_id.as_deref()).await?;
    let answer = ctx.get(&format!("/api/v1/projects/{project}/progress"), Vec::new()).await?;
    let progress = &answer["progress"];
    Ok(Outcome::new(answer.clone(), progress_line(progress)))
}

/// `3/10 verified, 2 in flight, 1 escalated; pending 5, reported_done 2`.
pub(crate) fn progress_line(progress: &Value) -> String {
    let by_agent = progress["stories_by_agent_status"].as_object();
    let states: Vec<String> = by_agent
        .map(|counts| {
            counts
                .iter()
                .filter(|(_, n)| n.as_u64().unwrap_or(0) > 0)
                .map(|(state, n)| format!("{state} {n}"))
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{}/{} verified, {} in flight, {} escalated; {}",
        progress["stories_by_verified_status"]["verified"].as_u64().unwrap_or(0),
        progress["total_stories"].as_u64().unwrap_or(0),
        progress["in_flight"].as_u64().unwrap_or(0),
        progress["escalated"].as_u64().unwrap_or(0),
        if states.is_empty() { "no stories".to_string() } else { states.join(", ") },
    )
}

#[derive(Deserialize, JsonSchema)]
struct ImportParams {
    /// Project UUID or slug.
    project_id: String,
    /// The import document: {"epics":[{"number","title","stories":[{"number","title","acceptance_criteria":[…]}]}],
    /// "story_dependencies":[{"story","depends_on"}], "epic_dependencies":[{"epic","depends_on"}]}.
    payload: Option<Value>,
    /// Path of a JSON file inside the MCP server's working directory holding the document
    /// (stdio only; payload wins if both).
    payload_path: Option<String>,
    /// Add to / update an existing project instead of refusing conflicts.
    merge: Option<bool>,
}

async fn import_stories(ctx: Ctx, params: ImportParams) -> ToolResult {
    let payload = match (params.payload, params.payload_path.as_deref()) {
        (Some(payload), _) => payload,
        (None, Some(path)) => read_payload(&ctx, path)?,
        (None, None) => {
            return Err(invalid("pass the import document as payload (or payload_path to a JSON file)"));
        }
    };
    if !payload.is_object() {
        return Err(invalid("payload must be a JSON object with an \"epics\" array"));
    }
    let project = ctx.project_id(Some(&params.project_id)).await?;
    let merge = params.merge.unwrap_or(false);
    let path = format!("/api/v1/projects/{project}/import");
    let query = [("merge", merge.to_string())];
    let answer = ctx.request(KeyRole::Orchestrator, Method::POST, &path, Some(payload), &query, &[]).await?;
    let import = &answer["import"];
    let count = |key: &str| import[key].as_u64().unwrap_or(0);
    let mut summary = format!(
        "imported: {} epics, {} stories, {} dependencies created",
        count("epics_created"),
        count("stories_created"),
        count("dependencies_created")
    );
    if merge {
        summary.push_str(&format!(" (merge; {} stories updated)", count("stories_updated")));
    }
    Ok(Outcome::new(answer, summary))
}

/// `payload_path` is read in stdio mode only, and only inside the MCP server's working
/// directory (see `local_file`). Over HTTP the path would name a file on the server.
fn read_payload(ctx: &Ctx, path: &str) -> Result<Value, ClientError> {
    if !ctx.options().local_files {
        return Err(invalid(
            "payload_path names a file on the MCP server's machine; over HTTP pass the document as payload",
        ));
    }
    crate::local_file::read_json_in_working_dir(path, MAX_IMPORT_FILE)
}

async fn get_tenant(ctx: Ctx, _: NoParams) -> ToolResult {
    let answer = ctx.get("/api/v1/tenants/me", Vec::new()).await?;
    let tenant = &answer["tenant"];
    let summary = format!(
        "tenant {} (custody_mode {}, max_concurrent_agents {})",
        tenant["slug"].as_str().unwrap_or("?"),
        tenant["settings"]["custody_mode"].as_str().unwrap_or("?"),
        tenant["settings"]["max_concurrent_agents"],
    );
    Ok(Outcome::new(answer.clone(), summary))
}

async fn whoami(ctx: Ctx, _: NoParams) -> ToolResult {
    let answer = ctx.get("/api/v1/whoami", Vec::new()).await?;
    let summary = format!(
        "role {}, agent {}",
        answer["role"].as_str().unwrap_or("?"),
        answer["agent_id"].as_str().unwrap_or("none")
    );
    Ok(Outcome::new(answer, summary))
}

#[derive(Deserialize, JsonSchema)]
struct CreateProjectParams {
    name: String,
    /// URL-safe short name, e.g. "shop".
    slug: String,
    repo_url: Option<String>,
    description: Option<String>,
    tech_stack: Option<String>,
    /// What the project is for (≤ 2000 chars); shown to implementers with each story.
    mission: Option<String>,
}

async fn create_project(ctx: Ctx, params: CreateProjectParams) -> ToolResult {
    let mut body = json!({"name": params.name, "slug": params.slug});
    for (key, value) in [
        ("repo_url", params.repo_url),
        ("description", params.description),
        ("tech_stack", params.tech_stack),
        ("mission", params.mission),
    ] {
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            body[key] = json!(value);
        }
    }
    let answer = ctx.send(KeyRole::Orchestrator, Method::POST, "/api/v1/projects", Some(body)).await?;
    let summary = format!(
        "created project {} ({})",
        answer["project"]["slug"].as_str().unwrap_or("?"),
        answer["project"]["id"].as_str().unwrap_or("?")
    );
    Ok(Outcome::new(answer, summary))
}

async fn delete_project(ctx: Ctx, params: ProjectParam) -> ToolResult {
    let project = ctx.project_id(Some(&params.project_id)).await?;
    let answer = ctx.send(KeyRole::User, Method::DELETE, &format!("/api/v1/projects/{project}"), None).await?;
    Ok(Outcome::new(answer, format!("archived project {project}")))
}

async fn export_project(ctx: Ctx, params: ProjectParam) -> ToolResult {
    let project = ctx.project_id(Some(&params.project_id)).await?;
    let answer = ctx.get(&format!("/api/v1/projects/{project}/export"), Vec::new()).await?;
    let epics = answer["epics"].as_array().map_or(0, Vec::len);
    Ok(Outcome::new(answer, format!("exported project {project}: {epics} epics")))
}

async fn get_dependency_graph(ctx: Ctx, params: ProjectParam) -> ToolResult {
    let project = ctx.project_id(Some(&params.project_id)).await?;
    let answer = ctx.get(&format!("/api/v1/projects/{project}/dependency_graph"), Vec::new()).await?;
    Ok(Outcome::new(answer, format!("dependency graph of project {project}")))
}
