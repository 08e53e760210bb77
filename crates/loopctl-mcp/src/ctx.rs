//! What one tool call works with: the client (with the session's one key), and the lookups
//! every tool shares — a project by slug, a story by number, the claim epoch to fence with.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use loopctl_api::{Data, ErrorCode, ProjectView, WhoAmI};
use loopctl_client::{Client, ClientError, Method};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::connection::Connection;
use crate::handler::Options;
use crate::refusal::invalid;
use crate::speak::{self, KeyRole};

/// State shared by every call of one MCP session.
pub(crate) struct Shared {
    pub connection: Connection,
    pub options: Options,
    /// Claim epochs this session got from `claim_story`, sent back as `X-Claim-Epoch`.
    epochs: Mutex<HashMap<String, i64>>,
}

impl Shared {
    pub fn new(connection: Connection, options: Options) -> Shared {
        Shared { connection, options, epochs: Mutex::new(HashMap::new()) }
    }
}

#[derive(Clone)]
pub(crate) struct Ctx {
    shared: Arc<Shared>,
    /// The MCP request's own `Authorization` header (streamable HTTP only).
    authorization: Option<String>,
}

impl Ctx {
    pub fn new(shared: Arc<Shared>, authorization: Option<String>) -> Ctx {
        Ctx { shared, authorization }
    }

    pub fn options(&self) -> &Options {
        &self.shared.options
    }

    /// Any request as `role` would make it; the JSON answer (`Null` for 204).
    pub async fn request(
        &self,
        role: KeyRole,
        method: Method,
        path: &str,
        body: Option<Value>,
        query: &[(&str, String)],
        headers: &[(&str, String)],
    ) -> Result<Value, ClientError> {
        let answer = self.client()?.request(method, path, body, query, headers).await;
        // Every REST error passes here, so every tool's error names tools, not CLI commands.
        answer.map_err(|err| speak::failure(err, role))
    }

    pub async fn get(&self, path: &str, query: Vec<(&'static str, String)>) -> Result<Value, ClientError> {
        self.request(KeyRole::Default, Method::GET, path, None, &query, &[]).await
    }

    pub async fn send(
        &self,
        role: KeyRole,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        self.request(role, method, path, body, &[], &[]).await
    }

    /// A read whose answer this layer reads itself rather than passing it to the model, typed.
    pub async fn read<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.client()?.call::<(), T>(Method::GET, path, None, &[]).await.map_err(read_failure)
    }

    /// A project's UUID from its UUID, slug or name; without one, `LOOPCTL_PROJECT` or the
    /// tenant's only project.
    pub async fn project_id(&self, reference: Option<&str>) -> Result<String, ClientError> {
        let reference = reference.map(str::trim).filter(|r| !r.is_empty());
        let reference = reference.or(self.shared.options.default_project.as_deref());
        if let Some(reference) = reference {
            if uuid::Uuid::parse_str(reference).is_ok() {
                return Ok(reference.to_string());
            }
            return Ok(self.project(reference).await?.id.to_string());
        }
        let projects: Data<Vec<ProjectView>> = self.read("/api/v1/projects").await?;
        match projects.data.as_slice() {
            [only] => Ok(only.id.to_string()),
            [] => Err(invalid("no project yet; create one with create_project, then import_stories")),
            many => {
                let slugs: Vec<&str> = many.iter().map(|p| p.slug.as_str()).collect();
                Err(invalid(format!("pass project_id (one of: {})", slugs.join(", "))))
            }
        }
    }

    /// The project named by its UUID, slug or name.
    pub async fn project(&self, reference: &str) -> Result<ProjectView, ClientError> {
        self.client()?.resolve_project(reference).await.map_err(read_failure)
    }

    /// A story's UUID from its UUID, or from its number (`2.1`, `US-2.1`) in the project.
    pub async fn story_id(&self, story: &str, project: Option<&str>) -> Result<String, ClientError> {
        let story = story.trim();
        if story.is_empty() {
            return Err(invalid("story_id is empty; pass the story's UUID or its number like \"2.1\""));
        }
        if uuid::Uuid::parse_str(story).is_ok() {
            return Ok(story.to_string());
        }
        let by_number = async {
            let project = self.project_id(project).await?;
            let found = self.client()?.resolve_story(Some(&project), story).await.map_err(read_failure)?;
            Ok::<_, ClientError>(found.id.to_string())
        };
        match by_number.await {
            // A dispatched token may read nothing but its own story, not even the project
            // list that resolves a number; its own story it may still name by number.
            Err(failure) if failure.is(ErrorCode::ScopeViolation) => self.own_story(story).await.ok_or(failure),
            other => other,
        }
    }

    /// The story a dispatched token is scoped to, if its number is `number`.
    async fn own_story(&self, number: &str) -> Option<String> {
        let me: WhoAmI = self.read("/api/v1/whoami").await.ok()?;
        let id = me.scope?["story_id"].as_str()?.to_string();
        let own = self.client().ok()?.resolve_story(None, &id).await.ok()?;
        let wanted = number.trim_start_matches("US-").trim_start_matches("us-");
        (own.number == wanted).then_some(id)
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

    fn client(&self) -> Result<Client, ClientError> {
        self.shared.connection.client(self.authorization.as_deref())
    }
}

/// A lookup's refusal in MCP's words (lookups are reads, which any role makes).
fn read_failure(err: ClientError) -> ClientError {
    speak::failure(err, KeyRole::Default)
}
