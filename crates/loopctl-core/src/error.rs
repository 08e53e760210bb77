//! Why the domain refused a command. Each variant maps to one stable wire code.

use crate::{AgentStatus, Role, VerifiedStatus};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    #[error("the {role} role may not {action}; {hint}")]
    Forbidden { role: Role, action: &'static str, hint: &'static str },
    #[error("this token was dispatched as {capacity} and may not {action}; dispatch a token for that work")]
    ScopeViolation { capacity: &'static str, action: &'static str },
    #[error("only the agent that claimed this story may {action} it")]
    NotAssignee { action: &'static str },
    #[error(
        "only the identity that contracted this story may give it back; an orchestrator or user can `force-unclaim` it"
    )]
    NotContractor,
    #[error("cannot {action}: story is in agent_status='{agent_status}', verified_status='{verified_status}'; {hint}")]
    InvalidTransition {
        action: &'static str,
        agent_status: AgentStatus,
        verified_status: VerifiedStatus,
        hint: &'static str,
    },
    #[error("the story must be contracted before it is claimed; run `loopctl contract` first")]
    MustContractFirst,
    #[error("the story must be claimed before work starts; run `loopctl claim` first")]
    MustClaimFirst,
    #[error(
        "contract mismatch: the story has {expected} acceptance criteria, the contract named {provided}; read the story again and contract with the right count"
    )]
    ContractMismatch { expected: usize, provided: usize },
    #[error("contract mismatch: story_title does not match the story's title `{expected}`")]
    ContractTitleMismatch { expected: String },
    #[error("the implementer of a story may not review it; have a different agent review it")]
    SelfReviewBlocked,
    #[error("the implementer of a story may not verify or reject it; have the orchestrator or a user do it")]
    SelfVerifyBlocked,
    #[error("in the strict custody flow the implementer may not report its own story; request review instead")]
    SelfReportBlocked,
    #[error(
        "this claim is stale: the story was taken over by another agent, taken back or given back (current claim epoch {current}); fetch the story and claim it again if it is ready"
    )]
    StaleClaim { current: i64 },
    #[error("story is locked after {rejections} rejections; a user must clear it with `loopctl escalation clear`")]
    EscalationLocked { rejections: u32 },
    #[error("no review was completed after the latest report; record review-complete by another agent first")]
    ReviewNotConducted,
    #[error("the story waits for dependencies that are not verified yet; see `loopctl blocked --explain`")]
    DependenciesNotMet,
    #[error("{0}")]
    Validation(String),
}

impl DomainError {
    /// The stable machine-readable code of WIRE.md.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::Forbidden { .. } | DomainError::NotAssignee { .. } | DomainError::NotContractor => "forbidden",
            DomainError::ScopeViolation { .. } => "scope_violation",
            DomainError::InvalidTransition { .. } => "invalid_transition",
            DomainError::MustContractFirst => "must_contract_first",
            DomainError::MustClaimFirst => "must_claim_first",
            DomainError::ContractMismatch { .. } | DomainError::ContractTitleMismatch { .. } => "contract_mismatch",
            DomainError::SelfReviewBlocked => "self_review_blocked",
            DomainError::SelfVerifyBlocked => "self_verify_blocked",
            DomainError::SelfReportBlocked => "self_report_blocked",
            DomainError::StaleClaim { .. } => "stale_claim",
            DomainError::EscalationLocked { .. } => "escalation_locked",
            DomainError::ReviewNotConducted => "review_not_conducted",
            DomainError::DependenciesNotMet => "dependencies_not_met",
            DomainError::Validation(_) => "validation_failed",
        }
    }
}
