//! Embedded migrations, applied in order on open, each in its own transaction.

use loopctl_store::StoreError;
use sqlx::{Connection, SqliteConnection};

use crate::row;

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

pub(crate) async fn run(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS loopctl_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    )
    .execute(&mut *conn)
    .await
    .map_err(row::backend)?;
    for &(version, sql) in MIGRATIONS {
        let applied: Option<i64> = sqlx::query_scalar("SELECT version FROM loopctl_migrations WHERE version = ?")
            .bind(version)
            .fetch_optional(&mut *conn)
            .await
            .map_err(row::backend)?;
        if applied.is_some() {
            continue;
        }
        let mut tx = conn.begin().await.map_err(row::backend)?;
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(row::backend)?;
        sqlx::query("INSERT INTO loopctl_migrations (version, applied_at) VALUES (?, datetime('now'))")
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(row::backend)?;
        tx.commit().await.map_err(row::backend)?;
    }
    Ok(())
}
