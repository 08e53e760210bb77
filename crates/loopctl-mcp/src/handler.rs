//! The MCP server proper: tools from the table in `tools`, a progress resource per project,
//! and the built-in skills as prompts. A tool's failure is always a tool result with
//! `isError` (`<code>: <message>` plus `{"error":{…}}`), never a crash.

use std::sync::Arc;

use loopctl_api::{Data, ErrorCode, ProjectView, SkillAnswer};
use loopctl_client::{ClientError, encode_component};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams, GetPromptResponse,
    GetPromptResult, Implementation, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, Prompt, PromptArgument, PromptMessage, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ResourceTemplate, Role, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};

use crate::connection::Connection;
use crate::ctx::{Ctx, Shared};
use crate::refusal::{line, refusal};
use crate::rows;
use crate::tools::{self, Outcome, Tier, ToolResult, ToolSpec};

/// How a tool result's text block reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextMode {
    /// One line saying what happened; the data is in `structuredContent` (the default).
    Summary,
    /// The whole JSON again, for clients that show the model only text.
    Json,
}

/// How one MCP server instance behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Which tools `tools/list` offers (over HTTP, `?tools=` on the URL overrides it).
    pub tier: Tier,
    pub text: TextMode,
    /// The project tools use when none is named (`LOOPCTL_PROJECT`).
    pub default_project: Option<String>,
    /// Whether `import_stories` may read `payload_path` from this machine's disk.
    pub local_files: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { tier: Tier::Core, text: TextMode::Summary, default_project: None, local_files: false }
    }
}

impl Options {
    /// `LOOPCTL_MCP_TOOLS` (core|standard|all), `LOOPCTL_MCP_TEXT` (summary|json) and
    /// `LOOPCTL_PROJECT`.
    ///
    /// # Errors
    /// A value that is not one of those named.
    pub fn from_env() -> Result<Options, String> {
        let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let tier = match var("LOOPCTL_MCP_TOOLS") {
            None => Tier::Core,
            Some(text) => {
                Tier::parse(&text).ok_or_else(|| format!("LOOPCTL_MCP_TOOLS=`{text}`: use core, standard or all"))?
            }
        };
        let text = match var("LOOPCTL_MCP_TEXT").as_deref() {
            None | Some("summary") => TextMode::Summary,
            Some("json") => TextMode::Json,
            Some(other) => return Err(format!("LOOPCTL_MCP_TEXT=`{other}`: use summary or json")),
        };
        Ok(Options { tier, text, default_project: var("LOOPCTL_PROJECT"), local_files: true })
    }
}

const INSTRUCTIONS: &str = "loopctl keeps the state of an AI development loop. Orchestrator: list_ready_stories, \
dispatch a fresh implementer per story, then review_complete (by someone else) and verify_story or reject_story; \
get_progress shows where the loop stands. Implementer: contract_story (exact title + acceptance-criteria count), \
claim_story, start_story (heartbeat_story on long work, or the lease runs out), report_story. Each result's \
next_actions names the tool to call next with its arguments. Stories are named by UUID or by number (\"2.1\") with project_id. \
Errors read `<code>: <message>`.";

/// The built-in skills offered as prompts: name, what it is for, which argument it takes.
const PROMPTS: &[(&str, &str, &str)] = &[
    ("loopctl:orchestrate", "Run the build loop as the orchestrator", "project"),
    ("loopctl:review", "Review one reported story independently", "story"),
    ("loopctl:verify-artifacts", "Check a story's reported artifacts against the repository", "story"),
    ("loopctl:contract", "Take on a story as an implementation agent", "story"),
];

const RESOURCE_PREFIX: &str = "loopctl://projects/";
const RESOURCE_SUFFIX: &str = "/progress";

/// One MCP server instance (one stdio process, or one HTTP request in stateless mode).
#[derive(Clone)]
pub struct LoopctlMcp {
    shared: Arc<Shared>,
}

impl LoopctlMcp {
    pub fn new(connection: Connection, options: Options) -> LoopctlMcp {
        LoopctlMcp { shared: Arc::new(Shared::new(connection, options)) }
    }

