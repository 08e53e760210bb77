//! Migrations on databases written by an older loopctl: what sqlx's migrator takes over from
//! loopctl's own, what it refuses, and what the migrations do to old rows.

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use loopctl_core::StoryNumber;
use loopctl_store::conformance::Fixture;
use loopctl_store::{Store, StoreError, StoryFilter, WriteOp};
use loopctl_store_sqlite::SqliteStore;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};
use uuid::Uuid;

const NUMBERS: [&str; 7] = ["2.1", "1.1001", "1.999", "2.10", "1.1000", "2.9", "3"];

fn old_key(number: &str) -> i64 {
    let (major, minor) = number.split_once('.').unwrap_or((number, "0"));
    major.parse::<i64>().expect("major") * 10_000 + minor.parse::<i64>().expect("minor") * 10
}

/// Migration 7: story sort keys of the reference's formula (`major*10000 + minor*10`, where
/// `1.1001` and `2.1` collide) are recomputed from the number text, so stories list in
/// numeric order.
#[tokio::test]
async fn stories_keyed_by_the_old_formula_list_in_numeric_order_after_migration_7() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("loopctl.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.expect("open"));
    let fx = Fixture::new(store.clone()).await;
    // As an older loopctl wrote them: one epic, keys of the old formula.
    let mut batch = Vec::new();
    for number in NUMBERS {
        let mut record = fx.story_record(number);
        record.sort_key = old_key(number);
        batch.push(WriteOp::InsertStory(record));
    }
    store.commit(batch).await.expect("insert stories");
    let url = format!("sqlite://{}", path.display());
    let mut conn = SqliteConnection::connect(&url).await.expect("connect");
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 7").execute(&mut conn).await.expect("forget 7");
    conn.close().await.expect("close");
    let tenant = fx.tenant;
    drop(fx);
    drop(store);

    let store = SqliteStore::open(&path).await.expect("reopen and migrate");
    let filter = StoryFilter { limit: 100, ..StoryFilter::default() };
    let (stories, _) = store.stories(tenant, filter).await.expect("list");
    let listed: Vec<&str> = stories.iter().map(|s| s.number.as_str()).collect();
    assert_eq!(listed, ["1.999", "1.1000", "1.1001", "2.1", "2.9", "2.10", "3"]);
    for story in &stories {
        let expected = StoryNumber::parse(&story.number).expect("valid").sort_key();
        assert_eq!(story.sort_key, expected, "story {} has the new key", story.number);
    }
}

/// What loopctl's own migrator left before sqlx's: the same schema, a ledger of versions
/// (`loopctl_migrations`, no checksums) and no `_sqlx_migrations`.
async fn as_the_old_runner_left_it(path: &Path) {
    let mut conn = SqliteConnection::connect(&url(path)).await.expect("connect");
    sqlx::raw_sql(
        "CREATE TABLE loopctl_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);
         INSERT INTO loopctl_migrations (version, applied_at) SELECT version, datetime('now') FROM _sqlx_migrations;
         DROP TABLE _sqlx_migrations;",
    )
    .execute(&mut conn)
    .await
    .expect("rewrite the ledger as the old runner kept it");
    conn.close().await.expect("close");
}

fn url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Every version in sqlx's ledger, with its checksum.
async fn ledger(path: &Path) -> Vec<(i64, Vec<u8>)> {
    let mut conn = SqliteConnection::connect(&url(path)).await.expect("connect");
    let rows = sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&mut conn)
        .await
        .expect("read the ledger");
    conn.close().await.expect("close");
    rows
}

fn shipped() -> Vec<(i64, Vec<u8>)> {
    sqlx::migrate!("./migrations").iter().map(|migration| (migration.version, migration.checksum.to_vec())).collect()
}

/// An upgrade from a loopctl that ran its own migrations: the old ledger is taken over and
/// nothing runs again. Migration 7 rewrites sort keys, so a key of the old formula that is
/// still there after the upgrade shows that 7 did not run twice.
#[tokio::test]
async fn a_database_of_the_old_migrator_opens_without_running_a_migration_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("loopctl.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.expect("open"));
    let fx = Fixture::new(store.clone()).await;
    let mut sentinel = fx.story_record("2.1");
    sentinel.sort_key = old_key("2.1");
    store.commit(vec![WriteOp::InsertStory(sentinel.clone())]).await.expect("insert a story");
    let tenant = fx.tenant;
    drop(fx);
    drop(store);
    as_the_old_runner_left_it(&path).await;

    let store = SqliteStore::open(&path).await.expect("open the old database");
    assert_eq!(store.story(tenant, sentinel.id).await.expect("read"), Some(sentinel), "data intact, 7 not re-run");
    assert_eq!(ledger(&path).await, shipped(), "every version adopted with the checksum of its file");
    drop(store);
    SqliteStore::open(&path).await.expect("and it opens again");
}

