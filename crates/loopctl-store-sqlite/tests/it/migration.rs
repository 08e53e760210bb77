//! Migration 7 on a database written by an older loopctl: story sort keys of the reference's
//! formula (`major*10000 + minor*10`, where `1.1001` and `2.1` collide) are recomputed from
//! the number text, so stories list in numeric order.

use std::sync::Arc;

use loopctl_core::StoryNumber;
use loopctl_store::conformance::Fixture;
use loopctl_store::{Store, StoryFilter, WriteOp};
use loopctl_store_sqlite::SqliteStore;
use sqlx::{Connection, SqliteConnection};

const NUMBERS: [&str; 7] = ["2.1", "1.1001", "1.999", "2.10", "1.1000", "2.9", "3"];

fn old_key(number: &str) -> i64 {
    let (major, minor) = number.split_once('.').unwrap_or((number, "0"));
    major.parse::<i64>().expect("major") * 10_000 + minor.parse::<i64>().expect("minor") * 10
}

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
    sqlx::query("DELETE FROM loopctl_migrations WHERE version = 7").execute(&mut conn).await.expect("forget 7");
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
