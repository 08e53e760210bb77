//! Records become wire types (`loopctl-api`) here, field by field, so a change in the store
//! or the domain never silently changes the JSON.

use chrono::{DateTime, Utc};
use loopctl_api::*;
use loopctl_store::*;

/// The wire shape of a record.
pub trait FromRecord<R> {
    fn from_record(record: &R) -> Self;
}

/// The wire shape of a record whose answer depends on the time: a claim whose lease ran out
/// shows `stale`, a dispatch past its expiry is no longer `active`.
pub trait FromRecordAt<R> {
    fn from_record_at(record: &R, now: DateTime<Utc>) -> Self;
}

/// A key as the API shows it; `raw_key` only in the answer that created it.
pub fn api_key_view(key: &ApiKeyRecord, raw_key: Option<String>) -> ApiKeyView {
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

impl FromRecord<AgentRecord> for AgentView {
    fn from_record(a: &AgentRecord) -> AgentView {
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

impl FromRecord<ProjectRecord> for ProjectView {
    fn from_record(p: &ProjectRecord) -> ProjectView {
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

impl FromRecord<EpicRecord> for EpicView {
    fn from_record(e: &EpicRecord) -> EpicView {
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

impl FromRecordAt<StoryRecord> for StoryView {
    fn from_record_at(s: &StoryRecord, now: DateTime<Utc>) -> StoryView {
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
            stale: st.lease_expired(now),
            backfilled: s.metadata.get("backfill").is_some(),
            inserted_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

impl FromRecordAt<StoryRecord> for StoryBrief {
    fn from_record_at(s: &StoryRecord, now: DateTime<Utc>) -> StoryBrief {
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
            stale: s.state.lease_expired(now),
        }
    }
}

impl FromRecord<ArtifactRecord> for ArtifactView {
    fn from_record(a: &ArtifactRecord) -> ArtifactView {
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

impl FromRecord<ReviewRecord> for ReviewView {
    fn from_record(r: &ReviewRecord) -> ReviewView {
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

impl FromRecord<VerificationRecord> for VerificationView {
    fn from_record(v: &VerificationRecord) -> VerificationView {
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

impl FromRecord<OrchestratorStateRecord> for OrchestratorStateView {
    fn from_record(s: &OrchestratorStateRecord) -> OrchestratorStateView {
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

impl FromRecord<EventRecord> for EventView {
    fn from_record(r: &EventRecord) -> EventView {
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

impl FromRecord<WebhookRecord> for WebhookView {
    fn from_record(w: &WebhookRecord) -> WebhookView {
        WebhookView {
            id: w.id,
            url: w.url.clone(),
            project_id: w.project_id,
            events: w.actions.clone(),
            enabled: w.enabled,
            disabled_reason: w.disabled_reason.clone(),
            consecutive_failures: w.consecutive_failures,
            created_by: w.created_by.clone(),
            created_at: w.created_at,
        }
    }
}

impl FromRecord<DeliveryRecord> for DeliveryView {
    fn from_record(d: &DeliveryRecord) -> DeliveryView {
        DeliveryView {
            id: d.id,
            webhook_id: d.webhook_id,
            event_cursor: d.event_cursor,
            status: d.status.clone(),
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error.clone(),
            last_latency_ms: d.last_latency_ms,
            next_attempt_at: d.next_attempt_at,
            delivered_at: d.delivered_at,
            created_at: d.created_at,
        }
    }
}
