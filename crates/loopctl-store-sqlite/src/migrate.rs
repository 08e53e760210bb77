//! The schema: sqlx's `Migrator` applies `migrations/` on open, each file in its own
//! transaction, and keeps every file's checksum in `_sqlx_migrations`, so a database whose
//! applied migration was edited afterwards is refused instead of drifting from the files.
//!
//! Migration 0006 rebuilds `api_keys`, which `dispatches` references, with foreign keys on:
//! it defers their check to the commit of its own transaction (`PRAGMA defer_foreign_keys`),
//! so it runs inside sqlx's transaction like every other migration (no `-- no-transaction`).
//!
//! Before sqlx, loopctl kept only version numbers, in `loopctl_migrations`. Such a database
//! is adopted first: its versions are recorded in sqlx's ledger with the checksums of the
//! files built into this binary, so an upgrade never runs an applied migration again. The
//! old table is left as it was, as the record of when those versions were applied.

use loopctl_store::StoreError;
use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::{Connection, SqliteConnection};

use crate::row;

/// The ledger of loopctl's own migrator before sqlx's.
const OLD_LEDGER: &str = "loopctl_migrations";
/// sqlx's ledger: the table its `Migrator` uses by default.
const LEDGER: &str = "_sqlx_migrations";

/// The migrations built into this binary (`build.rs` makes a new file rebuild the crate).
fn migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    // A database migrated by a newer loopctl still opens, with a warning (see `run`).
    migrator.set_ignore_missing(true);
    migrator
}

pub(crate) async fn run(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    let migrator = migrator();
    adopt_old_ledger(conn, &migrator).await?;
    migrator.run(&mut *conn).await.map_err(migration_error)?;
    let applied = conn.list_applied_migrations(LEDGER).await.map_err(migration_error)?;
    let newest = applied.iter().map(|applied| applied.version).max();
    let known = migrator.iter().map(|migration| migration.version).max();
    if newest > known {
        tracing::warn!(?newest, ?known, "the database was migrated by a newer loopctl");
    }
    Ok(())
}

/// Records the versions of the old ledger in sqlx's, in one transaction; does nothing once
/// sqlx's ledger exists. `BEGIN IMMEDIATE` takes the write lock first, so a second process
/// opening the file at the same moment waits and then finds the ledger adopted.
async fn adopt_old_ledger(conn: &mut SqliteConnection, migrator: &Migrator) -> Result<(), StoreError> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(row::backend)?;
    let (old, new): (bool, bool) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1), \
                EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?2)",
    )
    .bind(OLD_LEDGER)
    .bind(LEDGER)
    .fetch_one(&mut *tx)
    .await
    .map_err(row::backend)?;
    if !old || new {
        return Ok(());
    }
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM loopctl_migrations ORDER BY version")
        .fetch_all(&mut *tx)
        .await
        .map_err(row::backend)?;
    tx.ensure_migrations_table(LEDGER).await.map_err(migration_error)?;
    for version in &applied {
        let migration = migrator.iter().find(|migration| migration.version == *version).ok_or_else(|| {
            StoreError::Backend(format!("{OLD_LEDGER} names migration {version}, which this loopctl does not have"))
        })?;
        tx.skip(LEDGER, migration).await.map_err(migration_error)?;
    }
    tx.commit().await.map_err(row::backend)?;
    tracing::info!(?applied, "adopted the migration ledger of an older loopctl");
    Ok(())
}

fn migration_error(err: MigrateError) -> StoreError {
    match err {
        MigrateError::VersionMismatch(version) => StoreError::MigrationChanged { version },
        MigrateError::ExecuteMigration(err, version) => {
            StoreError::Backend(format!("migration {version} failed: {err}"))
        }
        other => StoreError::Backend(other.to_string()),
    }
}
