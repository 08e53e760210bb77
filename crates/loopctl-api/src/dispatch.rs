//! Dispatches: capability tokens an orchestrator mints for one story and one capacity.

use crate::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateDispatch {
    /// `implementer` or `reviewer` (the reference's `agent` means implementer).
    pub role: String,
    pub story_id: Option<Uuid>,
    /// An existing identity to act as; absent, a fresh one is created.
    pub agent_id: Option<Uuid>,
    pub parent_dispatch_id: Option<Uuid>,
    /// Lifetime of the token, 1 s to 24 h (default 1 h).
    pub expires_in_seconds: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct DispatchView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub parent_dispatch_id: Option<Uuid>,
    pub agent_id: Uuid,
    pub story_id: Uuid,
    pub role: String,
    pub lineage_path: Vec<Uuid>,
    pub dispatched_by_agent_id: Option<Uuid>,
    pub dispatched_by_key_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub active: bool,
}
