//! A transition's batch in one round trip.
//!
//! A batch runs as BEGIN, one statement per op, COMMIT. For a transition over HTTP (its
//! Idempotency-Key marker, the compare-and-set, its event) that is five round trips, each
//! parsed, bound and executed on its own, on a database whose CPU the seed loop saturates.
//! The batches transitions are made of are sent instead as one statement, each op a
//! data-modifying CTE: a single statement is its own transaction, so the batch applies whole
//! or not at all, in one trip.
//!
//! Two outcomes the parts report by touching no row must undo the others: a marker whose
//! pair another request holds, and a compare-and-set that lost the race. So the statement
//! ends by handing both counts to `loopctl_batch_applied` (migration 15), which raises when
//! either is 0, and the raise rolls the whole statement back.
//!
//! A claim under an in-flight limit fits too: its compare-and-set's condition counts the
//! project's claims in a function whose statements take their snapshots after its locks
//! (`loopctl_in_flight_room`, migration 15).

use loopctl_store::{StoreError, WriteOp};
use sqlx::PgConnection;

use crate::row::map_err;
use crate::statements::{self, Cas, FeedLock, Sql};

/// Commits a batch of the shape [`loopctl_store::is_transition_batch`] admits as one statement; answers the event's cursor.
pub(crate) async fn commit(conn: &mut PgConnection, ops: &[WriteOp]) -> Result<Vec<i64>, StoreError> {
    let mut q = Sql::new("WITH ");
    let (mut marker, mut story) = (None, None);
    for (i, op) in ops.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push(format_args!("op{i} AS ("));
        if let Some(cas) = Cas::of(op) {
            cas.push(&mut q);
            q.push(" RETURNING 1)");
            story = Some((i, cas.target, cas.guard));
            continue;
        }
        match op {
            WriteOp::BeginIdempotentRequest { marker: m, stale_before } => {
                statements::push_marker(&mut q, m, *stale_before);
                q.push(" RETURNING 1");
                marker = Some(i);
            }
            WriteOp::AppendEvent(e) => statements::push_event(&mut q, e, FeedLock::Take),
            evidence => {
                statements::push_evidence(&mut q, evidence);
                q.push(" RETURNING 1");
            }
        }
        q.push(")");
    }
    let Some((at, target, guard)) = story else {
        return Err(StoreError::Invariant("a one-trip batch has a compare-and-set and its event".into()));
    };
    q.push(" SELECT loopctl_batch_applied(");
    match marker {
        Some(i) => q.push(format_args!("(SELECT count(*) FROM op{i})")),
        None => q.push("1"),
    };
    // The event is the op after the compare-and-set (`is_transition_batch`).
    q.push(format_args!(", (SELECT count(*) FROM op{at})), (SELECT cursor FROM op{})", at + 1));
    let applied: Result<(bool, i64), _> = q.build_query_as().fetch_one(&mut *conn).await;
    match applied.map_err(map_err) {
        Ok((_, cursor)) => Ok(vec![cursor]),
        Err(StoreError::VersionConflict { .. }) => Err(crate::apply::not_updated(conn, target, guard).await),
        Err(err) => Err(err),
    }
}
