//! PostgreSQL-specific behaviour beyond the conformance suite: what several server
//! processes sharing one database rely on (each `PgStore` below stands for one process),
//! and how database refusals are reported.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, TimeZone, Utc};
use loopctl_core::{AgentStatus, Role, StoryState};
use loopctl_store::conformance::{Fixture, project_record, transition};
use loopctl_store::*;
use loopctl_store_postgres::PgStore;
use serde_json::json;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::support::{TestDatabase, store_on};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("a valid time")
}

fn claimed_by(agent: Uuid, from: &StoryState) -> StoryState {
    StoryState {
        agent_status: AgentStatus::Assigned,
        assigned_agent_id: Some(agent),
        assigned_at: Some(t0()),
        claim_epoch: from.claim_epoch + 1,
        ..from.clone()
    }
}

fn event(tenant: Uuid, action: &str) -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        tenant_id: tenant,
        project_id: None,
        entity_type: "story".into(),
        entity_id: Uuid::now_v7(),
        action: action.into(),
        actor: ActorStamp {
            actor_type: "system".into(),
            key_id: None,
            agent_id: None,
            role: None,
            label: "system:test".into(),
        },
        old_state: json!({}),
        new_state: json!({"n": 1}),
        metadata: json!({}),
        inserted_at: t0(),
    }
}

/// Opens every connection of the store's pool, so that racing writes run in parallel
/// rather than queue for connections being opened.
async fn warm_up(store: &dyn Store, tenant: Uuid) {
    let reads = (0..16).map(|_| store.stories(tenant, StoryFilter { limit: 1, ..StoryFilter::default() }));
    for read in futures_util::future::join_all(reads).await {
        read.expect("warm-up read");
    }
}

async fn two_processes(db: &TestDatabase) -> [Arc<dyn Store>; 2] {
    [Arc::new(store_on(db).await), Arc::new(store_on(db).await)]
}

#[tokio::test]
async fn pg_smoke_round_trips_and_answers_cursors_in_order() {
    let db = TestDatabase::create().await;
    let store: Arc<dyn Store> = Arc::new(store_on(&db).await);
    assert_eq!(store.backend(), "postgres");
    store.ping().await.expect("ping");
    let fx = Fixture::new(store.clone()).await;
    let tenant = store.tenant(fx.tenant).await.expect("read tenant").expect("tenant exists");
    assert_eq!((tenant.name.as_str(), tenant.settings.clone()), ("Acme", json!({})));
    let story = fx.story("1.1").await;
    assert_eq!(store.story(fx.tenant, story.id).await.expect("read story"), Some(story.clone()));
    let cursors = store
        .commit(vec![
            WriteOp::AppendEvent(event(fx.tenant, "a")),
            transition(&story, claimed_by(fx.agents[0], &story.state), None),
            WriteOp::AppendEvent(event(fx.tenant, "b")),
            WriteOp::AppendEvent(event(fx.tenant, "c")),
        ])
        .await
        .expect("commit");
    assert_eq!(cursors.len(), 3);
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "cursors rise: {cursors:?}");
    let all = EventFilter { limit: 10, ..EventFilter::default() };
    let events = store.events(fx.tenant, all).await.expect("read events");
    let actions: Vec<_> = events.iter().map(|e| e.event.action.as_str()).collect();
    assert_eq!(actions, ["a", "b", "c"]);
    assert_eq!(events.iter().map(|e| e.cursor).collect::<Vec<_>>(), cursors);
}

