//! Wire shapes: what the API answers, field for field as the reference names them.
//! Records convert here explicitly, so a change in the store never silently changes the JSON.

use chrono::{DateTime, Utc};
use loopctl_store::*;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, ToSchema)]
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

#[derive(Debug, Clone, Serialize, ToSchema)]
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

impl ApiKeyView {
    pub fn from_record(key: &ApiKeyRecord, raw_key: Option<String>) -> ApiKeyView {
        ApiKeyView {
            id: key.id,
            name: key.name.clone(),
            key_prefix: key.key_prefix.clone(),
            role: key.role.as_str().into(),
            agent_id: key.agent_id,
            last_used_at: key.last_used_at,
            expires_at: key.expires_at,
            revoked_at: key.revoked_at,
            inserted_at: key.created_at,
            raw_key,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
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

impl From<&AgentRecord> for AgentView {
    fn from(a: &AgentRecord) -> AgentView {
        AgentView {
            id: a.id,
            tenant_id: a.tenant_id,
            name: a.name.clone(),
            agent_type: a.agent_type.clone(),
            status: a.status.clone(),
            metadata: a.metadata.clone(),
            inserted_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
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

impl From<&ProjectRecord> for ProjectView {
    fn from(p: &ProjectRecord) -> ProjectView {
        ProjectView {
            id: p.id,
            tenant_id: p.tenant_id,
            name: p.name.clone(),
            slug: p.slug.clone(),
            repo_url: p.repo_url.clone(),
            description: p.description.clone(),
            tech_stack: p.tech_stack.clone(),
            mission: p.mission.clone(),
            status: p.status.clone(),
            metadata: p.metadata.clone(),
            inserted_at: p.created_at,
            updated_at: p.updated_at,
            epic_count: None,
            story_count: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
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

impl From<&EpicRecord> for EpicView {
    fn from(e: &EpicRecord) -> EpicView {
        EpicView {
            id: e.id,
            tenant_id: e.tenant_id,
            project_id: e.project_id,
            number: e.number,
            title: e.title.clone(),
            description: e.description.clone(),
            phase: e.phase.clone(),
            position: e.position,
            metadata: e.metadata.clone(),
            inserted_at: e.created_at,
            updated_at: e.updated_at,
            story_count: None,
            completion_percentage: None,
            stories: None,
        }
    }
}

/// The story as every story endpoint answers it (the reference's status shape plus ours).
#[derive(Debug, Clone, Serialize, ToSchema)]
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

impl From<&StoryRecord> for StoryView {
    fn from(s: &StoryRecord) -> StoryView {
        let st = &s.state;
        StoryView {
            id: s.id,
            tenant_id: s.tenant_id,
            project_id: s.project_id,
            epic_id: s.epic_id,
            number: s.number.clone(),
            title: s.title.clone(),
            description: s.description.clone(),
            acceptance_criteria: s.acceptance_criteria.clone(),
            ac_count: s.ac_count(),
            estimated_hours: s.estimated_hours.map(crate::work::hours_out),
            agent_status: st.agent_status.as_str().into(),
            verified_status: st.verified_status.as_str().into(),
            assigned_agent_id: st.assigned_agent_id,
            assigned_at: st.assigned_at,
            reported_done_at: st.reported_done_at,
            reported_by_agent_id: st.reported_by_agent_id,
            verified_at: st.verified_at,
            rejected_at: st.rejected_at,
            rejection_reason: st.rejection_reason.clone(),
            sort_key: s.sort_key,
            metadata: s.metadata.clone(),
            claim_epoch: st.claim_epoch,
            lease_expires_at: st.lease_expires_at,
            iteration_count: st.iteration_count,
            escalated: st.escalated,
            escalated_at: st.escalated_at,
            escalation_locked: st.escalation_locked,
            review_requested_at: st.review_requested_at,
            implementer_dispatch_id: None,
            verifier_dispatch_id: None,
            verifier_needed: false,
            contracted_by_agent_id: st.contracted_by_agent_id,
            contracted_at: st.contracted_at,
            stale: st.lease_expired(crate::now()),
            backfilled: s.metadata.get("backfill").is_some(),
            inserted_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// The compact row of lists that may hold thousands of stories.
#[derive(Debug, Clone, Serialize, ToSchema)]
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

impl From<&StoryRecord> for StoryBrief {
    fn from(s: &StoryRecord) -> StoryBrief {
        StoryBrief {
            id: s.id,
            tenant_id: s.tenant_id,
            project_id: s.project_id,
            epic_id: s.epic_id,
            number: s.number.clone(),
            title: s.title.clone(),
            agent_status: s.state.agent_status.as_str().into(),
            verified_status: s.state.verified_status.as_str().into(),
            sort_key: s.sort_key,
            ac_count: s.ac_count(),
            escalated: s.state.escalated,
            escalation_locked: s.state.escalation_locked,
            inserted_at: s.created_at,
            updated_at: s.updated_at,
            suggested: None,
            contracted_by_agent_id: s.state.contracted_by_agent_id,
            contracted_at: s.state.contracted_at,
            assigned_agent_id: s.state.assigned_agent_id,
            lease_expires_at: s.state.lease_expires_at,
            stale: s.state.lease_expired(crate::now()),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DependencyView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub from_id: Uuid,
    pub to_id: Uuid,
    pub inserted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
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

impl From<&ArtifactRecord> for ArtifactView {
    fn from(a: &ArtifactRecord) -> ArtifactView {
        ArtifactView {
            id: a.id,
            tenant_id: a.tenant_id,
            story_id: a.story_id,
            reported_by: a.reported_by.clone(),
            reporter_agent_id: a.reporter_agent_id,
            artifact_type: a.artifact_type.clone(),
            path: a.path.clone(),
            exists: a.exists,
            details: a.details.clone(),
            inserted_at: a.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
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

impl From<&ReviewRecord> for ReviewView {
    fn from(r: &ReviewRecord) -> ReviewView {
        ReviewView {
            id: r.id,
            tenant_id: r.tenant_id,
            story_id: r.story_id,
            reviewer_agent_id: r.reviewer_agent_id,
            review_type: r.review_type.clone(),
            findings_count: r.findings_count,
            fixes_count: r.fixes_count,
            disproved_count: r.disproved_count,
            summary: r.summary.clone(),
            findings: r.findings.clone(),
            completed_at: r.completed_at,
            inserted_at: r.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
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

impl From<&VerificationRecord> for VerificationView {
    fn from(v: &VerificationRecord) -> VerificationView {
        VerificationView {
            id: v.id,
            tenant_id: v.tenant_id,
            story_id: v.story_id,
            orchestrator_agent_id: v.verifier_agent_id,
            result: v.result.clone(),
            summary: v.summary.clone(),
            findings: v.findings.clone(),
            review_type: v.review_type.clone(),
            iteration: v.iteration,
            inserted_at: v.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
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

impl From<&OrchestratorStateRecord> for OrchestratorStateView {
    fn from(s: &OrchestratorStateRecord) -> OrchestratorStateView {
        OrchestratorStateView {
            id: s.id,
            tenant_id: s.tenant_id,
            project_id: s.project_id,
            state_key: s.state_key.clone(),
            state_data: s.state_data.clone(),
            version: s.version,
            inserted_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// One change-feed / audit-log row.
#[derive(Debug, Clone, Serialize, ToSchema)]
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

impl From<&EventRecord> for EventView {
    fn from(r: &EventRecord) -> EventView {
        let e = &r.event;
        EventView {
            id: e.id,
            cursor: r.cursor,
            entity_type: e.entity_type.clone(),
            entity_id: e.entity_id,
            action: e.action.clone(),
            actor_type: e.actor.actor_type.clone(),
            actor_id: e.actor.key_id,
            actor_agent_id: e.actor.agent_id,
            actor_label: e.actor.label.clone(),
            old_state: e.old_state.clone(),
            new_state: e.new_state.clone(),
            project_id: e.project_id,
            metadata: e.metadata.clone(),
            inserted_at: e.inserted_at,
        }
    }
}
