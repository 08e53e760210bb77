//! The embedded SQLite store: the default for `loopctl serve` and `loopctl up`.
//!
//! One writer, many readers (see PERFORMANCE.md): every write batch goes through a single
//! connection owned by a writer task, which takes every batch waiting in its queue and
//! commits them together in one transaction (group commit), each batch inside its own
//! savepoint so one refused batch never undoes another. Reads use a small pool; WAL mode
//! lets them run beside the writer.

mod apply;
mod migrate;
mod one_trip;
mod read;
mod row;
mod statements;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use loopctl_store::{IdempotentResponse, StoreError, WriteBatch, WriteOp};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

/// Most batches one commit takes from the queue; bounds the latency of the first in line.
const MAX_GROUP: usize = 128;

type Job = (WriteBatch, oneshot::Sender<Result<Vec<i64>, StoreError>>);

/// A loopctl store on one SQLite file.
pub struct SqliteStore {
    readers: SqlitePool,
    writer: mpsc::Sender<Job>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path` and migrates it.
    ///
    /// # Errors
    /// When the file cannot be opened or a migration fails.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::new().filename(path);
        Self::open_with(options).await
    }

    /// Opens a `sqlite://…` URL.
    ///
    /// # Errors
    /// When the URL is malformed or the database cannot be opened.
    pub async fn open_url(url: &str) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url).map_err(row::backend)?;
        Self::open_with(options).await
    }

    async fn open_with(options: SqliteConnectOptions) -> Result<SqliteStore, StoreError> {
        let database = options.get_filename().to_path_buf();
        private_files(&database, true)?;
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode loses nothing when the process is killed; only a power
            // cut can lose the last commits, and it never corrupts the file.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // Temporary data (a batch's savepoint journal, a large sort) goes to unlinked
            // temporary files, not the heap: an import batch that touches pages all over the
            // table would otherwise keep every page's original in the server's memory.
            .pragma("temp_store", "file")
            .disable_statement_logging();
        let mut writer = SqliteConnection::connect_with(&options).await.map_err(row::backend)?;
        migrate::run(&mut writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(options.read_only(true))
            .await
            .map_err(row::backend)?;
        // The WAL and shared-memory files appear once the database is open.
        private_files(&database, false)?;
        let (tx, rx) = mpsc::channel::<Job>(4096);
        spawn_writer(writer, rx)?;
        Ok(SqliteStore { readers, writer: tx })
    }

    async fn submit(&self, batch: WriteBatch) -> Result<Vec<i64>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send((batch, reply))
            .await
            .map_err(|_| StoreError::Backend("the SQLite writer has stopped".into()))?;
        answer.await.map_err(|_| StoreError::Backend("the SQLite writer dropped the batch".into()))?
    }
}

/// The database holds every tenant's data and the hashes of their keys (the signing keys
/// live in their own directory), so it and its `-wal` and `-shm` files are readable and
/// writable by their owner only (0600), whatever the umask. `create` makes the database file
/// that way before SQLite does (SQLite then gives its side files the same mode); files that
/// exist are tightened. An in-memory database has no files.
fn private_files(database: &Path, create: bool) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let text = database.as_os_str().to_string_lossy();
        if text.is_empty() || text == ":memory:" || text.starts_with("file::memory:") {
            return Ok(());
        }
        let denied = |path: &Path, err: std::io::Error| {
            StoreError::Backend(format!("cannot make {} readable by its owner only: {err}", path.display()))
        };
        if create && !database.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(database)
                .map_err(|err| denied(database, err))?;
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut path = database.as_os_str().to_owned();
            path.push(suffix);
            let path = std::path::PathBuf::from(path);
            match std::fs::metadata(&path) {
                Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                        .map_err(|err| denied(&path, err))?;
                }
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(denied(&path, err)),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (database, create);
    Ok(())
}

