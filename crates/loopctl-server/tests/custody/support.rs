//! The harness: a real `loopctl_server::serve` on 127.0.0.1:0 over a fresh store (a SQLite
//! file in a tempdir, or a throwaway PostgreSQL database), tenants bootstrapped on that
//! store through `loopctl_app::App`, and a small HTTP client that keeps status and JSON
//! body together. (Modelled on `tests/it/support.rs`, trimmed to what custody needs.)
//!
//! PostgreSQL: each server gets its own database `loopctl_test_<uuid v7 simple>` on the
//! server named by `LOOPCTL_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`),
//! created by `PgStore::connect` and dropped (`WITH (FORCE)`) when the server handle is
//! dropped, even when the test panics. When PostgreSQL cannot be reached the test fails; it
//! never skips.

use std::sync::Arc;
use std::time::{Duration, Instant};

use loopctl_app::{App, BootstrapRequest};
use loopctl_store::Store;
use loopctl_store_postgres::PgStore;
use loopctl_store_sqlite::SqliteStore;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tokio::task::JoinHandle;
use uuid::Uuid;

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

// ---------------------------------------------------------------------------------------
// Server

/// Aborts the serve task when dropped.
struct ServeTask(JoinHandle<std::io::Result<()>>);

impl Drop for ServeTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What keeps the store's data alive: the tempdir, or the drop guard of the database.
enum Keep {
    Sqlite { _dir: tempfile::TempDir },
    Postgres { _db: PgDb },
}

/// A running server. Fields drop in order: the serve task first, the data last.
pub struct Server {
    task: ServeTask,
    pub base: String,
    pub http: reqwest::Client,
    pub store: Arc<dyn Store>,
    keep: Keep,
}

impl Server {
    /// A server over a fresh SQLite file in its own tempdir.
    pub async fn sqlite() -> Server {
        let dir = tempfile::tempdir().expect("create a tempdir for the SQLite file");
        let store = SqliteStore::open(&dir.path().join("loopctl.db")).await.expect("open the SQLite store");
        Server::start(Arc::new(store), Keep::Sqlite { _dir: dir }).await
    }

    /// A server over a fresh PostgreSQL database (created here, dropped with the server).
    pub async fn postgres() -> Server {
        let db = PgDb::new();
        let store = db.connect().await;
        Server::start(Arc::new(store), Keep::Postgres { _db: db }).await
    }

    pub fn backend(&self) -> &'static str {
        match self.keep {
            Keep::Sqlite { .. } => "sqlite",
            Keep::Postgres { .. } => "postgres",
        }
    }

    async fn start(store: Arc<dyn Store>, keep: Keep) -> Server {
        // Fails only when a provider is already installed (by another test): fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address of the listener");
        let task = ServeTask(tokio::spawn(loopctl_server::serve(store.clone(), listener)));
        let http =
            reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("build the reqwest client");
        let server = Server { task, base: format!("http://{addr}"), http, store, keep };
        server.wait_healthy().await;
        server
    }

    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(response) = self.http.get(format!("{}/health", self.base)).send().await
                && response.status().as_u16() == 200
            {
                return;
            }
            assert!(!self.task.0.is_finished(), "the server task ended before it became healthy");
            assert!(Instant::now() < deadline, "the server did not become healthy within 15 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A tenant with a user, an orchestrator and an agent key, made directly on the store.
    pub async fn tenant(&self, name: &str) -> Tenant {
        let app = App::new(self.store.clone());
        let boot = app
            .bootstrap_tenant(BootstrapRequest { tenant_name: name.to_string(), slug: None, email: None })
            .await
            .expect("bootstrap a tenant");
        Tenant { user: boot.keys.user, orch: boot.keys.orchestrator, agent: boot.keys.agent }
    }

    // -- HTTP -----------------------------------------------------------------------------

    pub fn req(&self, method: Method, path: &str) -> Req {
        let url = format!("{}{path}", self.base);
        Req { rb: self.http.request(method.clone(), url), desc: format!("{method} {path}") }
    }

    /// One call; a `Value::Null` body sends no body at all.
    pub async fn call(&self, method: Method, key: &str, path: &str, body: &Value) -> Resp {
        let mut req = self.req(method, path).key(key);
        if !body.is_null() {
            req = req.json(body);
        }
        req.send().await
    }

    pub async fn get(&self, key: &str, path: &str) -> Resp {
        self.call(Method::GET, key, path, &Value::Null).await
    }

    pub async fn post(&self, key: &str, path: &str, body: Value) -> Resp {
        self.call(Method::POST, key, path, &body).await
    }

    pub async fn patch(&self, key: &str, path: &str, body: Value) -> Resp {
        self.call(Method::PATCH, key, path, &body).await
    }

    pub async fn delete(&self, key: &str, path: &str) -> Resp {
        self.call(Method::DELETE, key, path, &Value::Null).await
    }
}

/// A request being built.
pub struct Req {
    rb: reqwest::RequestBuilder,
    desc: String,
}

impl Req {
    pub fn key(mut self, key: &str) -> Req {
        self.rb = self.rb.bearer_auth(key);
        self
    }

    pub fn json(mut self, body: &Value) -> Req {
        self.rb = self.rb.json(body);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.rb = self.rb.header(name, value);
        self
    }

    pub async fn send(self) -> Resp {
        let response = self.rb.send().await.unwrap_or_else(|err| panic!("{}: the request failed: {err}", self.desc));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_else(|err| panic!("{}: reading the body failed: {err}", self.desc));
        let body = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
        Resp { status, body, desc: self.desc }
    }
}

