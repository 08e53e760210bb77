//! A transition's batch in one trip to the writer connection's worker thread.
//!
//! Every statement sent is a trip: the write loop hands it to the connection's thread, waits,
//! and runs again when the answer comes. A transition over HTTP (its savepoint and
//! Idempotency-Key marker, its event, the compare-and-set) was three trips, a verify five,
//! and while the server's threads were busy answering requests each wait grew: in the seed
//! loop over HTTP the writer, which every write queues for, spent a third of its time between
//! statements. The batches transitions are made of go instead as one query of several
//! statements, which the connection's thread runs one after another without coming back.
//!
//! SQLite runs the statements of such a query to the first error, so a failing one stops
//! the rest. The two outcomes that touch no row without failing (a marker whose pair another
//! request holds, a compare-and-set that lost) are read from each statement's count of
//! changed rows, in order; the first failure of either kind decides the batch, and the group
//! commit rolls its savepoint back, undoing whatever ran after it.

use futures_util::StreamExt;
use loopctl_store::{StoreError, StoryTransition, WriteOp};
use sqlx::{Either, Executor, SqliteConnection};

use crate::apply;
use crate::row::map_err;
use crate::statements::{self, Statements};

/// What a statement of the query is, to read its count of changed rows by.
enum Part<'a> {
    Savepoint,
    Marker,
    Event,
    Evidence,
    Story(&'a StoryTransition),
}

/// Enters the batch's savepoint (leaving the previous batch's, when `after_another`) and
/// applies a batch of the shape [`loopctl_store::is_transition_batch`] admits, in one trip;
/// answers the event's cursor. On an error the caller rolls the savepoint back.
pub(crate) async fn apply(
    conn: &mut SqliteConnection,
    after_another: bool,
    ops: &[WriteOp],
) -> Result<Vec<i64>, StoreError> {
    let mut s = Statements::default();
    let mut parts = Vec::with_capacity(ops.len() + 2);
    if after_another {
        s.text("RELEASE batch; ");
        parts.push(Part::Savepoint);
    }
    s.text("SAVEPOINT batch; ");
    parts.push(Part::Savepoint);
    // The event before the story's update: a story turns verified only when the event naming
    // its verifier is there (trigger `stories_verified_with_its_event`), as in `apply::batch`.
    let (events, rest): (Vec<&WriteOp>, Vec<&WriteOp>) =
        ops.iter().partition(|op| matches!(op, WriteOp::AppendEvent(_)));
    let (markers, rest): (Vec<&WriteOp>, Vec<&WriteOp>) =
        rest.into_iter().partition(|op| matches!(op, WriteOp::BeginIdempotentRequest { .. }));
    for op in markers.into_iter().chain(events).chain(rest) {
        let part = match op {
            WriteOp::BeginIdempotentRequest { marker, stale_before } => {
                statements::marker(&mut s, marker, *stale_before);
                Part::Marker
            }
            WriteOp::AppendEvent(e) => {
                statements::event(&mut s, e);
                Part::Event
            }
            WriteOp::TransitionStory(t) => {
                statements::transition(&mut s, t);
                Part::Story(t)
            }
            other if statements::evidence(&mut s, other) => Part::Evidence,
            _ => {
                return Err(StoreError::Invariant(
                    "a one-trip batch holds only what `is_transition_batch` admits".into(),
                ));
            }
        };
        s.end();
        parts.push(part);
    }

    let query = s.query()?;
    let mut results = conn.fetch_many(query);
    let mut parts = parts.into_iter();
    let mut cursors = Vec::new();
    let mut failed: Option<Result<&StoryTransition, StoreError>> = None;
    while let Some(step) = results.next().await {
        let done = match step {
            Ok(Either::Left(done)) => done,
            Ok(Either::Right(_)) => continue,
            Err(err) => {
                failed.get_or_insert(Err(map_err(err)));
                break;
            }
        };
        let untouched = done.rows_affected() == 0;
        match parts.next() {
            Some(Part::Event) => cursors.push(done.last_insert_rowid()),
            Some(Part::Marker) if untouched => {
                failed.get_or_insert(Err(StoreError::Duplicate { what: "idempotency key".into() }));
            }
            Some(Part::Story(t)) if untouched => {
                failed.get_or_insert(Ok(t));
            }
            _ => {}
        }
    }
    drop(results);
    match failed {
        None => Ok(cursors),
        Some(Ok(t)) => Err(apply::missed(conn, t).await),
        Some(Err(err)) => Err(err),
    }
}
