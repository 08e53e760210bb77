//! The harness: a real `loopctl_server::serve` on 127.0.0.1:0 over a fresh store (a SQLite
//! file in a tempdir, or a throwaway PostgreSQL database), tenants bootstrapped on that
//! store, and a small HTTP client that keeps status and JSON body together.
//!
//! PostgreSQL: each server gets its own database `loopctl_test_<uuid v7 simple>` on the
//! server named by `LOOPCTL_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`),
//! created by `PgStore::connect` and dropped when the server handle is dropped, even when the
//! test panics. When PostgreSQL cannot be reached the test fails; it never skips.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use loopctl_app::{App, BootstrapRequest};
use loopctl_store::Store;
use loopctl_store_postgres::PgStore;
use loopctl_store_sqlite::SqliteStore;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;
use uuid::Uuid;

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const PG_PREFIX: &str = "loopctl_test_";
const PG_STALE_AFTER: Duration = Duration::from_secs(3600);

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
    Sqlite { _dir: tempfile::TempDir, path: PathBuf },
    Postgres { db: PgDb },
}

/// A running server. Fields drop in order: the serve task first, the data last.
pub struct Server {
    task: ServeTask,
    pub base: String,
    pub http: reqwest::Client,
    pub store: Arc<dyn Store>,
    keep: Keep,
}

