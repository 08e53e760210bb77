//! Throwaway PostgreSQL databases for tests.
//!
//! Each test gets its own database `loopctl_test_<uuid v7>`, created on the server named by
//! `LOOPCTL_TEST_POSTGRES_URL` and dropped when the test's store is dropped, even when the
//! test panics. Databases left behind by a killed test process are dropped by the next run
//! once they are an hour old (the age is read from the v7 uuid in the name). When the
//! server cannot be reached the tests fail; they never skip.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use loopctl_store::*;
use loopctl_store_postgres::PgStore;
use sqlx::{Connection, PgConnection};
use tokio::sync::OnceCell;
use uuid::Uuid;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const PREFIX: &str = "loopctl_test_";
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// The server the tests use, as an admin connection URL.
pub fn admin_url() -> String {
    std::env::var("LOOPCTL_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

async fn admin() -> PgConnection {
    let url = admin_url();
    match PgConnection::connect(&url).await {
        Ok(conn) => conn,
        Err(err) => panic!(
            "PostgreSQL is unreachable at {}: {err}\n\
             The PostgreSQL store tests need a running server: start it, or point \
             LOOPCTL_TEST_POSTGRES_URL at one (a user that may CREATE DATABASE)",
            redacted(&url)
        ),
    }
}

/// `url` without its password, for messages that end up in CI logs.
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

/// `url` with its database replaced by `database`.
pub fn url_for(url: &str, database: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(idx) => url.split_at(idx),
        None => (url, ""),
    };
    let authority_start = base.find("://").map_or(0, |idx| idx + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |idx| authority_start + idx);
    format!("{}/{database}{query}", &base[..path_start])
}

/// An empty database on the test server, dropped with this guard.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn create() -> TestDb {
        static SWEPT: OnceCell<()> = OnceCell::const_new();
        SWEPT.get_or_init(sweep_stale).await;
        let name = format!("{PREFIX}{}", Uuid::now_v7().simple());
        let mut conn = admin().await;
        // The name is ours (a prefix and hex digits), so quoting it is enough.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|err| panic!("cannot create test database {name}: {err}"));
        let _ = conn.close().await;
        let url = url_for(&admin_url(), &name);
        TestDb { name, url }
    }

    /// A store on this database (migrating it on first use).
    pub async fn store(&self) -> PgStore {
        PgStore::connect(&self.url).await.expect("connect the PgStore to the test database")
    }
}