    fn ctx(&self, context: &RequestContext<RoleServer>) -> Ctx {
        let authorization = http_parts(context)
            .and_then(|parts| parts.headers.get(http::header::AUTHORIZATION))
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        Ctx::new(self.shared.clone(), authorization)
    }

    /// The tier of this request: `?tools=` on the MCP URL (HTTP), else the configured one.
    fn tier(&self, context: &RequestContext<RoleServer>) -> Tier {
        http_parts(context)
            .and_then(|parts| parts.uri.query())
            .and_then(|query| query.split('&').find_map(|pair| pair.strip_prefix("tools=")))
            .and_then(Tier::parse)
            .unwrap_or(self.shared.options.tier)
    }

    fn result(&self, result: ToolResult) -> CallToolResult {
        match result {
            Ok(Outcome { value, summary }) => {
                let value = if value.is_object() { value } else { json!({"data": value}) };
                let text = match self.shared.options.text {
                    TextMode::Summary => summary,
                    TextMode::Json => value.to_string(),
                };
                let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                result.structured_content = Some(value);
                result
            }
            Err(failure) => {
                // `status` is 0 when the request never reached the server.
                let (status, details) = match &failure {
                    ClientError::Api { status, error, .. } => (*status, error.details.clone()),
                    _ => (0, None),
                };
                error_result(status, failure.code(), &failure.to_string(), details)
            }
        }
    }

    async fn progress_resource(&self, ctx: &Ctx, slug: &str) -> Result<Value, ClientError> {
        let project = ctx.project(slug).await?;
        let id = project.id;
        let progress = ctx.get(&format!("/api/v1/projects/{id}/progress"), Vec::new()).await?;
        let ready =
            ctx.get("/api/v1/stories/ready", vec![("project_id", id.to_string()), ("page_size", "20".into())]).await?;
        let ready_rows = ready["data"].as_array().cloned().unwrap_or_default();
        Ok(json!({
            "project": {"id": id, "slug": project.slug, "name": project.name, "status": project.status},
            "summary": tools::progress_line(&progress["progress"]),
            "progress": progress["progress"],
            "ready": rows::pick_all(&ready_rows, &["number", "title", "ac_count", "suggested"], None),
        }))
    }
}

fn http_parts(context: &RequestContext<RoleServer>) -> Option<&http::request::Parts> {
    context.extensions.get::<http::request::Parts>()
}

/// The tool `name`, when this request's tier offers it; otherwise why not.
fn offered(name: &str, tier: Tier) -> Result<&'static ToolSpec, String> {
    let spec = tools::find(name).ok_or_else(|| format!("no tool `{name}`; see tools/list"))?;
    if spec.tier > tier {
        return Err(format!(
            "`{name}` is in the {} tier; this server offers the {} tier (LOOPCTL_MCP_TOOLS or ?tools=)",
            spec.tier.as_str(),
            tier.as_str()
        ));
    }
    Ok(spec)
}

async fn run(spec: &'static ToolSpec, ctx: Ctx, arguments: rmcp::model::JsonObject) -> ToolResult {
    // A panic in a tool must not take the server down: run it as its own task.
    match tokio::spawn(spec.run(ctx, arguments)).await {
        Ok(result) => result,
        Err(err) => {
            tracing::error!(tool = spec.name, %err, "tool task failed");
            Err(refusal(ErrorCode::Internal, "the tool failed unexpectedly; the server logged it"))
        }
    }
}

/// A tool error: `<code>: <message>`, and `{"error":{…}}` for clients that read structure.
fn error_result(status: u16, code: &str, message: &str, details: Option<Value>) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(format!("{code}: {message}"))]);
    let mut error = json!({"code": code, "message": message, "status": status});
    if let Some(details) = details {
        error["details"] = details;
    }
    result.structured_content = Some(json!({ "error": error }));
    result
}

fn mcp_error(failure: &ClientError) -> ErrorData {
    if failure.is(ErrorCode::NotFound) || failure.is(ErrorCode::ValidationFailed) {
        ErrorData::invalid_params(line(failure), None)
    } else {
        ErrorData::internal_error(line(failure), None)
    }
}

