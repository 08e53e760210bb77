//! What this suite adds to `loopctl_test_support`'s server (a real `loopctl_server::serve`
//! on 127.0.0.1:0 over a fresh SQLite file or PostgreSQL database): the reference's example
//! breakdown, the loop's steps as one call each, the change feed read to its end, and the
//! idempotency table read beside the store.

use std::time::Duration;

pub use loopctl_test_support::fixtures::{
    Seeded, agent_id, all_changes, create_project, flat_doc, ids_of, new_key, seed_with, set_settings, story,
};
pub use loopctl_test_support::{Req, Resp, Server, Tenant, both, s};
use serde_json::{Value, json};
use sqlx::Connection;

/// Every row of the idempotency table, read with raw SQL beside the store (so nothing the
/// store does on reading can hide what is on disk): each row's text columns and its scope
/// as one string.
pub async fn idempotency_rows(server: &Server) -> Vec<String> {
    idempotency_table(server)
        .await
        .into_iter()
        .map(|row| {
            format!("{} {} {} {} {}", row.key, row.method, row.path, row.body, String::from_utf8_lossy(&row.scope))
        })
        .collect()
}

/// One row of `idempotent_responses`, read around the server.
#[derive(Debug, sqlx::FromRow)]
pub struct IdempotencyRow {
    pub key: String,
    pub status: i32,
    pub method: String,
    pub path: String,
    pub body: String,
    pub scope: Vec<u8>,
}

/// Every row of `idempotent_responses`, read from the database itself.
pub async fn idempotency_table(server: &Server) -> Vec<IdempotencyRow> {
    const SQL: &str = "SELECT key, status, method, path, body, scope FROM idempotent_responses";
    let rows: Result<Vec<IdempotencyRow>, sqlx::Error> = match server.sqlite_path() {
        Some(path) => {
            let url = format!("sqlite://{}?mode=ro", path.display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("open the SQLite file read-only");
            sqlx::query_as(SQL).fetch_all(&mut conn).await
        }
        None => {
            let url = server.database_url().expect("a server not on SQLite is on PostgreSQL");
            let mut conn = sqlx::PgConnection::connect(url).await.expect("connect to the test database");
            sqlx::query_as(SQL).fetch_all(&mut conn).await
        }
    };
    rows.expect("read idempotent_responses")
}

/// The example of reference/api.md §9: epics 1 and 2; stories 1.1 (two criteria), 1.2,
/// 2.1; 1.2 depends on 1.1 and epic 2 on epic 1.
pub fn reference_doc() -> Value {
    json!({
      "epics": [
        {
          "number": 1,
          "title": "Accounts",
          "phase": "p0",
          "stories": [
            {"number": "1.1", "title": "Sign-up endpoint", "estimated_hours": 3,
             "acceptance_criteria": [
               {"id": "AC-1.1.1", "description": "POST /signup creates a user and returns 201"},
               {"id": "AC-1.1.2", "description": "Duplicate email returns 422"}]},
            {"number": "1.2", "title": "Login endpoint",
             "acceptance_criteria": [{"id": "AC-1.2.1", "description": "Valid credentials return a token"}]}
          ]
        },
        {
          "number": 2,
          "title": "Billing",
          "stories": [
            {"number": "2.1", "title": "Invoice list",
             "acceptance_criteria": [{"id": "AC-2.1.1", "description": "GET /invoices is paginated"}],
             "metadata": {"area": "billing"}}
          ]
        }
      ],
      "story_dependencies": [{"story": "1.2", "depends_on": "1.1"}],
      "epic_dependencies": [{"epic": 2, "depends_on": 1}]
    })
}

/// The reference example in a new project.
pub async fn seed(server: &Server, t: &Tenant, name: &str) -> Seeded {
    seed_with(server, &t.orch, name, &reference_doc()).await
}

/// The numbers of the ready stories, in order.
pub async fn ready_numbers(server: &Server, key: &str, project: &str) -> Vec<String> {
    let resp = server.get(key, &format!("/api/v1/stories/ready?project_id={project}")).await;
    resp.ok(200)["data"].as_array().expect("data is an array").iter().map(|st| s(&st["number"])).collect()
}

/// Contracts with the story's real title and criteria count.
pub async fn contract(server: &Server, key: &str, id: &str) -> Value {
    let st = story(server, key, id).await;
    let body = json!({"story_title": st["title"], "ac_count": st["ac_count"]});
    let resp = server.post(key, &format!("/api/v1/stories/{id}/contract"), body).await;
    resp.ok(200)["story"].clone()
}

/// Contract + claim; answers the claim epoch.
pub async fn claim(server: &Server, key: &str, id: &str) -> i64 {
    contract(server, key, id).await;
    let resp = server.post(key, &format!("/api/v1/stories/{id}/claim"), Value::Null).await;
    resp.ok(200)["story"]["claim_epoch"].as_i64().expect("claim_epoch is an integer")
}

pub fn commit_artifact(sha: &str) -> Value {
    json!({"artifact": {"artifact_type": "commit_diff", "details": {"commit_sha": sha}}})
}

/// Contract, claim, start and report a story with one agent key; answers the claim epoch.
pub async fn to_reported(server: &Server, agent: &str, id: &str) -> i64 {
    let epoch = claim(server, agent, id).await;
    server.post(agent, &format!("/api/v1/stories/{id}/start"), Value::Null).await.ok(200);
    let resp = server.post(agent, &format!("/api/v1/stories/{id}/report"), commit_artifact("0123abcd")).await;
    assert_eq!(resp.ok(200)["story"]["agent_status"], "reported_done");
    epoch
}

/// The whole loop for one story: implemented by `agent`, verified by `orch`.
pub async fn to_verified(server: &Server, agent: &str, orch: &str, id: &str) {
    to_reported(server, agent, id).await;
    let resp = server.post(orch, &format!("/api/v1/stories/{id}/verify"), json!({"summary": "ok"})).await;
    assert_eq!(resp.ok(202)["story"]["verified_status"], "verified");
}

pub async fn reject(server: &Server, orch: &str, id: &str, reason: &str) -> Value {
    let resp = server.post(orch, &format!("/api/v1/stories/{id}/reject"), json!({"reason": reason})).await;
    resp.ok(200)["story"].clone()
}

pub fn rfc3339_in(duration: Duration) -> String {
    let at = chrono::Utc::now() + chrono::Duration::from_std(duration).expect("a short duration");
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