/// An answer: the status and the body (JSON, or the text as a JSON string).
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub desc: String,
}

impl Resp {
    /// Asserts the status and answers the body.
    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "{}: expected {status}, got {} with body {}",
            self.desc, self.status, self.body
        );
        &self.body
    }

    /// Asserts an error answer with the wire shape `{"error":{"status","code","message"}}`.
    #[track_caller]
    pub fn err(&self, status: u16, code: &str) -> &Value {
        assert_eq!(
            (self.status, self.code()),
            (status, Some(code)),
            "{}: expected {status} {code}, got {} with body {}",
            self.desc,
            self.status,
            self.body
        );
        assert_eq!(self.body["error"]["status"], json!(self.status), "{}: error.status: {}", self.desc, self.body);
        let message = self.body["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.trim().is_empty(), "{}: error without message: {}", self.desc, self.body);
        &self.body["error"]
    }

    pub fn code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }
}

// ---------------------------------------------------------------------------------------
// Tenants, keys, dispatches

#[derive(Debug, Clone)]
pub struct Tenant {
    pub user: String,
    pub orch: String,
    pub agent: String,
}

/// A JSON string field, as an owned `String`.
#[track_caller]
pub fn s(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("expected a string, got {value}")).to_string()
}

/// The agent identity behind a key (`GET /whoami`).
pub async fn agent_id(server: &Server, key: &str) -> String {
    s(&server.get(key, "/api/v1/whoami").await.ok(200)["agent_id"])
}

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

pub async fn set_settings(server: &Server, user: &str, settings: Value) {
    server.patch(user, "/api/v1/tenants/me", json!({"settings": settings})).await.ok(200);
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

/// A project with an imported breakdown: its id, and its stories and epics by number.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub project: String,
    pub stories: std::collections::BTreeMap<String, String>,
    pub epics: std::collections::BTreeMap<i64, String>,
}

impl Seeded {
    #[track_caller]
    pub fn story(&self, number: &str) -> String {
        self.stories.get(number).unwrap_or_else(|| panic!("no story {number} in {:?}", self.stories)).clone()
    }

    #[track_caller]
    pub fn epic(&self, number: i64) -> String {
        self.epics.get(&number).unwrap_or_else(|| panic!("no epic {number} in {:?}", self.epics)).clone()
    }
}

/// Creates a project with `key` and imports `doc` into it.
pub async fn seed(server: &Server, key: &str, doc: &Value) -> Seeded {
    let slug = format!("p-{}", Uuid::now_v7().simple());
    let resp = server.post(key, "/api/v1/projects", json!({"name": slug, "slug": slug})).await;
    let project = s(&resp.ok(201)["project"]["id"]);
    server.post(key, &format!("/api/v1/projects/{project}/import"), doc.clone()).await.ok(201);
    let resp = server.get(key, &format!("/api/v1/stories?project_id={project}&limit=500")).await;
    let stories = resp.ok(200)["data"]
        .as_array()
        .expect("data is an array")
        .iter()
        .map(|st| (s(&st["number"]), s(&st["id"])))
        .collect();
    let resp = server.get(key, &format!("/api/v1/projects/{project}/epics")).await;
    let epics = resp.ok(200)["data"]
        .as_array()
        .expect("data is an array")
        .iter()
        .map(|e| (e["number"].as_i64().expect("epic number"), s(&e["id"])))
        .collect();
    Seeded { project, stories, epics }
}

/// The story as a manager sees it (with reviews, verifications, artifacts).
pub async fn story(server: &Server, key: &str, id: &str) -> Value {
    server.get(key, &format!("/api/v1/stories/{id}")).await.ok(200)["story"].clone()
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

// ---------------------------------------------------------------------------------------
// PostgreSQL test databases

fn admin_url() -> String {
    std::env::var("LOOPCTL_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_string())
}

/// `url` with its database replaced by `database`.
fn url_for(url: &str, database: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(idx) => url.split_at(idx),
        None => (url, ""),
    };
    let authority_start = base.find("://").map_or(0, |idx| idx + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |idx| authority_start + idx);
    format!("{}/{database}{query}", &base[..path_start])
}

/// A database of its own on the test server, dropped with this guard.
struct PgDb {
    name: String,
    url: String,
}

impl PgDb {
    fn new() -> PgDb {
        let name = format!("loopctl_test_{}", Uuid::now_v7().simple());
        let url = url_for(&admin_url(), &name);
        PgDb { name, url }
    }

    /// Connects, creating and migrating the database; fails (never skips) when unreachable.
    async fn connect(&self) -> PgStore {
        PgStore::connect(&self.url).await.unwrap_or_else(|err| {
            panic!(
                "PostgreSQL store for {} failed: {err}\nThese tests need a running PostgreSQL server: start it, \
                 or point LOOPCTL_TEST_POSTGRES_URL at one (a user that may CREATE DATABASE)",
                self.name
            )
        })
    }
}

impl Drop for PgDb {
    /// On its own thread with its own runtime: the test's runtime may be shutting down or
    /// panicking, and a runtime cannot be started from inside another.
    fn drop(&mut self) {
        let name = self.name.clone();
        let dropper = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(err) => return eprintln!("cannot drop test database {name}: {err}"),
            };
            runtime.block_on(async {
                let dropped = async {
                    let mut conn = PgConnection::connect(&admin_url()).await?;
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await?;
                    conn.close().await
                };
                if let Err(err) = dropped.await {
                    eprintln!("cannot drop test database {name}: {err}");
                }
            });
        });
        if dropper.join().is_err() {
            eprintln!("dropping test database {} panicked", self.name);
        }
    }
}
