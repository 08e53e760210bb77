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

/// A new key made with the user key: `(raw_key, key id, agent id or null)`.
pub async fn new_key(api: &Api, user: &str, role: &str, name: &str) -> (String, String, Value) {
    let resp = api.post(user, "/api/v1/api_keys", json!({"name": name, "role": role})).await;
    let key = &resp.ok(201)["api_key"];
    (s(&key["raw_key"]), s(&key["id"]), key["agent_id"].clone())
}

/// `POST /projects` with a slug from the name.
pub async fn create_project(api: &Api, key: &str, name: &str) -> String {
    let slug: String = name.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let resp = api.post(key, "/api/v1/projects", json!({"name": name, "slug": slug})).await;
    let project = &resp.ok(201)["project"];
    assert_eq!(project["slug"], json!(slug));
    s(&project["id"])
}

/// One epic of independent stories `1.1 … 1.n`, one criterion each.
pub fn flat_doc(n: usize) -> Value {
    let stories: Vec<Value> = (1..=n)
        .map(|i| {
            json!({"number": format!("1.{i}"), "title": format!("Story {i}"),
                   "acceptance_criteria": [{"id": format!("AC-{i}"), "description": "works"}]})
        })
        .collect();
    json!({"epics": [{"number": 1, "title": "Flat", "stories": stories}]})
}

/// Creates a project and imports `doc` into it with `key`.
pub async fn seed_with(api: &Api, key: &str, name: &str, doc: &Value) -> Seeded {
    let project = create_project(api, key, name).await;
    let resp = api.post(key, &format!("/api/v1/projects/{project}/import"), doc.clone()).await;
    resp.ok(201);
    ids_of(api, key, &project).await
}

/// Every event of the change feed (of a project, or the whole tenant), oldest first.
pub async fn all_changes(api: &Api, key: &str, project: Option<&str>) -> Vec<Value> {
    let filter = project.map(|p| format!("&project_id={p}")).unwrap_or_default();
    let mut since = 0_i64;
    let mut out = Vec::new();
    loop {
        let resp = api.get(key, &format!("/api/v1/changes?since={since}&limit=1000{filter}")).await;
        let body = resp.ok(200);
        let data = body["data"].as_array().expect("data is an array");
        out.extend(data.iter().cloned());
        if !body["has_more"].as_bool().expect("has_more is a bool") {
            return out;
        }
        since = body["next_cursor"].as_i64().expect("next_cursor is an integer");
    }
}