fn install_crypto() {
    // Fails only when a provider is already installed (by another test): fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Server {
    /// A server over a fresh SQLite file in its own tempdir.
    pub async fn sqlite() -> Server {
        let dir = tempfile::tempdir().expect("create a tempdir for the SQLite file");
        let path = dir.path().join("loopctl.db");
        let store = SqliteStore::open(&path).await.expect("open the SQLite store");
        Server::start(Arc::new(store), Keep::Sqlite { _dir: dir, path }).await
    }

    /// A server over a fresh PostgreSQL database (created here, dropped with the server).
    pub async fn postgres() -> Server {
        let db = PgDb::new().await;
        let store = db.connect().await;
        Server::start(Arc::new(store), Keep::Postgres { db }).await
    }

    /// The PostgreSQL URL of this server's database (for a second server on the same data).
    pub fn database_url(&self) -> Option<String> {
        match &self.keep {
            Keep::Sqlite { .. } => None,
            Keep::Postgres { db } => Some(db.url.clone()),
        }
    }

    /// Every row of the idempotency table, read with raw SQL beside the store (so nothing the
    /// store does on reading can hide what is on disk): each row's text columns and its scope
    /// as one string.
    pub async fn idempotency_rows(&self) -> Vec<String> {
        const SQL: &str = "SELECT key, method, path, body, scope FROM idempotent_responses";
        /// key, method, path, body, scope
        type Row = (String, String, String, String, Vec<u8>);
        let rows: Result<Vec<Row>, sqlx::Error> = match &self.keep {
            Keep::Sqlite { path, .. } => {
                let url = format!("sqlite://{}?mode=ro", path.display());
                let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("open the SQLite file read-only");
                sqlx::query_as(SQL).fetch_all(&mut conn).await
            }
            Keep::Postgres { db } => {
                let mut conn = PgConnection::connect(&db.url).await.expect("connect to the test database");
                sqlx::query_as(SQL).fetch_all(&mut conn).await
            }
        };
        let rows = rows.expect("read idempotent_responses");
        rows.into_iter()
            .map(|(key, method, path, body, scope)| {
                format!("{key} {method} {path} {body} {}", String::from_utf8_lossy(&scope))
            })
            .collect()
    }

    pub fn backend(&self) -> &'static str {
        match self.keep {
            Keep::Sqlite { .. } => "sqlite",
            Keep::Postgres { .. } => "postgres",
        }
    }

    async fn start(store: Arc<dyn Store>, keep: Keep) -> Server {
        install_crypto();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address of the listener");
        let task = ServeTask(tokio::spawn(loopctl_server::serve(store.clone(), listener)));
        let http =
            reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("build the reqwest client");
        let server = Server { task, base: format!("http://{addr}"), http, store, keep };
        server.wait_healthy().await;
        server
    }

    /// Polls `GET /health` until it answers 200.
    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let answer = self.http.get(format!("{}/health", self.base)).send().await;
            if let Ok(response) = answer
                && response.status().as_u16() == 200
            {
                return;
            }
            assert!(!self.task.0.is_finished(), "the server task ended before it became healthy");
            assert!(Instant::now() < deadline, "the server did not become healthy within 15 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the server and starts a new one on the same data (same SQLite file, same
    /// PostgreSQL database), as after a crash or a redeploy.
    pub async fn restart(self) -> Server {
        let Server { task, http, store, keep, .. } = self;
        drop(task);
        drop(http);
        drop(store);
        match keep {
            Keep::Sqlite { _dir, path } => {
                let store = SqliteStore::open(&path).await.expect("reopen the SQLite store");
                Server::start(Arc::new(store), Keep::Sqlite { _dir, path }).await
            }
            Keep::Postgres { db } => {
                let store = db.connect().await;
                Server::start(Arc::new(store), Keep::Postgres { db }).await
            }
        }
    }

    /// A tenant with a user, an orchestrator and an agent key, made directly on the store.
    pub async fn tenant(&self, name: &str) -> Tenant {
        let app = App::new(self.store.clone());
        let boot = app
            .bootstrap_tenant(BootstrapRequest { tenant_name: name.to_string(), slug: None, email: None })
            .await
            .expect("bootstrap a tenant");
        Tenant {
            id: boot.tenant_id.to_string(),
            user: boot.keys.user,
            orch: boot.keys.orchestrator,
            agent: boot.keys.agent,
        }
    }

    // -- HTTP -----------------------------------------------------------------------------

    pub fn req(&self, method: Method, path: &str) -> Req {
        let url = format!("{}{path}", self.base);
        Req { rb: self.http.request(method.clone(), url), desc: format!("{method} {path}") }
    }

    pub async fn call(&self, method: Method, key: Option<&str>, path: &str, body: Option<&Value>) -> Resp {
        let mut req = self.req(method, path);
        if let Some(key) = key {
            req = req.key(key);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        req.send().await
    }

    pub async fn get(&self, key: &str, path: &str) -> Resp {
        self.call(Method::GET, Some(key), path, None).await
    }

    /// POST; a `Value::Null` body sends no body at all.
    pub async fn post(&self, key: &str, path: &str, body: Value) -> Resp {
        let body = (!body.is_null()).then_some(body);
        self.call(Method::POST, Some(key), path, body.as_ref()).await
    }

    pub async fn patch(&self, key: &str, path: &str, body: Value) -> Resp {
        self.call(Method::PATCH, Some(key), path, Some(&body)).await
    }

    pub async fn put(&self, key: &str, path: &str, body: Value) -> Resp {
        self.call(Method::PUT, Some(key), path, Some(&body)).await
    }

    pub async fn delete(&self, key: &str, path: &str) -> Resp {
        self.call(Method::DELETE, Some(key), path, None).await
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

    /// A raw body with a content type (malformed JSON, oversized bodies).
    pub fn raw(mut self, body: impl Into<String>, content_type: &str) -> Req {
        let body: String = body.into();
        self.rb = self.rb.header("content-type", content_type).body(body);
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

    /// Asserts an error answer: status, code, and the wire shape
    /// `{"error":{"status","code","message",…}}` with a code WIRE.md lists.
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
        self.assert_error_shape();
        &self.body["error"]
    }

    /// The error code, when the body is an error.
    pub fn code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }

    /// What is wrong with an error answer's shape, if anything.
    pub fn shape_problem(&self) -> Option<String> {
        let error = self.body.get("error")?;
        if !self.body.is_object() || !error.is_object() {
            return Some(format!("not the error shape {{\"error\":{{…}}}}: {}", self.body));
        }
        if error["status"] != json!(self.status) {
            return Some(format!("error.status differs from HTTP status {}: {}", self.status, self.body));
        }
        match error["code"].as_str() {
            Some(code) if code.parse::<loopctl_api::ErrorCode>().is_ok() => {}
            _ => return Some(format!("error.code missing or not in WIRE.md's list: {}", self.body)),
        }
        if error["message"].as_str().is_none_or(|m| m.trim().is_empty()) {
            return Some(format!("error without message: {}", self.body));
        }
        None
    }

    #[track_caller]
    pub fn assert_error_shape(&self) {
        let error = &self.body["error"];
        assert_eq!(
            error["status"],
            json!(self.status),
            "{}: error.status differs from HTTP status: {}",
            self.desc,
            self.body
        );
        let code = error["code"].as_str().unwrap_or_else(|| panic!("{}: error without code: {}", self.desc, self.body));
        assert!(
            code.parse::<loopctl_api::ErrorCode>().is_ok(),
            "{}: code `{code}` is not in WIRE.md's list",
            self.desc
        );
        let message = error["message"].as_str().unwrap_or_default();
        assert!(!message.trim().is_empty(), "{}: error without message: {}", self.desc, self.body);
    }
}

// ---------------------------------------------------------------------------------------
// Tenants and the work they do

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
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
    let me = server.get(key, "/api/v1/whoami").await;
    s(&me.ok(200)["agent_id"])
}

