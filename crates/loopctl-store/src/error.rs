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
    /// The database's own custody rules refused the write: code that got past the service
    /// layer (or went around it) still cannot break custody.
    #[error("the database refused the write: {0}")]
    Custody(CustodyRefusal),
    /// The database refused a write that breaks another invariant (a constraint or trigger).
    #[error("the database refused the write: {0}")]
    Invariant(String),
    /// A transient failure (busy, serialization); the same call may succeed again.
    #[error("the database is busy: {0}")]
    Retryable(String),
    /// Opening the store found that a migration applied to this database has been edited
    /// since; running on would leave the schema different from what the files say.
    #[error(
        "migration {version} was changed after it was applied to this database; restore the file as it was \
         released, or put the change into a new migration"
    )]
    MigrationChanged { version: i64 },
    #[error("database error: {0}")]
    Backend(String),
}

/// Which custody rule of the database refused a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CustodyRefusal {
    /// A review row, or a reviewer dispatch, names the story's implementer.
    #[error("the implementer of a story may not review it")]
    SelfReview,
    /// A verification row, or the story's verifier, is the story's implementer.
    #[error("the implementer of a story may not verify or reject it")]
    SelfVerify,
    /// The story turned verified from a state other than reported_done (backfill of an
    /// untouched story aside).
    #[error("a story turns verified only from reported_done, or by backfill of an untouched story")]
    VerifiedBeforeReport,
    /// The story turned verified without the event that names the key that verified it.
    #[error("a story turns verified only together with the event that names the key that verified it")]
    VerifiedWithoutEvent,
}
