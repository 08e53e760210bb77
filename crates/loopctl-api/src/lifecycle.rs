//! The story lifecycle: the bodies of contract, claim, report, review, verify, reject and what every transition answers.

use crate::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, Default)]
pub struct ContractRequest {
    pub story_title: Option<String>,
    #[schema(value_type = i64)]
    pub ac_count: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ArtifactInput {
    pub artifact_type: String,
    pub path: Option<String>,
    pub exists: Option<bool>,
    #[schema(value_type = Object)]
    pub details: Option<Value>,
    /// Shorthand some clients send at the top level instead of in `details`.
    pub commit_sha: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, Default)]
pub struct ReportRequest {
    pub artifact: Option<ArtifactInput>,
    pub artifacts: Option<Vec<ArtifactInput>>,
    pub summary: Option<String>,
    /// Per-criterion evidence: `[{ac_id, test?, file?, commit?, note?}]`.
    pub acceptance_evidence: Option<Vec<EvidenceInput>>,
    /// What the implementer spent on this round.
    pub token_usage: Option<TokenUsageInput>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, Default)]
pub struct ReviewRequest {
    pub review_type: Option<String>,
    pub findings_count: Option<i64>,
    pub fixes_count: Option<i64>,
    pub disproved_count: Option<i64>,
    pub summary: Option<String>,
    #[schema(value_type = Object)]
    pub findings: Option<Value>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Per-criterion verdicts: `[{ac_id, verdict: pass|fail, note?}]`.
    pub criteria: Option<Vec<CriterionVerdict>>,
    /// What the reviewer spent on this review.
    pub token_usage: Option<TokenUsageInput>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, Default)]
pub struct VerifyRequest {
    pub summary: Option<String>,
    pub review_type: Option<String>,
    #[schema(value_type = Object)]
    pub findings: Option<Value>,
    /// `pass` (default) or `partial`.
    pub result: Option<String>,
    pub commit_sha: Option<String>,
    /// Per-criterion verdicts; absent, a pass passes every criterion (unless the tenant
    /// requires evidence).
    pub criteria: Option<Vec<CriterionVerdict>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, Default)]
pub struct RejectRequest {
    pub reason: Option<String>,
    #[schema(value_type = Object)]
    pub findings: Option<Value>,
    pub review_type: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, Default)]
pub struct BackfillRequest {
    pub reason: Option<String>,
    pub evidence_url: Option<String>,
    #[schema(value_type = i64)]
    pub pr_number: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, Default)]
pub struct ReasonRequest {
    pub reason: Option<String>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClaimNextRequest {
    pub project_id: Uuid,
    pub epic_id: Option<Uuid>,
}

/// A call the caller can make next, with what it needs.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct NextAction {
    pub action: String,
    pub method: String,
    pub path: String,
    #[schema(value_type = Object)]
    pub required_body: Value,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct TransitionOutcome {
    pub story: StoryView,
    pub next_actions: Vec<NextAction>,
}

/// `POST /stories/reclaim-expired`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReclaimRequest {
    pub project_id: Uuid,
}
