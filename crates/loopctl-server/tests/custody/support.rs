//! What the custody suite adds to `loopctl_test_support`'s server (a real
//! `loopctl_server::serve` on 127.0.0.1:0 over a fresh SQLite file or PostgreSQL database):
//! keys linked to an identity, dispatches, breakdowns of independent stories, and the
//! implementer's half of the loop with a known contract.

pub use loopctl_test_support::fixtures::{Seeded, agent_id, ids_of, set_settings, story};
pub use loopctl_test_support::{Resp, Server, Tenant, both, s};
use serde_json::{Value, json};
use uuid::Uuid;

/// A new key made with the user key: `(raw_key, key id, agent id)`; `agent_id` links it to
/// an existing identity.
pub async fn new_key(server: &Server, user: &str, role: &str, agent_id: Option<&str>) -> (String, String, Value) {
    let mut body = json!({"name": format!("{role}-{}", Uuid::now_v7().simple()), "role": role});
    if let Some(agent) = agent_id {
        body["agent_id"] = json!(agent);
    }
    let resp = server.post(user, "/api/v1/api_keys", body).await;
    let key = &resp.ok(201)["api_key"];
    (s(&key["raw_key"]), s(&key["id"]), key["agent_id"].clone())
}

/// A dispatched sub-agent: its dispatch id, capability token and identity.
#[derive(Debug, Clone)]
pub struct Dispatched {
    pub id: String,
    pub key: String,
    pub agent_id: String,
}

/// `POST /dispatches {role, story_id}` with a manager key; answers the raw response.
pub async fn dispatch_raw(server: &Server, manager: &str, role: &str, story: &str, extra: Value) -> Resp {
    let mut body = json!({"role": role, "story_id": story});
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            body[k] = v;
        }
    }
    server.post(manager, "/api/v1/dispatches", body).await
}

pub async fn dispatch(server: &Server, manager: &str, role: &str, story: &str) -> Dispatched {
    let resp = dispatch_raw(server, manager, role, story, json!({})).await;
    let data = &resp.ok(201)["data"];
    assert_eq!(data["dispatch"]["story_id"], json!(story), "dispatch answer: {data}");
    assert_eq!(data["api_key"]["agent_id"], data["dispatch"]["agent_id"], "dispatch answer: {data}");
    Dispatched {
        id: s(&data["dispatch"]["id"]),
        key: s(&data["api_key"]["raw_key"]),
        agent_id: s(&data["dispatch"]["agent_id"]),
    }
}

// ---------------------------------------------------------------------------------------
// Work

/// Stories `E.1 … E.n` for each epic `E` given as a count, one criterion each, titled
/// `Story E.i`; no dependencies.
pub fn doc(epics: &[usize]) -> Value {
    let epics: Vec<Value> = epics
        .iter()
        .enumerate()
        .map(|(e, &n)| {
            let e = e + 1;
            let stories: Vec<Value> = (1..=n)
                .map(|i| {
                    json!({"number": format!("{e}.{i}"), "title": format!("Story {e}.{i}"),
                           "acceptance_criteria": [{"id": format!("AC-{e}.{i}"), "description": "works"}]})
                })
                .collect();
            json!({"number": e, "title": format!("Epic {e}"), "stories": stories})
        })
        .collect();
    json!({ "epics": epics })
}

/// Creates a project with `key` and imports `doc` into it.
pub async fn seed(server: &Server, key: &str, doc: &Value) -> Seeded {
    let slug = format!("p-{}", Uuid::now_v7().simple());
    let resp = server.post(key, "/api/v1/projects", json!({"name": slug, "slug": slug})).await;
    let project = s(&resp.ok(201)["project"]["id"]);
    server.post(key, &format!("/api/v1/projects/{project}/import"), doc.clone()).await.ok(201);
    ids_of(server, key, &project).await
}

pub fn path(id: &str, verb: &str) -> String {
    format!("/api/v1/stories/{id}/{verb}")
}

/// The contract body of a story made by `doc`: its title and one criterion.
pub fn contract_body(number: &str) -> Value {
    json!({"story_title": format!("Story {number}"), "ac_count": 1})
}

pub fn commit_artifact() -> Value {
    json!({"artifact": {"artifact_type": "commit_diff", "details": {"commit_sha": "0123abcd"}}})
}

/// Contract + claim with `key`; answers the claim epoch.
pub async fn claim(server: &Server, key: &str, id: &str, number: &str) -> i64 {
    server.post(key, &path(id, "contract"), contract_body(number)).await.ok(200);
    let resp = server.post(key, &path(id, "claim"), Value::Null).await;
    resp.ok(200)["story"]["claim_epoch"].as_i64().expect("claim_epoch is an integer")
}

/// Contract, claim, start and report with one key; answers the claim epoch.
pub async fn to_reported(server: &Server, key: &str, id: &str, number: &str) -> i64 {
    let epoch = claim(server, key, id, number).await;
    server.post(key, &path(id, "start"), Value::Null).await.ok(200);
    let resp = server.post(key, &path(id, "report"), commit_artifact()).await;
    assert_eq!(resp.ok(200)["story"]["agent_status"], "reported_done");
    epoch
}

/// Events of the change feed after `since`, oldest first, and the cursor to continue from.
pub async fn changes_after(server: &Server, key: &str, since: i64) -> (Vec<Value>, i64) {
    let mut since = since;
    let mut out = Vec::new();
    loop {
        let resp = server.get(key, &format!("/api/v1/changes?since={since}&limit=1000")).await;
        let body = resp.ok(200);
        out.extend(body["data"].as_array().expect("data is an array").iter().cloned());
        since = body["next_cursor"].as_i64().unwrap_or(since);
        if !body["has_more"].as_bool().expect("has_more is a bool") {
            return (out, since);
        }
    }
}