/// A new key made with the user key: `(raw_key, key id, agent id or null)`.
pub async fn new_key(server: &Server, user: &str, role: &str, name: &str) -> (String, String, Value) {
    let resp = server.post(user, "/api/v1/api_keys", json!({"name": name, "role": role})).await;
    let key = &resp.ok(201)["api_key"];
    (s(&key["raw_key"]), s(&key["id"]), key["agent_id"].clone())
}

pub async fn set_settings(server: &Server, user: &str, settings: Value) -> Value {
    let resp = server.patch(user, "/api/v1/tenants/me", json!({"settings": settings})).await;
    resp.ok(200)["tenant"]["settings"].clone()
}

/// `POST /projects` with a slug from the name.
pub async fn create_project(server: &Server, key: &str, name: &str) -> String {
    let slug: String = name.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let resp = server.post(key, "/api/v1/projects", json!({"name": name, "slug": slug})).await;
    let project = &resp.ok(201)["project"];
    assert_eq!(project["slug"], json!(slug));
    s(&project["id"])
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

/// A project with an imported breakdown: its id, and its stories and epics by number.
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

/// Creates a project and imports `doc` into it with `key`.
pub async fn seed_with(server: &Server, key: &str, name: &str, doc: &Value) -> Seeded {
    let project = create_project(server, key, name).await;
    let resp = server.post(key, &format!("/api/v1/projects/{project}/import"), doc.clone()).await;
    resp.ok(201);
    ids_of(server, key, &project).await
}

/// The reference example in a new project.
pub async fn seed(server: &Server, t: &Tenant, name: &str) -> Seeded {
    seed_with(server, &t.orch, name, &reference_doc()).await
}

pub async fn ids_of(server: &Server, key: &str, project: &str) -> Seeded {
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
    let resp = server.get(key, &format!("/api/v1/projects/{project}")).await;
    let slug = s(&resp.ok(200)["project"]["slug"]);
    Seeded { project: project.to_string(), slug, stories, epics }
}

pub async fn story(server: &Server, key: &str, id: &str) -> Value {
    server.get(key, &format!("/api/v1/stories/{id}")).await.ok(200)["story"].clone()
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

/// Every event of the change feed (of a project, or the whole tenant), oldest first.
pub async fn all_changes(server: &Server, key: &str, project: Option<&str>) -> Vec<Value> {
    let filter = project.map(|p| format!("&project_id={p}")).unwrap_or_default();
    let mut since = 0_i64;
    let mut out = Vec::new();
    loop {
        let resp = server.get(key, &format!("/api/v1/changes?since={since}&limit=1000{filter}")).await;
        let body = resp.ok(200);
        let data = body["data"].as_array().expect("data is an array");
        out.extend(data.iter().cloned());
        if !body["has_more"].as_bool().expect("has_more is a bool") {
            return out;
        }
        since = body["next_cursor"].as_i64().expect("next_cursor is an integer");
    }
}

pub fn rfc3339_in(duration: Duration) -> String {
    let at = chrono::Utc::now() + chrono::Duration::from_std(duration).expect("a short duration");
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
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

/// `url` without its password, for failure messages.
fn redacted(url: &str) -> String {
    let authority_start = url.find("://").map_or(0, |idx| idx + 3);
    let Some(at) = url[authority_start..].find('@').map(|idx| authority_start + idx) else {
        return url.to_string();
    };
    match url[authority_start..at].find(':') {
        Some(colon) => format!("{}:***{}", &url[..authority_start + colon], &url[at..]),
        None => url.to_string(),
    }
}

/// A database of its own on the test server, dropped with this guard.
struct PgDb {
    name: String,
    url: String,
}

impl PgDb {
    async fn new() -> PgDb {
        static SWEPT: OnceCell<()> = OnceCell::const_new();
        SWEPT.get_or_init(sweep_stale).await;
        let name = format!("{PG_PREFIX}{}", Uuid::now_v7().simple());
        let url = url_for(&admin_url(), &name);
        PgDb { name, url }
    }

    /// Connects (creating and migrating the database on first use).
    async fn connect(&self) -> PgStore {
        PgStore::connect(&self.url).await.unwrap_or_else(|err| {
            panic!(
                "PostgreSQL store on {} failed: {err}\nThese tests need a running PostgreSQL server: start it, \
                 or point LOOPCTL_TEST_POSTGRES_URL at one (a user that may CREATE DATABASE)",
                redacted(&self.url)
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
                if let Err(err) = drop_database(&name).await {
                    eprintln!("cannot drop test database {name}: {err}");
                }
            });
        });
        if dropper.join().is_err() {
            eprintln!("dropping test database {} panicked", self.name);
        }
    }
}

async fn drop_database(name: &str) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect(&admin_url()).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")))
        .execute(&mut conn)
        .await?;
    conn.close().await
}

/// Drops test databases an hour old or older, left behind by a killed test process.
async fn sweep_stale() {
    let Ok(mut conn) = PgConnection::connect(&admin_url()).await else {
        // Unreachable: `connect` fails the test with a clear message right after.
        return;
    };
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'loopctl\\_test\\_%'")
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
    let _ = conn.close().await;
    for name in names {
        let created =
            name.strip_prefix(PG_PREFIX).and_then(|id| Uuid::parse_str(id).ok()).and_then(|id| id.get_timestamp()).map(
                |ts| {
                    let (secs, nanos) = ts.to_unix();
                    SystemTime::UNIX_EPOCH + Duration::new(secs, nanos)
                },
            );
        let stale = created.is_some_and(|at| at.elapsed().is_ok_and(|age| age >= PG_STALE_AFTER));
        if stale && let Err(err) = drop_database(&name).await {
            eprintln!("cannot drop stale test database {name}: {err}");
        }
    }
}

#[test]
fn url_for_replaces_only_the_database() {
    assert_eq!(url_for("postgres://u@h:5432/test", "x"), "postgres://u@h:5432/x");
    assert_eq!(url_for("postgres://u@h:5432/test?sslmode=disable", "x"), "postgres://u@h:5432/x?sslmode=disable");
    assert_eq!(url_for("postgres://u@h", "x"), "postgres://u@h/x");
    assert_eq!(redacted("postgres://u:secret@h:5432/test"), "postgres://u:***@h:5432/test");
}
