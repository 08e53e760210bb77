//! The tool table: names and parameters as the reference MCP server has them, each tool in
//! one tier (`core` ⊂ `standard` ⊂ `all`), input schemas generated from the parameter types.

mod custody;
mod lifecycle;
mod more;
mod plan;
mod project;
mod story;
mod webhooks;

use std::future::Future;
use std::sync::{Arc, LazyLock};

use loopctl_client::{BoxFuture, ClientError};
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ctx::Ctx;
use crate::refusal::invalid;

pub(crate) use project::progress_line;

/// How many tools an agent is shown (every tool definition costs context tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// The seed's loop and the tools it names, with lease renewal for long work (17 tools).
    Core,
    /// Core plus the rest of the lifecycle, state checkpoints, the change feed and skills.
    Standard,
    /// Everything worth having over MCP (not key administration).
    All,
}

impl Tier {
    /// `core`, `standard` or `all`.
    pub fn parse(text: &str) -> Option<Tier> {
        match text.trim().to_ascii_lowercase().as_str() {
            "core" => Some(Tier::Core),
            "standard" => Some(Tier::Standard),
            "all" | "full" => Some(Tier::All),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Core => "core",
            Tier::Standard => "standard",
            Tier::All => "all",
        }
    }
}

/// The names of the tools a tier offers, in listing order.
pub fn tool_names(tier: Tier) -> Vec<&'static str> {
    registry().iter().filter(|spec| spec.tier <= tier).map(|spec| spec.name).collect()
}

/// What a tool answers: the JSON, and one line saying what happened.
pub(crate) struct Outcome {
    pub value: Value,
    pub summary: String,
}

impl Outcome {
    pub fn new(value: Value, summary: impl Into<String>) -> Outcome {
        Outcome { value, summary: summary.into() }
    }
}

pub(crate) type ToolResult = Result<Outcome, ClientError>;

type Run = Arc<dyn Fn(Ctx, JsonObject) -> BoxFuture<'static, ToolResult> + Send + Sync>;

pub(crate) struct ToolSpec {
    pub name: &'static str,
    pub tier: Tier,
    pub tool: Tool,
    run: Run,
}

impl ToolSpec {
    pub fn run(&self, ctx: Ctx, arguments: JsonObject) -> BoxFuture<'static, ToolResult> {
        (self.run)(ctx, arguments)
    }
}

/// Read-only, writing, or destructive: becomes the tool's annotations.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    Read,
    Write,
    Destroy,
}

/// A tool whose arguments deserialize into `P`; a mistake in them is a tool error naming the
/// field, not a protocol error, so the agent can read it and try again.
pub(crate) fn spec<P, F, Fut>(
    tier: Tier,
    name: &'static str,
    description: &'static str,
    effect: Effect,
    f: F,
) -> ToolSpec
where
    P: DeserializeOwned + JsonSchema + 'static,
    F: Fn(Ctx, P) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = ToolResult> + Send + 'static,
{
    // Every parameter type is a struct, so its schema is an object (a unit test checks).
    let schema = rmcp::handler::server::tool::schema_for_input::<P>()
        .map(|schema| trimmed(schema.as_ref()))
        .unwrap_or_else(|_| serde_json::Map::from_iter([("type".to_string(), Value::from("object"))]));
    let schema = Arc::new(schema);
    let annotations = match effect {
        Effect::Read => ToolAnnotations::new().read_only(true),
        Effect::Write => ToolAnnotations::new().destructive(false),
        Effect::Destroy => ToolAnnotations::new().destructive(true),
    };
    let tool = Tool::new(name, description, schema).with_annotations(annotations);
    let run: Run = Arc::new(move |ctx, arguments| {
        Box::pin(async move {
            let params: P = serde_json::from_value(Value::Object(arguments))
                .map_err(|err| invalid(format!("bad arguments for {name}: {err}")))?;
            f(ctx, params).await
        })
    });
    ToolSpec { name, tier, tool, run }
}

/// Drops what costs tokens and tells an agent nothing: `$schema`, integer formats.
fn trimmed(schema: &JsonObject) -> JsonObject {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(object) => {
                object.remove("$schema");
                if object
                    .get("format")
                    .and_then(Value::as_str)
                    .is_some_and(|f| f.starts_with("int") || f.starts_with("uint"))
                {
                    object.remove("format");
                }
                if object.get("minimum") == Some(&Value::from(0)) {
                    object.remove("minimum");
                }
                object.values_mut().for_each(walk);
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut value = Value::Object(schema.clone());
    walk(&mut value);
    match value {
        Value::Object(object) => object,
        _ => schema.clone(),
    }
}

/// Every tool, in listing order (core first).
pub(crate) fn registry() -> &'static [ToolSpec] {
    static REGISTRY: LazyLock<Vec<ToolSpec>> = LazyLock::new(|| {
        let mut specs = Vec::new();
        specs.extend(project::specs());
        specs.extend(story::specs());
        specs.extend(plan::specs());
        specs.extend(lifecycle::specs());
        specs.extend(custody::specs());
        specs.extend(more::specs());
        specs.extend(webhooks::specs());
        specs.sort_by_key(|spec| spec.tier);
        specs
    });
    &REGISTRY
}

pub(crate) fn find(name: &str) -> Option<&'static ToolSpec> {
    registry().iter().find(|spec| spec.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_has_the_seed_loop_and_lease_renewal_in_at_most_17_tools() {
        let core = tool_names(Tier::Core);
        assert!(core.len() <= 17, "core has {} tools: {core:?}", core.len());
        for name in [
            "import_stories",
            "create_story",
            "backfill_story",
            "dispatch",
            "list_ready_stories",
            "contract_story",
            "claim_story",
            "start_story",
            "heartbeat_story",
            "report_story",
            "review_complete",
            "verify_story",
            "reject_story",
        ] {
            assert!(core.contains(&name), "{name} is in core");
        }
    }

    #[test]
    fn tiers_nest_and_names_are_unique() {
        let core = tool_names(Tier::Core);
        let standard = tool_names(Tier::Standard);
        let all = tool_names(Tier::All);
        assert!(core.iter().all(|n| standard.contains(n)));
        assert!(standard.iter().all(|n| all.contains(n)));
        let mut unique = all.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), all.len(), "duplicate tool names: {all:?}");
    }

    #[test]
    fn every_schema_is_an_object_and_every_name_is_valid() {
        for spec in registry() {
            assert_eq!(spec.tool.input_schema.get("type"), Some(&Value::from("object")), "{}", spec.name);
            assert!(spec.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{}", spec.name);
            let description = spec.tool.description.as_deref().unwrap_or_default();
            assert!(description.len() >= 40, "{} says when to use it", spec.name);
        }
    }
}