impl Drop for TestDb {
    /// Runs on its own thread with its own runtime: the test's runtime may be shutting down
    /// or panicking, and a runtime cannot be started from inside another.
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

/// Drops test databases an hour old or older: left behind by a killed test process.
async fn sweep_stale() {
    let mut conn = admin().await;
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'loopctl\\_test\\_%'")
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
    let _ = conn.close().await;
    for name in names {
        let created =
            name.strip_prefix(PREFIX).and_then(|id| Uuid::parse_str(id).ok()).and_then(|id| id.get_timestamp()).map(
                |ts| {
                    let (secs, nanos) = ts.to_unix();
                    SystemTime::UNIX_EPOCH + Duration::new(secs, nanos)
                },
            );
        let stale = created.is_some_and(|at| at.elapsed().is_ok_and(|age| age >= STALE_AFTER));
        if stale && let Err(err) = drop_database(&name).await {
            eprintln!("cannot drop stale test database {name}: {err}");
        }
    }
}

/// The conformance suite's `fresh_store`: an empty, migrated store on its own database.
pub async fn fresh_store() -> Arc<dyn Store> {
    let db = TestDb::create().await;
    let store = db.store().await;
    Arc::new(TestStore { store, _db: db })
}

/// A store that drops its database when it is dropped. Fields drop in order: the pool
/// first, then the database.
pub struct TestStore {
    pub store: PgStore,
    pub _db: TestDb,
}

impl Store for TestStore {
    fn backend(&self) -> &'static str {
        self.store.backend()
    }
    fn commit(&self, batch: WriteBatch) -> StoreResult<'_, Vec<i64>> {
        self.store.commit(batch)
    }
    fn ping(&self) -> StoreResult<'_, ()> {
        self.store.ping()
    }
    fn tenant(&self, id: Uuid) -> StoreResult<'_, Option<TenantRecord>> {
        self.store.tenant(id)
    }
    fn api_key_by_hash(&self, hash: &[u8]) -> StoreResult<'_, Option<ApiKeyRecord>> {
        self.store.api_key_by_hash(hash)
    }
    fn api_keys(&self, tenant_id: Uuid, include_revoked: bool) -> StoreResult<'_, Vec<ApiKeyRecord>> {
        self.store.api_keys(tenant_id, include_revoked)
    }
    fn agent(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<AgentRecord>> {
        self.store.agent(tenant_id, id)
    }
    fn agents(&self, tenant_id: Uuid) -> StoreResult<'_, Vec<AgentRecord>> {
        self.store.agents(tenant_id)
    }
    fn project(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<ProjectRecord>> {
        self.store.project(tenant_id, id)
    }
    fn project_by_slug(&self, tenant_id: Uuid, slug: &str) -> StoreResult<'_, Option<ProjectRecord>> {
        self.store.project_by_slug(tenant_id, slug)
    }
    fn projects(&self, tenant_id: Uuid, include_archived: bool) -> StoreResult<'_, Vec<ProjectRecord>> {
        self.store.projects(tenant_id, include_archived)
    }
    fn epic(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<EpicRecord>> {
        self.store.epic(tenant_id, id)
    }
    fn epics(&self, tenant_id: Uuid, project_id: Uuid) -> StoreResult<'_, Vec<EpicRecord>> {
        self.store.epics(tenant_id, project_id)
    }
    fn story(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<StoryRecord>> {
        self.store.story(tenant_id, id)
    }
    fn story_by_number(&self, tenant_id: Uuid, project_id: Uuid, number: &str) -> StoreResult<'_, Option<StoryRecord>> {
        self.store.story_by_number(tenant_id, project_id, number)
    }
    fn stories(&self, tenant_id: Uuid, filter: StoryFilter) -> StoreResult<'_, (Vec<StoryRecord>, i64)> {
        self.store.stories(tenant_id, filter)
    }
    fn dependencies(&self, tenant_id: Uuid, project_id: Uuid) -> StoreResult<'_, Dependencies> {
        self.store.dependencies(tenant_id, project_id)
    }
    fn artifacts(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<ArtifactRecord>> {
        self.store.artifacts(tenant_id, story_id)
    }
    fn reviews(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<ReviewRecord>> {
        self.store.reviews(tenant_id, story_id)
    }
    fn verifications(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<VerificationRecord>> {
        self.store.verifications(tenant_id, story_id)
    }
    fn orchestrator_state(
        &self,
        tenant_id: Uuid,
        project_id: Uuid,
        state_key: &str,
    ) -> StoreResult<'_, Option<OrchestratorStateRecord>> {
        self.store.orchestrator_state(tenant_id, project_id, state_key)
    }
    fn expired_claims(&self, query: ExpiredClaims) -> StoreResult<'_, Vec<StoryRecord>> {
        self.store.expired_claims(query)
    }
    fn skill_versions(&self, tenant_id: Uuid, name: Option<&str>) -> StoreResult<'_, Vec<SkillVersionRecord>> {
        self.store.skill_versions(tenant_id, name)
    }
    fn skill_results(&self, tenant_id: Uuid, name: &str) -> StoreResult<'_, Vec<SkillResultRecord>> {
        self.store.skill_results(tenant_id, name)
    }
    fn idempotent_response(&self, scope: &[u8], key: &str) -> StoreResult<'_, Option<IdempotentResponse>> {
        self.store.idempotent_response(scope, key)
    }
    fn ready_stories(
        &self,
        tenant_id: Uuid,
        project_id: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<'_, Vec<StoryRecord>> {
        self.store.ready_stories(tenant_id, project_id, now)
    }
    fn stage_counts(
        &self,
        tenant_id: Uuid,
        project_id: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<'_, Vec<EpicCounts>> {
        self.store.stage_counts(tenant_id, project_id, now)
    }
    fn unverified_blockers(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, i64> {
        self.store.unverified_blockers(tenant_id, story_id)
    }
    fn dispatch(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<DispatchRecord>> {
        self.store.dispatch(tenant_id, id)
    }
    fn dispatches(&self, tenant_id: Uuid, story_id: Option<Uuid>) -> StoreResult<'_, Vec<DispatchRecord>> {
        self.store.dispatches(tenant_id, story_id)
    }
    fn criterion_records(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<CriterionRecord>> {
        self.store.criterion_records(tenant_id, story_id)
    }
    fn verification_runs(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<VerificationRunRecord>> {
        self.store.verification_runs(tenant_id, story_id)
    }
    fn events(&self, tenant_id: Uuid, filter: EventFilter) -> StoreResult<'_, Vec<EventRecord>> {
        self.store.events(tenant_id, filter)
    }
}

#[test]
fn url_for_replaces_only_the_database() {
    assert_eq!(url_for("postgres://u@h:5432/test", "x"), "postgres://u@h:5432/x");
    assert_eq!(url_for("postgres://u@h:5432/test?sslmode=disable", "x"), "postgres://u@h:5432/x?sslmode=disable");
    assert_eq!(url_for("postgres://u@h", "x"), "postgres://u@h/x");
    assert_eq!(url_for("postgres://u@h?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
}

#[test]
fn redacted_hides_only_the_password() {
    assert_eq!(redacted("postgres://u:secret@h:5432/test"), "postgres://u:***@h:5432/test");
    assert_eq!(redacted("postgres://u@h:5432/test"), "postgres://u@h:5432/test");
    assert_eq!(redacted("postgres://h:5432/test"), "postgres://h:5432/test");
}
