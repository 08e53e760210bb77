//! stdio mode's backend: the loopctl HTTP client, one per role key, configured like the
//! reference MCP server (`LOOPCTL_SERVER`, `LOOPCTL_API_KEY`, `LOOPCTL_ORCH_KEY`,
//! `LOOPCTL_AGENT_KEY`, `LOOPCTL_USER_KEY`).

use std::collections::HashMap;

use loopctl_client::{Client, ClientError};
use serde_json::Value;

use crate::backend::{ApiFailure, ApiRequest, Backend, BoxFuture, KeyRole, Method};

pub const DEFAULT_SERVER: &str = "http://127.0.0.1:4000";

/// Where the server is and which key each role uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteConfig {
    pub server: Option<String>,
    /// `LOOPCTL_API_KEY`: used for every call when set.
    pub api_key: Option<String>,
    pub orch_key: Option<String>,
    pub agent_key: Option<String>,
    pub user_key: Option<String>,
}

impl RemoteConfig {
    /// Reads the `LOOPCTL_*` variables; empty values count as unset.
    pub fn from_env() -> RemoteConfig {
        let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        RemoteConfig {
            server: var("LOOPCTL_SERVER"),
            api_key: var("LOOPCTL_API_KEY"),
            orch_key: var("LOOPCTL_ORCH_KEY"),
            agent_key: var("LOOPCTL_AGENT_KEY"),
            user_key: var("LOOPCTL_USER_KEY"),
        }
    }

    pub fn has_any_key(&self) -> bool {
        self.api_key.is_some() || self.orch_key.is_some() || self.agent_key.is_some() || self.user_key.is_some()
    }

    /// The reference's rule: `LOOPCTL_API_KEY`, else the role's own key, else the
    /// orchestrator's.
    pub fn key_for(&self, role: KeyRole) -> Option<&str> {
        let own = match role {
            KeyRole::Default | KeyRole::Orchestrator => None,
            KeyRole::Agent => self.agent_key.as_deref(),
            KeyRole::User => self.user_key.as_deref(),
        };
        self.api_key.as_deref().or(own).or(self.orch_key.as_deref())
    }

    pub fn server(&self) -> &str {
        self.server.as_deref().unwrap_or(DEFAULT_SERVER)
    }
}

/// Talks to a loopctl server over HTTP with the key each role needs.
pub struct RemoteBackend {
    clients: HashMap<KeyRole, Client>,
    distinct_keys: bool,
    server: String,
}

impl RemoteBackend {
    /// # Errors
    /// When the HTTP client cannot be built (TLS setup).
    pub fn new(config: &RemoteConfig) -> Result<RemoteBackend, ApiFailure> {
        let mut clients = HashMap::new();
        let mut keys = Vec::new();
        for role in [KeyRole::Default, KeyRole::Orchestrator, KeyRole::Agent, KeyRole::User] {
            if let Some(key) = config.key_for(role) {
                let client = Client::new(config.server(), Some(key.to_string())).map_err(|err| failure(&err))?;
                clients.insert(role, client);
                keys.push(key.to_string());
            }
        }
        keys.sort();
        keys.dedup();
        Ok(RemoteBackend { clients, distinct_keys: keys.len() > 1, server: config.server().to_string() })
    }
}

impl Backend for RemoteBackend {
    fn call(&self, request: ApiRequest) -> BoxFuture<'_, Result<Value, ApiFailure>> {
        Box::pin(async move {
            let Some(client) = self.clients.get(&request.role) else {
                return Err(ApiFailure::new(
                    0,
                    "unauthorized",
                    format!(
                        "no API key configured for this call to {}; set LOOPCTL_ORCH_KEY (and LOOPCTL_AGENT_KEY, \
                         LOOPCTL_USER_KEY for those roles) or LOOPCTL_API_KEY in the MCP server's environment",
                        self.server
                    ),
                ));
            };
            let method = match request.method {
                Method::Get => loopctl_client::Method::GET,
                Method::Post => loopctl_client::Method::POST,
                Method::Put => loopctl_client::Method::PUT,
                Method::Patch => loopctl_client::Method::PATCH,
                Method::Delete => loopctl_client::Method::DELETE,
            };
            client
                .request(method, &request.path, request.body, &request.query, &request.headers)
                .await
                .map_err(|err| failure(&err))
        })
    }

    fn keys_per_role(&self) -> bool {
        self.distinct_keys
    }
}

fn failure(err: &ClientError) -> ApiFailure {
    match err {
        ClientError::Api { status, code, message, body } => ApiFailure {
            details: body["error"].get("details").filter(|d| !d.is_null()).cloned(),
            ..ApiFailure::new(*status, code.clone(), message.clone())
        },
        other => ApiFailure::new(0, other.code(), other.to_string()),
    }
}
