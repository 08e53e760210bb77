//! Evidence per acceptance criterion, verdicts, and the runner's verification runs.

use crate::prelude::*;

/// What the implementer points at for one criterion.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct EvidenceInput {
    pub ac_id: String,
    pub test: Option<String>,
    pub file: Option<String>,
    pub commit: Option<String>,
    pub note: Option<String>,
}

/// A reviewer's or verifier's verdict on one criterion.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct CriterionVerdict {
    pub ac_id: String,
    /// `pass` or `fail`.
    pub verdict: String,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct CriterionView {
    pub ac_id: String,
    pub text: String,
    pub position: usize,
    #[schema(value_type = Vec<Object>)]
    pub evidence: Vec<Value>,
    pub review_verdict: Option<String>,
    pub verify_verdict: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordVerificationRun {
    /// `pass` or `fail`.
    pub result: String,
    pub commit_sha: Option<String>,
    /// Each check: `{name, ok, detail?}`.
    #[schema(value_type = Vec<Object>)]
    pub checks: Vec<Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct VerificationRunView {
    pub id: Uuid,
    pub story_id: Uuid,
    pub round: i64,
    pub result: String,
    pub commit_sha: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub checks: Value,
    pub recorded_by_agent_id: Option<Uuid>,
    pub signature: String,
    /// The server key that signed it (`/.well-known/loopctl/signing-key` lists them).
    pub key_id: String,
    /// The signature checks out over exactly the stored run.
    pub signature_valid: bool,
    pub inserted_at: chrono::DateTime<chrono::Utc>,
}
