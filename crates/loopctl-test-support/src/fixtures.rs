//! Work done through the API that more than one suite needs: a project's stories and epics
//! by number, a story as a manager reads it, a key's identity, tenant settings.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::http::Api;
use crate::s;

/// A project with an imported breakdown: its id and slug, and its stories and epics by number.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub project: String,
    pub slug: String,
    pub stories: BTreeMap<String, String>,
    pub epics: BTreeMap<i64, String>,
}

impl Seeded {
    #[track_caller]
    pub fn story(&self, number: &str) -> &str {
        self.stories.get(number).unwrap_or_else(|| panic!("no story {number} in {:?}", self.stories))
    }

    #[track_caller]
    pub fn epic(&self, number: i64) -> &str {
        self.epics.get(&number).unwrap_or_else(|| panic!("no epic {number} in {:?}", self.epics))
    }
}

/// The ids of a project's stories and epics, read with `key`.
pub async fn ids_of(api: &Api, key: &str, project: &str) -> Seeded {
    let resp = api.get(key, &format!("/api/v1/stories?project_id={project}&limit=500")).await;
    let stories = resp.ok(200)["data"]
        .as_array()
        .expect("data is an array")
        .iter()
        .map(|st| (s(&st["number"]), s(&st["id"])))
        .collect();
    let resp = api.get(key, &format!("/api/v1/projects/{project}/epics")).await;
    let epics = resp.ok(200)["data"]
        .as_array()
        .expect("data is an array")
        .iter()
        .map(|e| (e["number"].as_i64().expect("epic number"), s(&e["id"])))
        .collect();
    let resp = api.get(key, &format!("/api/v1/projects/{project}")).await;
    let slug = s(&resp.ok(200)["project"]["slug"]);
    Seeded { project: project.to_string(), slug, stories, epics }
}

/// The story as `key` reads it (a manager sees reviews, verifications and artifacts).
pub async fn story(api: &Api, key: &str, id: &str) -> Value {
    api.get(key, &format!("/api/v1/stories/{id}")).await.ok(200)["story"].clone()
}

/// The agent identity behind a key (`GET /whoami`).
pub async fn agent_id(api: &Api, key: &str) -> String {
    s(&api.get(key, "/api/v1/whoami").await.ok(200)["agent_id"])
}

/// `PATCH /tenants/me {settings}` with the user key; answers the tenant's settings after it.
pub async fn set_settings(api: &Api, user: &str, settings: Value) -> Value {
    let resp = api.patch(user, "/api/v1/tenants/me", json!({"settings": settings})).await;
    resp.ok(200)["tenant"]["settings"].clone()
}