#[tokio::test]
async fn pg_negative_limits_mean_no_limit_as_on_sqlite() {
    let db = TestDatabase::create().await;
    let store: Arc<dyn Store> = Arc::new(store_on(&db).await);
    let fx = Fixture::new(store.clone()).await;
    for number in ["1.1", "1.2", "1.3"] {
        fx.story(number).await;
    }
    let filter = StoryFilter { limit: -1, offset: -5, ..StoryFilter::default() };
    let (stories, total) = store.stories(fx.tenant, filter).await.expect("list stories");
    assert_eq!((stories.len(), total), (3, 3));
    store
        .commit(vec![WriteOp::AppendEvent(event(fx.tenant, "a")), WriteOp::AppendEvent(event(fx.tenant, "b"))])
        .await
        .expect("append");
    let events = store.events(fx.tenant, EventFilter { limit: -1, ..EventFilter::default() }).await;
    assert_eq!(events.expect("read events").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_migrations_run_once_when_servers_start_together() {
    let db = TestDatabase::create().await;
    let starts = (0..4).map(|_| PgStore::connect(&db.url));
    let stores = futures_util::future::join_all(starts).await;
    for store in &stores {
        assert!(store.is_ok(), "every process starts: {:?}", store.as_ref().err());
    }
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    let (applied, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT version) FROM _sqlx_migrations")
            .fetch_one(&mut conn)
            .await
            .expect("count migrations");
    assert!(distinct >= 2, "every shipped migration is applied");
    assert_eq!(applied, distinct, "each migration is applied once");
    let _ = conn.close().await;
    for store in stores.into_iter().flatten() {
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_in_flight_limit_holds_across_processes() {
    // 3: every claim fits the slots (K = 3) only while none is in flight; 12: eight slots, so
    // claims race side by side until four are in, then count exactly under the lock.
    for (limit, racing) in [(3, 16), (12, 40)] {
        let db = TestDatabase::create().await;
        let stores = two_processes(&db).await;
        let fx = Fixture::new(stores[0].clone()).await;
        let mut stories = Vec::new();
        for idx in 1..=racing {
            stories.push(fx.story(&format!("1.{idx}")).await);
        }
        for store in &stores {
            warm_up(store.as_ref(), fx.tenant).await;
        }
        let guard = Some(InFlightGuard { project_id: fx.project, limit });
        let start = Arc::new(tokio::sync::Barrier::new(stories.len()));
        let mut tasks = Vec::new();
        for (idx, story) in stories.into_iter().enumerate() {
            let store = stores[idx % 2].clone();
            let start = start.clone();
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                // As in the service, the claim's batch also records it; the extra statements
                // between the count and COMMIT widen the window a missing lock would leave open.
                let claim = transition(&story, claimed_by(Uuid::now_v7(), &story.state), guard);
                let recorded = WriteOp::AppendEvent(event(story.tenant_id, "claimed"));
                store.commit(vec![claim, recorded]).await
            }));
        }
        let mut won = 0;
        for task in tasks {
            match task.await.expect("claim task") {
                Ok(_) => won += 1,
                Err(StoreError::ConcurrencyLimit { limit: refused_at, in_flight }) => {
                    assert_eq!((refused_at, in_flight.len()), (limit, limit as usize));
                }
                Err(other) => panic!("unexpected refusal: {other:?}"),
            }
        }
        assert_eq!(won, limit, "exactly the limit of {limit} claims win");
        let assigned = StoryFilter {
            project_id: Some(fx.project),
            agent_status: Some(AgentStatus::Assigned),
            limit: 100,
            ..StoryFilter::default()
        };
        assert_eq!(stores[1].stories(fx.tenant, assigned).await.expect("list").1, i64::from(limit));
    }
}

/// A reader that pages the feed by cursor while several processes append must end up with
/// every event: if cursor N+1 became visible before N, the reader would move past N and
/// never see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_change_feed_cursors_become_visible_in_order() {
    const WRITERS: usize = 8;
    const BATCHES: usize = 40;
    let db = TestDatabase::create().await;
    let stores = two_processes(&db).await;
    let fx = Fixture::new(stores[0].clone()).await;
    let tenant = fx.tenant;
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let store = stores[1].clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut last = None;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let filter = EventFilter { after_cursor: last, limit: 1000, ..EventFilter::default() };
                let page = store.events(tenant, filter).await.expect("poll the feed");
                if let Some(newest) = page.last() {
                    last = Some(newest.cursor);
                }
                seen.extend(page.iter().map(|e| e.cursor));
                if finished && page.is_empty() {
                    return seen;
                }
            }
        })
    };
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let store = stores[writer % 2].clone();
        writers.push(tokio::spawn(async move {
            for _ in 0..BATCHES {
                let batch = vec![WriteOp::AppendEvent(event(tenant, "a")), WriteOp::AppendEvent(event(tenant, "b"))];
                store.commit(batch).await.expect("append events");
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer task");
    }
    done.store(true, Ordering::SeqCst);
    let seen = reader.await.expect("reader task");
    let all = stores[0].events(tenant, EventFilter { limit: -1, ..EventFilter::default() }).await;
    let all: BTreeSet<i64> = all.expect("read the feed").iter().map(|e| e.cursor).collect();
    assert_eq!(all.len(), WRITERS * BATCHES * 2);
    let seen: BTreeSet<i64> = seen.into_iter().collect();
    let missed: Vec<_> = all.difference(&seen).collect();
    assert!(missed.is_empty(), "the reader skipped cursors {missed:?}");
}

#[tokio::test]
async fn pg_refusals_map_to_store_errors() {
    let db = TestDatabase::create().await;
    let store: Arc<dyn Store> = Arc::new(store_on(&db).await);
    let fx = Fixture::new(store.clone()).await;
    let story = fx.story("1.1").await;

    let dup = project_record(fx.tenant, Uuid::now_v7(), "web");
    let refused = store.commit(vec![WriteOp::InsertProject(dup)]).await;
    assert_eq!(refused, Err(StoreError::Duplicate { what: "projects.slug".into() }));
    let refused = store.commit(vec![WriteOp::InsertStory(fx.story_record("1.1"))]).await;
    assert_eq!(refused, Err(StoreError::Duplicate { what: "stories.number".into() }));

    let orphan = StoryRecord { epic_id: Uuid::now_v7(), ..fx.story_record("1.2") };
    let refused = store.commit(vec![WriteOp::InsertStory(orphan)]).await;
    assert_eq!(refused, Err(StoreError::NotFound { what: "a referenced row".into() }));

    let robot = AgentRecord {
        id: Uuid::now_v7(),
        tenant_id: fx.tenant,
        name: "robot".into(),
        agent_type: "robot".into(),
        status: "active".into(),
        metadata: json!({}),
        created_at: t0(),
        updated_at: t0(),
    };
    let refused = store.commit(vec![WriteOp::InsertAgent(robot)]).await;
    assert!(matches!(refused, Err(StoreError::Invariant(_))), "{refused:?}");

    let implementer = fx.agents[0];
    fx.force_state(story.id, claimed_by(implementer, &story.state)).await;
    let review = ReviewRecord {
        id: Uuid::now_v7(),
        tenant_id: fx.tenant,
        story_id: story.id,
        reviewer_agent_id: Some(implementer),
        review_type: "standard".into(),
        findings_count: 0,
        fixes_count: 0,
        disproved_count: 0,
        summary: None,
        findings: json!({}),
        completed_at: t0(),
        created_at: t0(),
    };
    let refused = store.commit(vec![WriteOp::InsertReview(review)]).await;
    assert_eq!(refused, Err(StoreError::Custody(CustodyRefusal::SelfReview)), "self review is refused");
    let verification = NewVerification {
        id: Uuid::now_v7(),
        tenant_id: fx.tenant,
        story_id: story.id,
        verifier_agent_id: Some(implementer),
        result: "fail".into(),
        summary: None,
        findings: json!({}),
        review_type: None,
        created_at: t0(),
    };
    let refused = store.commit(vec![WriteOp::InsertVerification(verification)]).await;
    assert_eq!(refused, Err(StoreError::Custody(CustodyRefusal::SelfVerify)), "self verification is refused");
    // Another agent may review.
    let other_review = ReviewRecord {
        id: Uuid::now_v7(),
        tenant_id: fx.tenant,
        story_id: story.id,
        reviewer_agent_id: Some(fx.agents[1]),
        review_type: "standard".into(),
        findings_count: 0,
        fixes_count: 0,
        disproved_count: 0,
        summary: None,
        findings: json!({}),
        completed_at: t0(),
        created_at: t0(),
    };
    store.commit(vec![WriteOp::InsertReview(other_review)]).await.expect("review by another agent");

    let missing = WriteOp::TransitionStory(StoryTransition {
        tenant_id: fx.tenant,
        story_id: Uuid::now_v7(),
        expected_version: 0,
        state: StoryState::default(),
        updated_at: t0(),
        guard: Some(InFlightGuard { project_id: fx.project, limit: 1 }),
        only_if_unblocked: false,
    });
    assert_eq!(store.commit(vec![missing]).await, Err(StoreError::NotFound { what: "story".into() }));
}

/// Rules no write op can break today, checked directly in SQL.
#[tokio::test]
async fn pg_triggers_keep_roles_and_the_audit_log() {
    let db = TestDatabase::create().await;
    let store: Arc<dyn Store> = Arc::new(store_on(&db).await);
    let fx = Fixture::new(store.clone()).await;
    let key = ApiKeyRecord {
        id: Uuid::now_v7(),
        tenant_id: Some(fx.tenant),
        name: "impl".into(),
        key_hash: vec![1; 32],
        key_prefix: "lc_x".into(),
        role: Role::Agent,
        agent_id: Some(fx.agents[0]),
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        created_at: t0(),
        scope: None,
    };
    store
        .commit(vec![WriteOp::InsertApiKey(key.clone()), WriteOp::AppendEvent(event(fx.tenant, "a"))])
        .await
        .expect("insert key and event");
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    let refusals = [
        ("UPDATE api_keys SET role = 'orchestrator'", "api key role is immutable"),
        ("UPDATE events SET action = 'forged'", "the audit log is append-only"),
        ("DELETE FROM events", "the audit log is append-only"),
        ("TRUNCATE events", "the audit log is append-only"),
    ];
    for (sql, expected) in refusals {
        let err = sqlx::raw_sql(sql).execute(&mut conn).await.expect_err(sql);
        let db_err = err.as_database_error().expect("a database error");
        assert_eq!((db_err.code().as_deref(), db_err.message()), (Some("P0001"), expected), "{sql}");
    }
    // The same role, and other columns, may be written.
    sqlx::raw_sql("UPDATE api_keys SET role = role, name = 'renamed'").execute(&mut conn).await.expect("update");
    let _ = conn.close().await;
}

#[tokio::test]
async fn pg_connect_reports_an_unreachable_server() {
    let refused = PgStore::connect("postgres://postgres@127.0.0.1:1/nothing").await;
    assert!(matches!(refused, Err(StoreError::Backend(_))));
}

/// Migration 7 on a database written by an older loopctl: sort keys of the reference's
/// formula (`major*10000 + minor*10`, where `1.1001` and `2.1` collide) are recomputed from
/// the number text, so stories list in numeric order.
#[tokio::test]
async fn pg_stories_keyed_by_the_old_formula_list_in_numeric_order_after_migration_7() {
    let old_key = |number: &str| {
        let (major, minor) = number.split_once('.').unwrap_or((number, "0"));
        major.parse::<i64>().expect("major") * 10_000 + minor.parse::<i64>().expect("minor") * 10
    };
    let db = TestDatabase::create().await;
    let store: Arc<dyn Store> = Arc::new(store_on(&db).await);
    let fx = Fixture::new(store.clone()).await;
    let mut batch = Vec::new();
    for number in ["2.1", "1.1001", "1.999", "2.10", "1.1000", "2.9", "3"] {
        let mut record = fx.story_record(number);
        record.sort_key = old_key(number);
        batch.push(WriteOp::InsertStory(record));
    }
    store.commit(batch).await.expect("insert stories");
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 7").execute(&mut conn).await.expect("forget 7");
    let _ = conn.close().await;

    let migrated = store_on(&db).await;
    let filter = StoryFilter { limit: 100, ..StoryFilter::default() };
    let (stories, _) = migrated.stories(fx.tenant, filter).await.expect("list");
    let listed: Vec<&str> = stories.iter().map(|s| s.number.as_str()).collect();
    assert_eq!(listed, ["1.999", "1.1000", "1.1001", "2.1", "2.9", "2.10", "3"]);
    for story in &stories {
        let expected = loopctl_core::StoryNumber::parse(&story.number).expect("valid").sort_key();
        assert_eq!(story.sort_key, expected, "story {} has the new key", story.number);
    }
    migrated.close().await;
}

/// A verify looks up the event that names its verifier through the index prefix (tenant,
/// entity type, story). Looked up by story id alone, as migration 8 did, it read every
/// tenant's events on every verify, so verifies slowed with every event the database kept
/// (found by `loopctl-bench loop` on a database several runs old). Counted with the
/// transaction's own index statistics, before it commits.
#[tokio::test]
async fn pg_a_verify_reads_its_own_storys_events_not_every_tenants() {
    let db = TestDatabase::create().await;
    let store: Arc<dyn Store> = Arc::new(store_on(&db).await);
    let fx = Fixture::new(store.clone()).await;
    let busy = Fixture::new(store.clone()).await;
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    long_history(&mut conn, busy.tenant).await;
    let story = fx.story("1.1").await;

    let mut tx = conn.begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO events (id, tenant_id, entity_type, entity_id, action, actor_type, actor_key_id, actor_label, inserted_at) \
         VALUES ($1, $2, 'story', $3, 'verified', 'api_key', $4, 'key:test', now())",
    )
    .bind(Uuid::now_v7())
    .bind(fx.tenant)
    .bind(story.id)
    .bind(Uuid::now_v7())
    .execute(&mut *tx)
    .await
    .expect("the verify's event");
    sqlx::query(
        "UPDATE stories SET agent_status = 'reported_done', reported_done_at = now(), \
         verified_status = 'verified', verified_at = now() WHERE id = $1",
    )
    .bind(story.id)
    .execute(&mut *tx)
    .await
    .expect("verify a backfilled story");
    // Runs the deferred check now, inside this transaction.
    sqlx::query("SET CONSTRAINTS ALL IMMEDIATE").execute(&mut *tx).await.expect("the verify passes its check");
    let read: i64 = sqlx::query_scalar(
        "SELECT sum(pg_stat_get_xact_tuples_returned(oid))::bigint FROM pg_class \
             WHERE oid IN ('events'::regclass, 'events_entity'::regclass, 'events_tenant_cursor'::regclass)",
    )
    .fetch_one(&mut *tx)
    .await
    .expect("index statistics");
    assert!(read < 50, "one verify read {read} events or their index entries; the other tenant has 5,000");
    tx.rollback().await.expect("rollback");
}

/// Statements keep their plans (the engine's default; planning each one anew took a quarter
/// of the database's CPU in the seed loop), so no statement may carry an optional filter
/// whose cached plan cannot use the index. Every plan here is generic from its first use,
/// and feed polls of a tenant with a long history still read only their page.
#[tokio::test]
async fn pg_feed_polls_read_their_page_even_with_a_cached_generic_plan() {
    let db = TestDatabase::create().await;
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE \"{}\" SET plan_cache_mode = force_generic_plan",
        db.name
    )))
    .execute(&mut conn)
    .await
    .expect("generic plans from the first execution");
    let store = store_on(&db).await;
    let shared: Arc<dyn Store> = Arc::new(store_on(&db).await);
    let fx = Fixture::new(shared.clone()).await;
    long_history(&mut conn, fx.tenant).await;
    let newest: i64 = sqlx::query_scalar("SELECT max(cursor) FROM events").fetch_one(&mut conn).await.expect("newest");
    let before = events_read(&mut conn).await;

    const POLLS: i64 = 20;
    for _ in 0..POLLS {
        let tail = EventFilter { after_cursor: Some(newest - 5), limit: 10, ..EventFilter::default() };
        assert_eq!(store.events(fx.tenant, tail).await.expect("poll the feed").len(), 5);
        let latest = EventFilter { limit: 10, newest_first: true, ..EventFilter::default() };
        assert_eq!(store.events(fx.tenant, latest).await.expect("the latest page").len(), 10);
    }
    store.close().await;
    // A backend's counts reach the statistics when it exits.
    let mut read = events_read(&mut conn).await - before;
    for _ in 0..50 {
        if read.scans >= 3 * POLLS {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        read = events_read(&mut conn).await - before;
    }
    assert!(read.scans >= 3 * POLLS, "the polls' statistics never arrived: {read:?}");
    assert!(read.tuples < 40 * POLLS, "{} polls read {} rows of a 5,000-event feed", 2 * POLLS, read.tuples);
}

