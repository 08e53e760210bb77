//! The change feed.

use crate::prelude::*;

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct Changes {
    pub data: Vec<EventView>,
    pub has_more: bool,
    /// Pass as `since` to continue (a cursor). Always present: with nothing new it is the
    /// cursor the feed stands at, so a poll by time continues without skipping or replaying.
    pub next_cursor: i64,
    /// The reference's continuation: the time of the last event.
    pub next_since: Option<DateTime<Utc>>,
}

/// What `GET /api/v1/audit/verify` found re-walking the tenant's audit chain: every event
/// hashed again, each hash chained to the one before, every signed head checked against the
/// server's keys. `intact` is false as soon as one entry does not match, and
/// `first_mismatch` names it.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct AuditVerification {
    pub intact: bool,
    /// How many entries matched before the walk stopped (all of them when intact).
    pub entries_checked: i64,
    /// The newest entry of the chain.
    pub head: Option<AuditHead>,
    /// The newest signed head that matched: every entry up to it is as the server wrote it.
    pub sealed_through: Option<AuditSealView>,
    pub first_mismatch: Option<AuditMismatch>,
}

/// An entry of the chain: an event's cursor and its hash (hex).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
pub struct AuditHead {
    pub cursor: i64,
    pub hash: String,
}

/// A signed chain head.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
pub struct AuditSealView {
    pub cursor: i64,
    pub key_id: String,
    pub sealed_at: DateTime<Utc>,
}

/// The first entry that does not match, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
pub struct AuditMismatch {
    /// The event's cursor.
    pub cursor: i64,
    /// The event's id, where the event is still there.
    pub event_id: Option<Uuid>,
    /// `event_changed`, `event_missing`, `event_not_chained`, `chain_broken`, `seal_invalid`,
    /// `head_rewritten` or `chain_truncated`.
    pub problem: String,
    pub message: String,
}