impl ServerHandler for LoopctlMcp {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder().enable_tools().enable_resources().enable_prompts().build();
        let mut info = ServerConfig::new(capabilities).with_instructions(INSTRUCTIONS);
        info.server_info = Implementation::new("loopctl", env!("CARGO_PKG_VERSION"));
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tier = self.tier(&context);
        let tools = tools::registry().iter().filter(|spec| spec.tier <= tier).map(|spec| spec.tool.clone()).collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let ctx = self.ctx(&context);
        let tier = self.tier(&context);
        let arguments = request.arguments.unwrap_or_default();
        let result = match offered(&request.name, tier) {
            Ok(spec) => self.result(run(spec, ctx, arguments).await),
            // MCP's own refusal: no API code names a tool this server does not offer.
            Err(message) => error_result(404, "unknown_tool", &message, None),
        };
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let ctx = self.ctx(&context);
        let projects: Data<Vec<ProjectView>> = ctx.read("/api/v1/projects").await.map_err(|err| mcp_error(&err))?;
        let resources = projects
            .data
            .iter()
            .map(|project| {
                let slug = &project.slug;
                Resource::new(format!("{RESOURCE_PREFIX}{slug}{RESOURCE_SUFFIX}"), format!("{slug} progress"))
                    .with_description(format!(
                        "Where the loop of project {} stands: counts, ready stories",
                        project.name
                    ))
                    .with_mime_type("application/json")
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let template = ResourceTemplate::new(format!("{RESOURCE_PREFIX}{{slug}}{RESOURCE_SUFFIX}"), "project progress")
            .with_description("Where the loop of a project stands: counts by status, ready stories")
            .with_mime_type("application/json");
        Ok(ListResourceTemplatesResult::with_all_items(vec![template]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri;
        let slug = uri
            .strip_prefix(RESOURCE_PREFIX)
            .and_then(|rest| rest.strip_suffix(RESOURCE_SUFFIX))
            .filter(|slug| !slug.is_empty() && !slug.contains('/'))
            .ok_or_else(|| {
                ErrorData::resource_not_found(
                    format!("no resource {uri}; loopctl serves {RESOURCE_PREFIX}<slug>{RESOURCE_SUFFIX}"),
                    None,
                )
            })?;
        let ctx = self.ctx(&context);
        let value = self.progress_resource(&ctx, slug).await.map_err(|err| {
            if err.is(ErrorCode::NotFound) { ErrorData::resource_not_found(line(&err), None) } else { mcp_error(&err) }
        })?;
        let contents = ResourceContents::text(value.to_string(), uri).with_mime_type("application/json");
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let prompts = PROMPTS
            .iter()
            .map(|(name, description, argument)| {
                let hint = match *argument {
                    "project" => "Project slug or UUID to run the loop on",
                    _ => "Story number (e.g. 2.1) or UUID to work on",
                };
                let arguments = vec![PromptArgument::new(*argument).with_description(hint).with_required(false)];
                Prompt::new(*name, Some(*description), Some(arguments))
            })
            .collect();
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let Some((name, description, argument)) = PROMPTS.iter().find(|(name, _, _)| *name == request.name) else {
            let names: Vec<&str> = PROMPTS.iter().map(|(name, _, _)| *name).collect();
            return Err(ErrorData::invalid_params(
                format!("no prompt `{}`; loopctl offers {}", request.name, names.join(", ")),
                None,
            ));
        };
        let ctx = self.ctx(&context);
        let answer: SkillAnswer =
            ctx.read(&format!("/api/v1/skills/{}", encode_component(name))).await.map_err(|err| mcp_error(&err))?;
        let mut text = answer.skill.prompt_text;
        let given = request.arguments.as_ref().and_then(|args| args.get(*argument)).and_then(Value::as_str);
        if let Some(value) = given.filter(|v| !v.trim().is_empty()) {
            text.push_str(&format!("\n\n---\n{argument}: {value}\n"));
        }
        let result =
            GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]).with_description(*description);
        Ok(result.into())
    }
}