/// A database the old migrator left at migration 5, with a dispatched key: migration 6
/// rebuilds `api_keys` (which `dispatches` references) inside sqlx's transaction with
/// foreign keys on, and every key and dispatch survives it.
#[tokio::test]
async fn an_old_database_at_migration_5_keeps_its_keys_through_the_api_keys_rebuild() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("loopctl.db");
    let options = SqliteConnectOptions::new().filename(&path).create_if_missing(true).foreign_keys(true);
    let mut conn = SqliteConnection::connect_with(&options).await.expect("create");
    sqlx::migrate!("./migrations").run_to(5, &mut conn).await.expect("migrate to 5");
    let [tenant, agent, key, project, epic, story, dispatch] = [(); 7].map(|()| Uuid::now_v7());
    let at = Utc::now().timestamp_micros();
    let lineage = serde_json::json!([dispatch]).to_string();
    let rows = [
        sqlx::query("INSERT INTO tenants (id, name, slug, created_at, updated_at) VALUES (?1, 'Acme', 'acme', ?2, ?2)")
            .bind(tenant)
            .bind(at),
        sqlx::query(
            "INSERT INTO agents (id, tenant_id, name, agent_type, created_at, updated_at) \
             VALUES (?1, ?2, 'worker', 'implementer', ?3, ?3)",
        )
        .bind(agent)
        .bind(tenant)
        .bind(at),
        sqlx::query(
            "INSERT INTO projects (id, tenant_id, name, slug, created_at, updated_at) VALUES (?1, ?2, 'Web', 'web', ?3, ?3)",
        )
        .bind(project)
        .bind(tenant)
        .bind(at),
        sqlx::query(
            "INSERT INTO epics (id, tenant_id, project_id, number, title, created_at, updated_at) \
             VALUES (?1, ?2, ?3, 1, 'Epic', ?4, ?4)",
        )
        .bind(epic)
        .bind(tenant)
        .bind(project)
        .bind(at),
        sqlx::query(
            "INSERT INTO stories (id, tenant_id, project_id, epic_id, number, sort_key, title, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, '1.1', 100011, 'Story', ?5, ?5)",
        )
        .bind(story)
        .bind(tenant)
        .bind(project)
        .bind(epic)
        .bind(at),
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, name, key_hash, key_prefix, role, agent_id, created_at, \
             scope_story_id, scope_role, dispatch_id) \
             VALUES (?1, ?2, 'dispatched', x'0707', 'lc_disp', 'agent', ?3, ?4, ?5, 'implementer', ?6)",
        )
        .bind(key)
        .bind(tenant)
        .bind(agent)
        .bind(at)
        .bind(story)
        .bind(dispatch),
        sqlx::query(
            "INSERT INTO dispatches (id, tenant_id, dispatched_by_key_id, agent_id, api_key_id, story_id, role, \
             lineage_path, expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?3, ?5, 'implementer', ?6, ?7, ?7)",
        )
        .bind(dispatch)
        .bind(tenant)
        .bind(key)
        .bind(agent)
        .bind(story)
        .bind(lineage)
        .bind(at),
    ];
    for row in rows {
        row.execute(&mut conn).await.expect("write a row as loopctl at migration 5 did");
    }
    conn.close().await.expect("close");
    as_the_old_runner_left_it(&path).await;

    let store = SqliteStore::open(&path).await.expect("upgrade from 5");
    assert_eq!(ledger(&path).await, shipped());
    let found = store.api_key_by_hash(&[7, 7]).await.expect("read key").expect("the key survived");
    assert_eq!((found.id, found.scope.map(|scope| scope.dispatch_id)), (key, Some(dispatch)));
    let kept = store.dispatch(tenant, dispatch).await.expect("read dispatch").expect("the dispatch survived");
    assert_eq!(kept.api_key_id, key);
    let mut conn = SqliteConnection::connect(&url(&path)).await.expect("connect");
    let dangling: Vec<(String, i64)> = sqlx::query_as("SELECT \"table\", rowid FROM pragma_foreign_key_check")
        .fetch_all(&mut conn)
        .await
        .expect("check");
    assert_eq!(dangling, [], "no row points at a key that is gone");
    conn.close().await.expect("close");
}

/// An applied migration whose file was edited afterwards (here: its recorded checksum no
/// longer matches the file) stops the store from opening, and says which one and what to do.
#[tokio::test]
async fn an_edited_applied_migration_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("loopctl.db");
    drop(SqliteStore::open(&path).await.expect("create and migrate"));
    let mut conn = SqliteConnection::connect(&url(&path)).await.expect("connect");
    sqlx::query("UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 3")
        .execute(&mut conn)
        .await
        .expect("tamper with migration 3");
    conn.close().await.expect("close");

    let refused = SqliteStore::open(&path).await.err().expect("the store does not open");
    assert_eq!(refused, StoreError::MigrationChanged { version: 3 });
    assert!(
        refused.to_string().starts_with("migration 3 was changed after it was applied to this database; restore"),
        "{refused}"
    );
}

/// A database a newer loopctl migrated further still opens (as with the old migrator; the
/// store logs a warning), so going back one release does not lock a user out.
#[tokio::test]
async fn a_database_migrated_by_a_newer_loopctl_still_opens() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("loopctl.db");
    drop(SqliteStore::open(&path).await.expect("create and migrate"));
    let mut conn = SqliteConnection::connect(&url(&path)).await.expect("connect");
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', TRUE, x'00', 0)",
    )
    .execute(&mut conn)
    .await
    .expect("record a migration this loopctl does not have");
    conn.close().await.expect("close");
    SqliteStore::open(&path).await.expect("opens all the same");
}
