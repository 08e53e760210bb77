//! The one error type every face of loopctl reports: an HTTP status, a stable code from
//! WIRE.md, and a message that tells the caller what to do next.

use loopctl_core::DomainError;
use loopctl_store::{CustodyRefusal, StoreError};
use serde_json::{Value, json};

/// Every code a caller can see. Adding one is fine; renaming one breaks clients.
pub const ERROR_CODES: &[&str] = &[
    "unauthorized",
    "forbidden",
    "scope_violation",
    "token_expired",
    "token_revoked",
    "not_found",
    "nothing_ready",
    "validation_failed",
    "invalid_json",
    "payload_too_large",
    "rate_limited",
    "idempotency_in_progress",
    "secret_not_replayed",
    "invalid_transition",
    "must_contract_first",
    "must_claim_first",
    "contract_mismatch",
    "dependencies_not_met",
    "concurrency_limit",
    "escalation_locked",
    "stale_claim",
    "self_report_blocked",
    "self_review_blocked",
    "self_verify_blocked",
    "review_not_conducted",
    "acceptance_incomplete",
    "commit_mismatch",
    "cycle_detected",
    "duplicate_number",
    "conflict",
    "version_conflict",
    "internal",
];

#[derive(Debug, Clone, PartialEq)]
pub struct AppError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// Transition and contract errors: the current statuses, expected vs given counts.
    pub context: Option<Value>,
    /// Field validation: which fields, and what is wrong with each.
    pub details: Option<Value>,
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for AppError {}

impl AppError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> AppError {
        AppError { status, code, message: message.into(), context: None, details: None }
    }

    pub fn with_context(mut self, context: Value) -> AppError {
        self.context = Some(context);
        self
    }

    pub fn with_details(mut self, details: Value) -> AppError {
        self.details = Some(details);
        self
    }

    pub fn unauthorized(message: impl Into<String>) -> AppError {
        AppError::new(401, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> AppError {
        AppError::new(403, "forbidden", message)
    }

    pub fn not_found(what: impl std::fmt::Display) -> AppError {
        AppError::new(404, "not_found", format!("{what} not found"))
    }

    pub fn validation(message: impl Into<String>) -> AppError {
        AppError::new(422, "validation_failed", message)
    }

    /// A single field is wrong: the message names it, `details` carries it for machines.
    pub fn field(field: &str, problem: impl Into<String>) -> AppError {
        let problem = problem.into();
        AppError::validation(format!("{field}: {problem}")).with_details(json!({ field: [problem] }))
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> AppError {
        AppError::new(409, code, message)
    }

    pub fn internal() -> AppError {
        AppError::new(500, "internal", "internal error; the server log has the details")
    }

    /// The body every face sends: `{"error":{"status","code","message",…}}`.
    pub fn body(&self) -> Value {
        let mut error = json!({ "status": self.status, "code": self.code, "message": self.message });
        if let Some(context) = &self.context {
            error["context"] = context.clone();
        }
        if let Some(details) = &self.details {
            error["details"] = details.clone();
        }
        json!({ "error": error })
    }
}

impl From<DomainError> for AppError {
    fn from(err: DomainError) -> AppError {
        let message = err.to_string();
        let code = err.code();
        match err {
            DomainError::Forbidden { .. }
            | DomainError::NotAssignee { .. }
            | DomainError::NotContractor
            | DomainError::ScopeViolation { .. } => AppError::new(403, code, message),
            DomainError::InvalidTransition { action, agent_status, verified_status, .. } => {
                AppError::new(409, code, message).with_context(json!({
                    "current_agent_status": agent_status.as_str(),
                    "current_verified_status": verified_status.as_str(),
                    "attempted_action": action,
                }))
            }
            DomainError::ContractMismatch { expected, provided } => AppError::new(422, code, message)
                .with_context(json!({ "expected_ac_count": expected, "provided_ac_count": provided })),
            DomainError::ContractTitleMismatch { ref expected } => {
                let context = json!({ "expected_story_title": expected });
                AppError::new(422, code, message).with_context(context)
            }
            DomainError::ReviewNotConducted | DomainError::Validation(_) => AppError::new(422, code, message),
            DomainError::StaleClaim { current } => {
                AppError::new(409, code, message).with_context(json!({ "current_claim_epoch": current }))
            }
            DomainError::MustContractFirst
            | DomainError::MustClaimFirst
            | DomainError::SelfReviewBlocked
            | DomainError::SelfVerifyBlocked
            | DomainError::SelfReportBlocked
            | DomainError::EscalationLocked { .. }
            | DomainError::DependenciesNotMet => AppError::new(409, code, message),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> AppError {
        match err {
            StoreError::NotFound { what } => AppError::not_found(what),
            StoreError::Duplicate { what } => AppError::conflict("conflict", format!("{what} already exists")),
            StoreError::VersionConflict { what } => AppError::conflict(
                "version_conflict",
                format!("{what} was changed by someone else meanwhile; read it again and retry"),
            ),
            StoreError::ConcurrencyLimit { limit, in_flight } => AppError::conflict(
                "concurrency_limit",
                format!(
                    "the project already has {} stories in flight ({}), the tenant allows {limit}; finish or unclaim one first",
                    in_flight.len(),
                    in_flight.join(", ")
                ),
            )
            .with_context(json!({ "max_concurrent_agents": limit, "in_flight": in_flight })),
            StoreError::Custody(refusal) => custody_refusal(refusal),
            StoreError::Invariant(message) => {
                AppError::conflict("invalid_transition", format!("the database refused the write: {message}"))
            }
            StoreError::Retryable(message) => {
                tracing::warn!(%message, "retryable store error");
                AppError::new(503, "internal", "the database is busy; retry in a moment")
            }
            StoreError::Backend(message) => {
                tracing::error!(%message, "store error");
                AppError::internal()
            }
            // Only opening a store reports this, never a call the app makes.
            StoreError::MigrationChanged { version } => {
                tracing::error!(version, "an applied migration was changed");
                AppError::internal()
            }
        }
    }
}

/// A database trigger refused a custody violation that got past the service layer.
fn custody_refusal(refusal: CustodyRefusal) -> AppError {
    match refusal {
        CustodyRefusal::SelfReview => DomainError::SelfReviewBlocked.into(),
        CustodyRefusal::SelfVerify => DomainError::SelfVerifyBlocked.into(),
        CustodyRefusal::VerifiedBeforeReport | CustodyRefusal::VerifiedWithoutEvent => {
            AppError::conflict("invalid_transition", format!("the database refused the write: {refusal}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_domain_code_is_listed() {
        let samples = [
            DomainError::MustContractFirst,
            DomainError::MustClaimFirst,
            DomainError::SelfReviewBlocked,
            DomainError::SelfVerifyBlocked,
            DomainError::SelfReportBlocked,
            DomainError::ReviewNotConducted,
            DomainError::DependenciesNotMet,
            DomainError::StaleClaim { current: 1 },
            DomainError::EscalationLocked { rejections: 5 },
            DomainError::ContractMismatch { expected: 1, provided: 2 },
            DomainError::Validation("x".into()),
        ];
        for err in samples {
            let app: AppError = err.into();
            assert!(ERROR_CODES.contains(&app.code), "{} is not listed", app.code);
            assert!((400..500).contains(&app.status));
        }
    }

    #[test]
    fn body_has_the_wire_shape() {
        let body = AppError::field("name", "can't be blank").body();
        assert_eq!(body["error"]["code"], "validation_failed");
        assert_eq!(body["error"]["status"], 422);
        assert_eq!(body["error"]["details"]["name"][0], "can't be blank");
    }
}
