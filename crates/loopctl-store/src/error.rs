//! What a store reports when it refuses or fails a call.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    /// A row the write expected does not exist (in this tenant).
    #[error("{what} not found")]
    NotFound { what: String },
    /// A uniqueness rule was broken: a duplicate number, slug, name or dependency.
    #[error("{what} already exists")]
    Duplicate { what: String },
    /// A compare-and-set lost: the row changed since it was read.
    #[error("{what} changed since it was read")]
    VersionConflict { what: String },
    /// A claim would put more stories of the project in flight than allowed.
    #[error("the project already has {} stories in flight (limit {limit})", in_flight.len())]
    ConcurrencyLimit { limit: u32, in_flight: Vec<String> },
    /// The database refused a write that breaks an invariant (a constraint or trigger).
    #[error("the database refused the write: {0}")]
    Invariant(String),
    /// A transient failure (busy, serialization); the same call may succeed again.
    #[error("the database is busy: {0}")]
    Retryable(String),
    #[error("database error: {0}")]
    Backend(String),
}
