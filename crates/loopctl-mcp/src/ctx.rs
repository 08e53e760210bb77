//! What one tool call works with: the backend, the caller's key (HTTP), and the lookups
//! every tool shares — a project by slug, a story by number, the claim epoch to fence with.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::backend::{ApiFailure, ApiRequest, Backend, KeyRole, Method, encode_component};
use crate::handler::Options;
use crate::speak;

/// State shared by every call of one MCP session.
pub(crate) struct Shared {
    pub backend: Arc<dyn Backend>,
    pub options: Options,
    /// Claim epochs this session got from `claim_story`, sent back as `X-Claim-Epoch`.
    epochs: Mutex<HashMap<String, i64>>,
}

impl Shared {
    pub fn new(backend: Arc<dyn Backend>, options: Options) -> Shared {
        Shared { backend, options, epochs: Mutex::new(HashMap::new()) }
    }
}

#[derive(Clone)]
pub(crate) struct Ctx {
    shared: Arc<Shared>,
    authorization: Option<String>,
}

impl Ctx {
    pub fn new(shared: Arc<Shared>, authorization: Option<String>) -> Ctx {
        Ctx { shared, authorization }
    }

    pub fn options(&self) -> &Options {
        &self.shared.options
    }

    pub async fn call(&self, mut request: ApiRequest) -> Result<Value, ApiFailure> {
        request.authorization.clone_from(&self.authorization);
        let role = request.role;
        // Every REST error passes here, so every tool's error names tools, not CLI commands.
        self.shared.backend.call(request).await.map_err(|failure| speak::failure(failure, role))
    }

    pub async fn get(&self, path: &str, query: Vec<(&'static str, String)>) -> Result<Value, ApiFailure> {
        let mut request = ApiRequest::new(KeyRole::Default, Method::Get, path);
        request.query = query;
        self.call(request).await
    }

    pub async fn send(
        &self,
        role: KeyRole,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ApiFailure> {
        let mut request = ApiRequest::new(role, method, path);
        request.body = body;
        self.call(request).await
    }

    /// A project's UUID from its UUID, slug or name; without one, `LOOPCTL_PROJECT` or the
    /// tenant's only project.
    pub async fn project_id(&self, reference: Option<&str>) -> Result<String, ApiFailure> {
        let reference = reference.map(str::trim).filter(|r| !r.is_empty());
        let reference = reference.or(self.shared.options.default_project.as_deref());
        if let Some(reference) = reference {
            if uuid::Uuid::parse_str(reference).is_ok() {
                return Ok(reference.to_string());
            }
            let answer = self.get(&format!("/api/v1/projects/{}", encode_component(reference)), Vec::new()).await?;
            return string_at(&answer, "/project/id", "project");
        }
        let answer = self.get("/api/v1/projects", Vec::new()).await?;
        let projects = answer["data"].as_array().cloned().unwrap_or_default();
        match projects.as_slice() {
            [only] => string_at(only, "/id", "project"),
            [] => Err(ApiFailure::invalid("no project yet; create one with create_project, then import_stories")),
            many => {
                let slugs: Vec<&str> = many.iter().filter_map(|p| p["slug"].as_str()).collect();
                Err(ApiFailure::invalid(format!("pass project_id (one of: {})", slugs.join(", "))))
            }
        }
    }

    /// A story's UUID from its UUID, or from its number (`2.1`, `US-2.1`) in the project.
    pub async fn story_id(&self, story: &str, project: Option<&str>) -> Result<String, ApiFailure> {
        let story = story.trim();
        if story.is_empty() {
            return Err(ApiFailure::invalid("story_id is empty; pass the story's UUID or its number like \"2.1\""));
        }
        if uuid::Uuid::parse_str(story).is_ok() {
            return Ok(story.to_string());
        }
        let by_number = async {
            let project = self.project_id(project).await?;
            let answer =
                self.get("/api/v1/stories", vec![("project_id", project), ("number", story.to_string())]).await?;
            string_at(&answer, "/story/id", "story")
        };
        match by_number.await {
            // A dispatched token may read nothing but its own story, not even the project
            // list that resolves a number; its own story it may still name by number.
            Err(failure) if failure.code == "scope_violation" => self.own_story(story).await.ok_or(failure),
            other => other,
        }
    }

    /// The story a dispatched token is scoped to, if its number is `number`.
    async fn own_story(&self, number: &str) -> Option<String> {
        let me = self.get("/api/v1/whoami", Vec::new()).await.ok()?;
        let id = me["scope"]["story_id"].as_str()?.to_string();
        let answer = self.get(&format!("/api/v1/stories/{id}"), Vec::new()).await.ok()?;
        let own = answer["story"]["number"].as_str()?;
        let wanted = number.trim_start_matches("US-").trim_start_matches("us-");
        (own == wanted).then_some(id)
    }

    pub fn remember_epoch(&self, story: &Value) {
        if let (Some(id), Some(epoch)) = (story["id"].as_str(), story["claim_epoch"].as_i64())
            && let Ok(mut epochs) = self.shared.epochs.lock()
        {
            epochs.insert(id.to_string(), epoch);
        }
    }

    pub fn epoch(&self, story_id: &str) -> Option<i64> {
        self.shared.epochs.lock().ok()?.get(story_id).copied()
    }

    pub fn forget_epoch(&self, story_id: &str) {
        if let Ok(mut epochs) = self.shared.epochs.lock() {
            epochs.remove(story_id);
        }
    }
}

fn string_at(value: &Value, pointer: &str, what: &str) -> Result<String, ApiFailure> {
    value.pointer(pointer).and_then(Value::as_str).map(str::to_string).ok_or_else(|| {
        ApiFailure::new(502, "protocol", format!("the server's answer has no {what} id: {}", json!(value)))
    })
}