#[derive(Debug, Clone, Copy)]
struct TableReads {
    scans: i64,
    tuples: i64,
}

impl std::ops::Sub for TableReads {
    type Output = TableReads;
    fn sub(self, rhs: TableReads) -> TableReads {
        TableReads { scans: self.scans - rhs.scans, tuples: self.tuples - rhs.tuples }
    }
}

/// Scans of the events table (sequential and by index) and the rows they read.
async fn events_read(conn: &mut PgConnection) -> TableReads {
    let (scans, tuples): (i64, i64) = sqlx::query_as(
        "SELECT (coalesce(seq_scan, 0) + coalesce(idx_scan, 0))::bigint, \
                (coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0))::bigint \
           FROM pg_stat_user_tables WHERE relname = 'events'",
    )
    .fetch_one(conn)
    .await
    .expect("table statistics");
    TableReads { scans, tuples }
}

/// 5,000 events of `tenant`, written around the store, and fresh planner statistics.
async fn long_history(conn: &mut PgConnection, tenant: Uuid) {
    sqlx::query(
        "INSERT INTO events (id, tenant_id, entity_type, entity_id, action, actor_type, actor_label, inserted_at) \
         SELECT gen_random_uuid(), $1, 'story', gen_random_uuid(), 'status_changed', 'system', 'system:test', now() \
         FROM generate_series(1, 5000)",
    )
    .bind(tenant)
    .execute(&mut *conn)
    .await
    .expect("a long history");
    sqlx::query("ANALYZE events").execute(&mut *conn).await.expect("analyze");
}
