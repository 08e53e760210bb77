//! The PostgreSQL store: for deployments where several `loopctl serve` processes share one
//! database.
//!
//! Every write batch runs in its own READ COMMITTED transaction taken from the pool (a
//! transition's batch as one statement, see `one_trip`); there is no single-writer task as
//! on SQLite. What SQLite gets from having one writer, this
//! backend gets from the database itself: story transitions are compare-and-set on
//! `lock_version`, claims under an in-flight limit count under the project's locks, and a
//! change-feed reader reads only up to the cursor no running writer can precede, so it never
//! steps over a cursor still being committed (see `apply`). Those guarantees hold across
//! processes, not only within one. Stored Idempotency-Key answers, one row each after the
//! response, are written several to a statement (see `answers`).
//!
//! Every committed batch's tenants are announced with `pg_notify` after the commit, and each
//! process listens (`signals`): the wake-up of every instance's live streams.

mod answers;
mod apply;
mod migrate;
mod one_trip;
mod read;
mod row;
mod signals;
mod statements;

use std::str::FromStr;
use std::time::Duration;

use loopctl_store::{StoreError, WriteBatch, WriteOp};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgConnection, PgPool};

/// Connections per store; several server processes may share the database's limit.
const MAX_CONNECTIONS: u32 = 8;

/// How long a call waits for a pooled connection. When the database is unreachable, a
/// request is answered 503 after this long, so it is kept to a few seconds.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Session settings every pooled connection gets before first use.
///
/// READ COMMITTED regardless of the database's default: the in-flight guard and the feed
/// lock in `apply` rely on each statement taking a fresh snapshot after the lock it waited
/// for. Plans are cached (the engine's default): planning every statement anew took a
/// quarter of the database's CPU in the seed loop. So no statement has an optional filter
/// (`$2 IS NULL OR col = $2`), whose cached plan could not use the index: each filter
/// combination is its own statement text.
async fn configure(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::raw_sql("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED")
        .execute(conn)
        .await
        .map(|_| ())
}

/// `admin init` and `serve` work on a fresh server: the database is created when missing,
/// through the server's `postgres` maintenance database.
async fn create_database_if_missing(options: &PgConnectOptions) -> Result<(), StoreError> {
    let Some(name) = options.get_database().map(str::to_string) else {
        return Ok(());
    };
    match options.connect().await {
        Ok(conn) => {
            let _ = sqlx::Connection::close(conn).await;
            return Ok(());
        }
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("3D000") => {}
        Err(err) => return Err(row::backend(err)),
    }
    let mut admin = options.clone().database("postgres").connect().await.map_err(row::backend)?;
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    let created = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}"))).execute(&mut admin).await;
    let _ = sqlx::Connection::close(admin).await;
    match created {
        // Another process created it at the same moment: fine.
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P04") => Ok(()),
        other => other.map(|_| ()).map_err(row::backend),
    }
}

/// A loopctl store on one PostgreSQL database.
pub struct PgStore {
    pool: PgPool,
    answers: answers::AnswerQueue,
    signals: signals::Signals,
}

impl PgStore {
    /// Connects to a `postgres://…` URL and migrates the database. Several processes may
    /// connect at once; the migrations run once.
    ///
    /// # Errors
    /// When the URL is malformed, the database does not answer, or a migration fails.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let mut options = PgConnectOptions::from_str(url).map_err(row::backend)?.disable_statement_logging();
        if options.get_application_name().is_none() {
            options = options.application_name("loopctl");
        }
        create_database_if_missing(&options).await?;
        let mut conn = options.connect().await.map_err(row::backend)?;
        migrate::run(&mut conn).await?;
        // The migrations are in; a failed goodbye changes nothing (the server drops the
        // session, and its migration lock with it, either way).
        let _ = sqlx::Connection::close(conn).await;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(|conn, _meta| Box::pin(async move { configure(conn).await }))
            .connect_with(options)
            .await
            .map_err(row::backend)?;
        Ok(PgStore {
            answers: answers::AnswerQueue::start(pool.clone()),
            signals: signals::Signals::start(pool.clone()),
            pool,
        })
    }

    /// Waits for the pool's connections to close.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Commits the batch, then announces its events' tenants to every instance.
    async fn commit_batch(&self, batch: WriteBatch) -> Result<Vec<i64>, StoreError> {
        let tenants: std::collections::BTreeSet<uuid::Uuid> = batch
            .iter()
            .filter_map(|op| match op {
                WriteOp::AppendEvent(event) => Some(event.tenant_id),
                _ => None,
            })
            .collect();
        let cursors = self.commit_now(batch).await?;
        self.signals.committed(tenants);
        Ok(cursors)
    }

    /// Tenants whose events any instance on this database committed (see `signals`).
    pub fn commit_signals(&self) -> tokio::sync::broadcast::Receiver<uuid::Uuid> {
        self.signals.subscribe()
    }

    async fn commit_now(&self, mut batch: WriteBatch) -> Result<Vec<i64>, StoreError> {
        if let [WriteOp::SaveIdempotentResponse(_)] = batch.as_slice()
            && let Some(WriteOp::SaveIdempotentResponse(answer)) = batch.pop()
        {
            return self.answers.save(answer).await;
        }
        if loopctl_store::is_single_row_write(&batch) {
            // A single statement is its own transaction: one round trip instead of three.
            let mut conn = self.pool.acquire().await.map_err(row::map_err)?;
            return apply::batch(&mut conn, &batch).await;
        }
        if loopctl_store::is_transition_batch(&batch) {
            let mut conn = self.pool.acquire().await.map_err(row::map_err)?;
            return one_trip::commit(&mut conn, &batch).await;
        }
        let mut tx = self.pool.begin().await.map_err(row::map_err)?;
        match apply::batch(&mut tx, &batch).await {
            Ok(cursors) => {
                tx.commit().await.map_err(row::map_err)?;
                Ok(cursors)
            }
            Err(err) => {
                // The transaction is unusable after a refused statement; a failed rollback
                // only means the connection is gone, and the pool discards it.
                let _ = tx.rollback().await;
                Err(err)
            }
        }
    }
}
