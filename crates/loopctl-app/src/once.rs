//! An Idempotency-Key's marker rides in the first batch its request commits.
//!
//! The HTTP face claims (scope, key) for one request with an in-flight marker, so that of
//! any number of concurrent retries exactly one is applied. Committing that marker on its own
//! before the handler runs costs every write a second commit; instead the face hands the
//! marker to [`App::commit`] through a task-local [`MarkerSlot`], and the first batch the
//! request commits carries it. The marker and the request's writes then become durable
//! together or not at all, so a marker never exists for writes that did not happen.
//!
//! When the marker's pair is already taken (a concurrent retry committed first), the batch
//! fails as a whole, the slot says [`MarkerState::Lost`], and the face replays the other
//! request's answer instead of this one's.
//!
//! A transition knows its answer before it commits: the outcome it returns. When the route
//! says how it answers one ([`answer_with`]), the marker goes in complete, with the answer
//! in it, and nothing is left to write after the response ([`MarkerState::Answered`]);
//! otherwise the face completes the marker afterwards.

use std::sync::{Arc, Mutex, PoisonError};

use loopctl_api::{ErrorCode, TransitionOutcome};
use loopctl_store::{StoreError, WriteOp};

use crate::{App, AppError};

tokio::task_local! {
    static SLOT: Arc<MarkerSlot>;
}

/// What became of a request's marker.
#[derive(Debug, Clone, PartialEq)]
pub enum MarkerState {
    /// Not written yet: the request has committed nothing (so far).
    Pending(Box<WriteOp>),
    /// Written, in the same transaction as the request's first batch.
    Committed,
    /// Written complete, with the request's answer, in the same transaction as its writes.
    Answered,
    /// Another request holds the pair; this request's batch was not applied.
    Lost,
}

/// How a route answers a transition: the status and body it sends for this outcome, or
/// `None` when that answer is not to be kept as it is.
pub type RenderAnswer = fn(&TransitionOutcome) -> Option<(u16, String)>;

/// The marker of one request, shared between the face and the service layer.
#[derive(Debug)]
pub struct MarkerSlot {
    state: Mutex<MarkerState>,
    render: Mutex<Option<RenderAnswer>>,
}

/// Says how the current request answers the transition it runs, so that its marker goes in
/// with that answer. A route whose response is its transition's outcome (rendered by
/// `render`, with nothing else of the request in it) calls this before the use case; any
/// other leaves the marker to be completed after the response. Outside a request with a
/// marker, this does nothing.
pub fn answer_with(render: RenderAnswer) {
    let _ = SLOT.try_with(|slot| *slot.render.lock().unwrap_or_else(PoisonError::into_inner) = Some(render));
}

impl MarkerSlot {
    /// A slot holding `marker`, a `WriteOp::BeginIdempotentRequest`.
    pub fn pending(marker: WriteOp) -> Arc<MarkerSlot> {
        Arc::new(MarkerSlot { state: Mutex::new(MarkerState::Pending(Box::new(marker))), render: Mutex::new(None) })
    }

    fn render(&self) -> Option<RenderAnswer> {
        *self.render.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn state(&self) -> MarkerState {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set(&self, state: MarkerState) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = state;
    }

    /// Runs `work` with this slot visible to every `App::commit` it makes (on this task).
    pub async fn scope<F: Future>(self: Arc<Self>, work: F) -> F::Output {
        SLOT.scope(self, work).await
    }
}

impl App {
    /// Commits `batch` with the current request's pending marker in front of it, if any; with
    /// the request's answer in the marker when `answer` is it and the face renders it.
    pub(crate) async fn commit_with_marker(
        &self,
        batch: Vec<WriteOp>,
        answer: Option<&TransitionOutcome>,
    ) -> Result<Vec<i64>, AppError> {
        let Ok(slot) = SLOT.try_with(Arc::clone) else {
            return Ok(self.store.commit(batch).await?);
        };
        let marker = match slot.state() {
            MarkerState::Pending(marker) => *marker,
            MarkerState::Committed | MarkerState::Answered => return Ok(self.store.commit(batch).await?),
            // However the use case goes on after losing, it writes nothing more.
            MarkerState::Lost => return Err(lost()),
        };
        let rendered = answer.zip(slot.render()).and_then(|(outcome, render)| render(outcome));
        let answered = rendered.is_some();
        let marker = match (marker, rendered) {
            (WriteOp::BeginIdempotentRequest { mut marker, stale_before }, Some((status, body))) => {
                marker.status = status;
                marker.body = body;
                WriteOp::BeginIdempotentRequest { marker, stale_before }
            }
            (marker, _) => marker,
        };
        let mut with_marker = Vec::with_capacity(batch.len() + 1);
        with_marker.push(marker.clone());
        with_marker.extend(batch);
        match self.store.commit(with_marker).await {
            Ok(cursors) => {
                slot.set(if answered { MarkerState::Answered } else { MarkerState::Committed });
                Ok(cursors)
            }
            Err(StoreError::Duplicate { what }) => {
                // The marker's pair, or something else of the batch (a taken story number)?
                // A row for the pair now means another request holds it.
                if let WriteOp::BeginIdempotentRequest { marker: m, .. } = &marker
                    && self.store.idempotent_response(&m.scope, &m.key).await?.is_some()
                {
                    slot.set(MarkerState::Lost);
                    return Err(lost());
                }
                Err(StoreError::Duplicate { what }.into())
            }
            Err(err) => Err(err.into()),
        }
    }
}

fn lost() -> AppError {
    AppError::new(
        ErrorCode::IdempotencyInProgress,
        "a request with this Idempotency-Key is running; retry it with the same key to get its answer",
    )
}
