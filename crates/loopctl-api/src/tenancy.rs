//! Tenants, keys and agents.

use crate::prelude::*;

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct WhoAmI {
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub tenant_slug: String,
    pub role: String,
    pub agent_id: Option<Uuid>,
    pub agent_name: Option<String>,
    pub key_id: Uuid,
    pub key_name: String,
    pub key_prefix: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// For a dispatched token: `{dispatch_id, story_id, role}`.
    #[schema(value_type = Object)]
    pub scope: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    pub name: Option<String>,
    pub email: Option<String>,
    /// Merged into the stored settings; unknown keys are refused.
    #[schema(value_type = Object)]
    pub settings: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateApiKey {
    pub name: String,
    /// `user`, `orchestrator` or `agent`.
    pub role: String,
    /// Link to an existing agent identity; absent, an orchestrator or agent key gets a new one.
    pub agent_id: Option<Uuid>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, Default)]
pub struct RotateApiKey {
    /// How long the old key keeps working (hours, default 24, at most 168).
    pub grace_period_hours: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct RotatedKey {
    pub new_key: ApiKeyView,
    pub old_key_expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegisterAgent {
    pub name: String,
    /// `orchestrator` or `implementer`.
    pub agent_type: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Option<Value>,
}
