//! Embedded migrations, applied in order on connect, each in its own transaction.
//!
//! Several server processes may start at once against one database. They queue on a
//! session-level advisory lock, so exactly one creates the bookkeeping table and applies
//! what is missing; the others then find every version applied.

use loopctl_store::StoreError;
use sqlx::{Connection, PgConnection};

use crate::row;

/// Advisory-lock class of the migration lock (the two-key form of `pg_advisory_lock`, so it
/// never collides with the per-row keys of `apply`).
pub(crate) const LOCK_CLASS_MIGRATE: i32 = 0x6c63_0001;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_initial.sql")),
    (2, include_str!("../migrations/0002_skills_idempotency.sql")),
    (3, include_str!("../migrations/0003_dispatch_custody.sql")),
    (4, include_str!("../migrations/0004_evidence.sql")),
    (5, include_str!("../migrations/0005_contracts_and_stale_leases.sql")),
    (6, include_str!("../migrations/0006_verifier_and_signed_payloads.sql")),
    (7, include_str!("../migrations/0007_numeric_sort_keys.sql")),
    (8, include_str!("../migrations/0008_verified_with_its_event.sql")),
];

pub(crate) async fn run(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_lock($1, 0)")
        .bind(LOCK_CLASS_MIGRATE)
        .execute(&mut *conn)
        .await
        .map_err(row::backend)?;
    let outcome = apply_missing(conn).await;
    // Unlock even after a failure, so a retry on this connection is not blocked by itself;
    // if the connection is gone, the server has released the lock already.
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1, 0)")
        .bind(LOCK_CLASS_MIGRATE)
        .execute(&mut *conn)
        .await
        .map_err(row::backend);
    outcome.and(unlocked.map(|_| ()))
}

async fn apply_missing(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS loopctl_migrations \
         (version bigint PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(&mut *conn)
    .await
    .map_err(row::backend)?;
    let newest: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM loopctl_migrations")
        .fetch_one(&mut *conn)
        .await
        .map_err(row::backend)?;
    let known = MIGRATIONS.last().map_or(0, |&(version, _)| version);
    if newest.is_some_and(|newest| newest > known) {
        tracing::warn!(newest, known, "the database was migrated by a newer loopctl");
    }
    for &(version, sql) in MIGRATIONS {
        let applied: Option<i64> = sqlx::query_scalar("SELECT version FROM loopctl_migrations WHERE version = $1")
            .bind(version)
            .fetch_optional(&mut *conn)
            .await
            .map_err(row::backend)?;
        if applied.is_some() {
            continue;
        }
        let mut tx = conn.begin().await.map_err(row::backend)?;
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .map_err(|err| StoreError::Backend(format!("migration {version} failed: {err}")))?;
        sqlx::query("INSERT INTO loopctl_migrations (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(row::backend)?;
        tx.commit().await.map_err(row::backend)?;
        tracing::info!(version, "applied migration");
    }
    Ok(())
}
