//! Records as the API answers them, field for field as the reference names them.

use crate::prelude::*;

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct TenantView {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub email: Option<String>,
    /// Effective settings, defaults filled in.
    #[schema(value_type = Object)]
    pub settings: Value,
    pub status: String,
    pub inserted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    pub key_prefix: String,
    pub role: String,
    pub agent_id: Option<Uuid>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub inserted_at: DateTime<Utc>,
    /// Present only in the answer that created the key: it is never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct AgentView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub agent_type: String,
    pub status: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub inserted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ProjectView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub slug: String,
    pub repo_url: Option<String>,
    pub description: Option<String>,
    pub tech_stack: Option<String>,
    pub mission: Option<String>,
    pub status: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub inserted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epic_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub story_count: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct EpicView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub project_id: Uuid,
    pub number: i64,
    pub title: String,
    pub description: Option<String>,
    pub phase: Option<String>,
    pub position: i64,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub inserted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub story_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_percentage: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stories: Option<Vec<StoryBrief>>,
}

/// The story as every story endpoint answers it (the reference's status shape plus ours).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct StoryView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub project_id: Uuid,
    pub epic_id: Uuid,
    pub number: String,
    pub title: String,
    pub description: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub acceptance_criteria: Value,
    pub ac_count: usize,
    pub estimated_hours: Option<f64>,
    pub agent_status: String,
    pub verified_status: String,
    pub assigned_agent_id: Option<Uuid>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub reported_done_at: Option<DateTime<Utc>>,
    pub reported_by_agent_id: Option<Uuid>,
    pub verified_at: Option<DateTime<Utc>>,
    pub rejected_at: Option<DateTime<Utc>>,
    pub rejection_reason: Option<String>,
    pub sort_key: i64,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub claim_epoch: i64,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub iteration_count: i32,
    pub escalated: bool,
    pub escalated_at: Option<DateTime<Utc>>,
    pub escalation_locked: bool,
    pub review_requested_at: Option<DateTime<Utc>>,
    pub implementer_dispatch_id: Option<Uuid>,
    pub verifier_dispatch_id: Option<Uuid>,
    pub verifier_needed: bool,
    /// Who contracted it and when, while it waits in `contracted` for a claim.
    pub contracted_by_agent_id: Option<Uuid>,
    pub contracted_at: Option<DateTime<Utc>>,
    /// Claimed, but the lease ran out: the holder may still write, any agent may take it over.
    pub stale: bool,
    /// Marked done outside the loop (`backfill`): verified by a say-so, never independently.
    pub backfilled: bool,
    pub inserted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The compact row of lists that may hold thousands of stories.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct StoryBrief {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub project_id: Uuid,
    pub epic_id: Uuid,
    pub number: String,
    pub title: String,
    pub agent_status: String,
    pub verified_status: String,
    pub sort_key: i64,
    pub ac_count: usize,
    pub escalated: bool,
    pub escalation_locked: bool,
    pub inserted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Part of the suggested batch for the next round of agents (ready lists only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggested: Option<bool>,
    /// Who contracted it and when, while it waits in `contracted` for a claim.
    pub contracted_by_agent_id: Option<Uuid>,
    pub contracted_at: Option<DateTime<Utc>>,
    pub assigned_agent_id: Option<Uuid>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Claimed, but the lease ran out: any agent may take it over with `claim`.
    pub stale: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct DependencyView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub from_id: Uuid,
    pub to_id: Uuid,
    pub inserted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ArtifactView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub story_id: Uuid,
    pub reported_by: String,
    pub reporter_agent_id: Option<Uuid>,
    pub artifact_type: String,
    pub path: Option<String>,
    pub exists: bool,
    #[schema(value_type = Object)]
    pub details: Value,
    pub inserted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ReviewView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub story_id: Uuid,
    pub reviewer_agent_id: Option<Uuid>,
    pub review_type: String,
    pub findings_count: i64,
    pub fixes_count: i64,
    pub disproved_count: i64,
    pub summary: Option<String>,
    #[schema(value_type = Object)]
    pub findings: Value,
    pub completed_at: DateTime<Utc>,
    pub inserted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct VerificationView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub story_id: Uuid,
    pub orchestrator_agent_id: Option<Uuid>,
    pub result: String,
    pub summary: Option<String>,
    #[schema(value_type = Object)]
    pub findings: Value,
    pub review_type: Option<String>,
    pub iteration: i64,
    pub inserted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct OrchestratorStateView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub project_id: Uuid,
    pub state_key: String,
    #[schema(value_type = Object)]
    pub state_data: Value,
    pub version: i64,
    pub inserted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One change-feed / audit-log row.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct EventView {
    pub id: Uuid,
    pub cursor: i64,
    pub entity_type: String,
    pub entity_id: Uuid,
    pub action: String,
    pub actor_type: String,
    pub actor_id: Option<Uuid>,
    pub actor_agent_id: Option<Uuid>,
    pub actor_label: String,
    #[schema(value_type = Object)]
    pub old_state: Value,
    #[schema(value_type = Object)]
    pub new_state: Value,
    pub project_id: Option<Uuid>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub inserted_at: DateTime<Utc>,
}
