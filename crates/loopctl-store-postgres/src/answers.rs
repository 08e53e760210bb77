//! Stored answers of Idempotency-Key requests, written several to a statement.
//!
//! Every write that carries an Idempotency-Key ends with its answer completing its in-flight
//! marker, a single-row write after the response has gone. On its own that is one round
//! trip and one commit (a WAL flush) per request, as many as the request's own writes. So
//! answers queue here, and one task writes whatever has queued as one multi-row upsert
//! while the previous one commits; a caller is answered once its row is committed.

use loopctl_store::{IdempotentResponse, StoreError, WriteOp};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use crate::row::map_err;

/// Most answers one statement writes.
const MAX_AT_ONCE: usize = 64;

type Job = (IdempotentResponse, oneshot::Sender<Result<Vec<i64>, StoreError>>);

pub(crate) struct AnswerQueue {
    queue: mpsc::Sender<Job>,
}

impl AnswerQueue {
    pub(crate) fn start(pool: PgPool) -> AnswerQueue {
        let (queue, jobs) = mpsc::channel(4096);
        tokio::spawn(write_loop(pool, jobs));
        AnswerQueue { queue }
    }

    /// Completes `answer`'s marker (the same upsert as `SaveIdempotentResponse`).
    pub(crate) async fn save(&self, answer: IdempotentResponse) -> Result<Vec<i64>, StoreError> {
        let (reply, saved) = oneshot::channel();
        self.queue
            .send((answer, reply))
            .await
            .map_err(|_| StoreError::Backend("the answer writer has stopped".into()))?;
        saved.await.map_err(|_| StoreError::Backend("the answer writer dropped an answer".into()))?
    }
}

async fn write_loop(pool: PgPool, mut jobs: mpsc::Receiver<Job>) {
    while let Some(first) = jobs.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_AT_ONCE {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        if save_all(&pool, &group).await.is_ok() {
            for (_, reply) in group {
                let _ = reply.send(Ok(Vec::new()));
            }
            continue;
        }
        // One bad row (or the same pair twice) fails the statement and writes nothing: each
        // answer then gets its own statement and its own outcome.
        for (answer, reply) in group {
            let _ = reply.send(save_one(&pool, answer).await);
        }
    }
}

async fn save_all(pool: &PgPool, group: &[Job]) -> Result<(), StoreError> {
    let answers = group.iter().map(|(answer, _)| answer);
    let scopes: Vec<Vec<u8>> = answers.clone().map(|a| a.scope.clone()).collect();
    let keys: Vec<String> = answers.clone().map(|a| a.key.clone()).collect();
    let methods: Vec<String> = answers.clone().map(|a| a.method.clone()).collect();
    let paths: Vec<String> = answers.clone().map(|a| a.path.clone()).collect();
    let statuses: Vec<i32> = answers.clone().map(|a| i32::from(a.status)).collect();
    let bodies: Vec<String> = answers.clone().map(|a| a.body.clone()).collect();
    let times: Vec<chrono::DateTime<chrono::Utc>> = answers.map(|a| a.created_at).collect();
    sqlx::query(
        "INSERT INTO idempotent_responses (scope, key, method, path, status, body, created_at) \
         SELECT * FROM UNNEST($1::bytea[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::timestamptz[]) \
         ON CONFLICT (scope, key) DO UPDATE SET method = excluded.method, path = excluded.path, status = excluded.status, \
         body = excluded.body, created_at = excluded.created_at WHERE idempotent_responses.status = $8",
    )
    .bind(scopes)
    .bind(keys)
    .bind(methods)
    .bind(paths)
    .bind(statuses)
    .bind(bodies)
    .bind(times)
    .bind(i32::from(IdempotentResponse::IN_FLIGHT))
    .execute(pool)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn save_one(pool: &PgPool, answer: IdempotentResponse) -> Result<Vec<i64>, StoreError> {
    let mut conn = pool.acquire().await.map_err(map_err)?;
    crate::apply::batch(&mut conn, &[WriteOp::SaveIdempotentResponse(answer)]).await
}
