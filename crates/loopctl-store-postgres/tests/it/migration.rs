//! Migrations on databases written by an older loopctl: what sqlx's migrator takes over from
//! loopctl's own, and what it refuses.

use std::sync::Arc;

use loopctl_store::conformance::Fixture;
use loopctl_store::{Store, StoreError, WriteOp};
use loopctl_store_postgres::PgStore;
use sqlx::{Connection, PgConnection};

use crate::support::{TestDatabase, store_on};

/// What loopctl's own migrator left before sqlx's: the same schema, a ledger of versions
/// (`loopctl_migrations`, no checksums) and no `_sqlx_migrations`.
async fn as_the_old_runner_left_it(db: &TestDatabase) {
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    sqlx::raw_sql(
        "CREATE TABLE loopctl_migrations (version bigint PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
         INSERT INTO loopctl_migrations (version) SELECT version FROM _sqlx_migrations;
         DROP TABLE _sqlx_migrations;",
    )
    .execute(&mut conn)
    .await
    .expect("rewrite the ledger as the old runner kept it");
    let _ = conn.close().await;
}

/// Every version in sqlx's ledger, with its checksum.
async fn ledger(db: &TestDatabase) -> Vec<(i64, Vec<u8>)> {
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    let rows = sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&mut conn)
        .await
        .expect("read the ledger");
    let _ = conn.close().await;
    rows
}

fn shipped() -> Vec<(i64, Vec<u8>)> {
    sqlx::migrate!("./migrations").iter().map(|migration| (migration.version, migration.checksum.to_vec())).collect()
}

/// An upgrade from a loopctl that ran its own migrations, with four servers starting at once:
/// the old ledger is taken over once and nothing runs again. Migration 7 rewrites sort keys,
/// so a key of the old formula that is still there afterwards shows that 7 did not run twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_a_database_of_the_old_migrator_is_adopted_once_by_servers_starting_together() {
    let db = TestDatabase::create().await;
    let store: Arc<dyn Store> = Arc::new(store_on(&db).await);
    let fx = Fixture::new(store.clone()).await;
    let mut sentinel = fx.story_record("2.1");
    sentinel.sort_key = 20_010; // `2*10000 + 1*10`, the formula before migration 7
    store.commit(vec![WriteOp::InsertStory(sentinel.clone())]).await.expect("insert a story");
    let tenant = fx.tenant;
    drop(fx);
    drop(store);
    as_the_old_runner_left_it(&db).await;

    let starts = (0..4).map(|_| PgStore::connect(&db.url));
    let stores: Vec<PgStore> = futures_util::future::join_all(starts)
        .await
        .into_iter()
        .map(|store| store.expect("every server starts on the old database"))
        .collect();
    assert_eq!(stores[0].story(tenant, sentinel.id).await.expect("read"), Some(sentinel), "data intact, 7 not re-run");
    assert_eq!(ledger(&db).await, shipped(), "every version adopted once, with the checksum of its file");
    for store in stores {
        store.close().await;
    }
}

/// An applied migration whose file was edited afterwards (here: its recorded checksum no
/// longer matches the file) stops the store from connecting, and says which one and what to
/// do. Nothing is left locked: with the file's checksum back, the next start works.
#[tokio::test]
async fn pg_an_edited_applied_migration_is_refused() {
    let db = TestDatabase::create().await;
    store_on(&db).await.close().await;
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    let tamper =
        |checksum: Vec<u8>| sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = 3").bind(checksum);
    tamper(vec![0]).execute(&mut conn).await.expect("tamper with migration 3");

    let refused = PgStore::connect(&db.url).await.err().expect("the store does not connect");
    assert_eq!(refused, StoreError::MigrationChanged { version: 3 });
    assert!(
        refused.to_string().starts_with("migration 3 was changed after it was applied to this database; restore"),
        "{refused}"
    );

    let restored = shipped().into_iter().find(|(version, _)| *version == 3).expect("migration 3 ships").1;
    tamper(restored).execute(&mut conn).await.expect("restore migration 3");
    let _ = conn.close().await;
    PgStore::connect(&db.url).await.expect("connects once the file matches again").close().await;
}

/// A database a newer loopctl migrated further still opens (as with the old migrator; the
/// store logs a warning), so older servers keep starting during a rolling upgrade.
#[tokio::test]
async fn pg_a_database_migrated_by_a_newer_loopctl_still_opens() {
    let db = TestDatabase::create().await;
    store_on(&db).await.close().await;
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', TRUE, '\\x00', 0)",
    )
    .execute(&mut conn)
    .await
    .expect("record a migration this loopctl does not have");
    let _ = conn.close().await;
    PgStore::connect(&db.url).await.expect("opens all the same").close().await;
}