/// Runs the write loop on a thread of its own, with a runtime of its own. A group commit is
/// several trips to the connection's worker thread, and after each the loop must run again
/// before the next statement goes: on the server's runtime it waited in line behind the
/// requests being parsed and answered, while every write waited for it; here it runs the
/// moment its answer comes. It ends when the store, the queue's last sender, is dropped.
fn spawn_writer(writer: SqliteConnection, queue: mpsc::Receiver<Job>) -> Result<(), StoreError> {
    let failed = |err: std::io::Error| StoreError::Backend(format!("cannot start the SQLite writer: {err}"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(failed)?;
    std::thread::Builder::new()
        .name("loopctl-sqlite-writer".into())
        .spawn(move || runtime.block_on(write_loop(writer, queue)))
        .map_err(failed)?;
    Ok(())
}

async fn write_loop(mut conn: SqliteConnection, mut queue: mpsc::Receiver<Job>) {
    while let Some(first) = queue.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let outcomes = commit_group(&mut conn, &jobs).await;
        for ((_, reply), outcome) in jobs.into_iter().zip(outcomes) {
            // The caller may have gone away (timeout, disconnect); the write stands.
            let _ = reply.send(outcome);
        }
    }
}

/// Runs every batch in one transaction, each in a savepoint of its own, so a batch that fails
/// leaves the others of the group standing; answers only after COMMIT.
///
/// Every `exec` is a round trip to the connection's worker thread, and under load those trips
/// cost the writer more than the statements do. So the savepoint bookkeeping rides in one
/// trip with its neighbour (`RELEASE batch; SAVEPOINT batch` between two batches, `RELEASE
/// batch; COMMIT` at the end), and a batch of one single-statement write (an idempotency
/// marker or answer) takes no savepoint at all: SQLite undoes a failed statement by itself
/// and the transaction goes on. Those run first; the group's batches are concurrent
/// callers' and may commit in any order. The group's stored answers (one per request with an
/// Idempotency-Key) go in a few multi-row statements rather than one trip each.
async fn commit_group(conn: &mut SqliteConnection, jobs: &[Job]) -> Vec<Result<Vec<i64>, StoreError>> {
    if let Err(err) = exec(conn, "BEGIN IMMEDIATE").await {
        return jobs.iter().map(|_| Err(err.clone())).collect();
    }
    let mut outcomes: Vec<Result<Vec<i64>, StoreError>> = jobs.iter().map(|_| Ok(Vec::new())).collect();
    let (bare, guarded): (Vec<usize>, Vec<usize>) =
        (0..jobs.len()).partition(|&i| loopctl_store::is_single_row_write(&jobs[i].0));
    let (answers, bare): (Vec<usize>, Vec<usize>) =
        bare.into_iter().partition(|&i| matches!(jobs[i].0.as_slice(), [WriteOp::SaveIdempotentResponse(_)]));
    let mut answers = answers.as_slice();
    while !answers.is_empty() {
        // The largest power of two that fits, so few statement shapes are ever prepared.
        let take = 1 << answers.len().min(apply::MAX_ANSWERS_AT_ONCE).ilog2();
        let (chunk, rest) = answers.split_at(take);
        let rows: Vec<&IdempotentResponse> = chunk
            .iter()
            .filter_map(|&i| match jobs[i].0.as_slice() {
                [WriteOp::SaveIdempotentResponse(answer)] => Some(answer),
                _ => None,
            })
            .collect();
        if apply::save_answers(conn, &rows).await.is_err() {
            // One bad row fails the statement (and nothing of it stays): each gets its own
            // outcome.
            for &i in chunk {
                outcomes[i] = apply::batch(conn, &jobs[i].0).await;
            }
        }
        answers = rest;
    }
    for i in bare {
        outcomes[i] = apply::batch(conn, &jobs[i].0).await;
    }
    let mut in_savepoint = false;
    for i in guarded {
        outcomes[i] = in_savepoint_of_its_own(conn, in_savepoint, &jobs[i].0).await;
        in_savepoint = outcomes[i].is_ok();
        if !in_savepoint {
            let _ = exec(conn, "ROLLBACK TO batch; RELEASE batch").await;
        }
    }
    let finish = if in_savepoint { "RELEASE batch; COMMIT" } else { "COMMIT" };
    match exec(conn, finish).await {
        Ok(()) => outcomes,
        Err(err) => {
            let _ = exec(conn, "ROLLBACK").await;
            outcomes.iter().map(|_| Err(err.clone())).collect()
        }
    }
}

/// Applies batch `ops` in a savepoint of its own (leaving the previous batch's, when
/// `after_another`): a transition's batch in one trip (`one_trip.rs`), any other op by op.
/// On an error the caller rolls the savepoint back.
async fn in_savepoint_of_its_own(
    conn: &mut SqliteConnection,
    after_another: bool,
    ops: &[WriteOp],
) -> Result<Vec<i64>, StoreError> {
    if loopctl_store::is_transition_batch(ops) {
        return one_trip::apply(conn, after_another, ops).await;
    }
    let rest = enter(conn, after_another, ops).await?;
    apply::batch(conn, rest).await
}

/// Enters the savepoint of batch `ops`, and answers the ops still to apply. A batch that
/// begins with its request's idempotency marker takes the marker in the same trip; when the
/// pair is taken, that is the batch's `Duplicate`.
async fn enter<'a>(
    conn: &mut SqliteConnection,
    after_another: bool,
    ops: &'a [WriteOp],
) -> Result<&'a [WriteOp], StoreError> {
    let savepoint = if after_another { "RELEASE batch; SAVEPOINT batch; " } else { "SAVEPOINT batch; " };
    if let [WriteOp::BeginIdempotentRequest { marker, stale_before }, rest @ ..] = ops {
        apply::take_marker(conn, savepoint, marker, *stale_before).await?;
        return Ok(rest);
    }
    exec(conn, savepoint).await?;
    Ok(ops)
}

async fn exec(conn: &mut SqliteConnection, sql: &'static str) -> Result<(), StoreError> {
    sqlx::raw_sql(sql).execute(&mut *conn).await.map(|_| ()).map_err(row::map_err)
}
