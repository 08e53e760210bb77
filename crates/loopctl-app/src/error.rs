//! The one error type every use case returns: an [`ErrorCode`] from the wire contract, a
//! message that tells the caller what to do next, and context. Which HTTP status a code
//! travels with is the server's business (`ErrorCode::http_status`), not the use cases'.

use loopctl_api::{ErrorBody, ErrorCode, ErrorEnvelope};
use loopctl_core::DomainError;
use loopctl_store::{CustodyRefusal, StoreError};
use serde_json::{Value, json};

/// A refusal: a stable code (its HTTP status and CLI exit class come with it), a message
/// that tells the caller what to do next, and machine-readable context.
#[derive(Debug, Clone, PartialEq)]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    /// Transition and contract errors: the current statuses, expected vs given counts.
    pub context: Option<Value>,
    /// Field validation: which fields, and what is wrong with each.
    pub details: Option<Value>,
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AppError {}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> AppError {
        AppError { code, message: message.into(), context: None, details: None }
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
        AppError::new(ErrorCode::Unauthorized, message)
    }

    pub fn forbidden(message: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::Forbidden, message)
    }

    pub fn not_found(what: impl std::fmt::Display) -> AppError {
        AppError::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn validation(message: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::ValidationFailed, message)
    }

    /// A single field is wrong: the message names it, `details` carries it for machines.
    pub fn field(field: &str, problem: impl Into<String>) -> AppError {
        let problem = problem.into();
        AppError::validation(format!("{field}: {problem}")).with_details(json!({ field: [problem] }))
    }

    pub fn internal() -> AppError {
        AppError::new(ErrorCode::Internal, "internal error; the server log has the details")
    }

    /// The wire body, given the HTTP status the face answers with.
    pub fn body(&self, status: u16) -> ErrorEnvelope {
        ErrorEnvelope {
            error: ErrorBody {
                status,
                code: self.code,
                message: self.message.clone(),
                context: self.context.clone(),
                details: self.details.clone(),
            },
        }
    }
}

impl From<DomainError> for AppError {
    fn from(err: DomainError) -> AppError {
        let message = err.to_string();
        match err {
            DomainError::Forbidden { .. } | DomainError::NotAssignee { .. } | DomainError::NotContractor => {
                AppError::new(ErrorCode::Forbidden, message)
            }
            DomainError::ScopeViolation { .. } => AppError::new(ErrorCode::ScopeViolation, message),
            DomainError::InvalidTransition { action, agent_status, verified_status, .. } => {
                AppError::new(ErrorCode::InvalidTransition, message).with_context(json!({
                    "current_agent_status": agent_status.as_str(),
                    "current_verified_status": verified_status.as_str(),
                    "attempted_action": action,
                }))
            }
            DomainError::ContractMismatch { expected, provided } => AppError::new(ErrorCode::ContractMismatch, message)
                .with_context(json!({ "expected_ac_count": expected, "provided_ac_count": provided })),
            DomainError::ContractTitleMismatch { ref expected } => {
                let context = json!({ "expected_story_title": expected });
                AppError::new(ErrorCode::ContractMismatch, message).with_context(context)
            }
            DomainError::ReviewNotConducted => AppError::new(ErrorCode::ReviewNotConducted, message),
            DomainError::Validation(_) => AppError::new(ErrorCode::ValidationFailed, message),
            DomainError::StaleClaim { current } => {
                AppError::new(ErrorCode::StaleClaim, message).with_context(json!({ "current_claim_epoch": current }))
            }
            DomainError::MustContractFirst => AppError::new(ErrorCode::MustContractFirst, message),
            DomainError::MustClaimFirst => AppError::new(ErrorCode::MustClaimFirst, message),
            DomainError::SelfReviewBlocked => AppError::new(ErrorCode::SelfReviewBlocked, message),
            DomainError::SelfVerifyBlocked => AppError::new(ErrorCode::SelfVerifyBlocked, message),
            DomainError::SelfReportBlocked => AppError::new(ErrorCode::SelfReportBlocked, message),
            DomainError::EscalationLocked { .. } => AppError::new(ErrorCode::EscalationLocked, message),
            DomainError::DependenciesNotMet => AppError::new(ErrorCode::DependenciesNotMet, message),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> AppError {
        match err {
            StoreError::NotFound { what } => AppError::not_found(what),
            StoreError::Duplicate { what } => AppError::new(ErrorCode::Conflict, format!("{what} already exists")),
            StoreError::VersionConflict { what } => AppError::new(
                ErrorCode::VersionConflict,
                format!("{what} was changed by someone else meanwhile; read it again and retry"),
            ),
            StoreError::ConcurrencyLimit { limit, in_flight } => AppError::new(
                ErrorCode::ConcurrencyLimit,
                format!(
                    "the project already has {} stories in flight ({}), the tenant allows {limit}; finish or unclaim one first",
                    in_flight.len(),
                    in_flight.join(", ")
                ),
            )
            .with_context(json!({ "max_concurrent_agents": limit, "in_flight": in_flight })),
            StoreError::Custody(refusal) => custody_refusal(refusal),
            StoreError::Invariant(message) => {
                AppError::new(ErrorCode::InvalidTransition, format!("the database refused the write: {message}"))
            }
            StoreError::Retryable(message) => {
                tracing::warn!(%message, "retryable store error");
                AppError::new(ErrorCode::Unavailable, "the database is busy; retry in a moment")
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
            AppError::new(ErrorCode::InvalidTransition, format!("the database refused the write: {refusal}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_domain_refusal_is_a_client_error() {
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
            let err_code = err.code();
            let app: AppError = err.into();
            assert_eq!(app.code.as_str(), err_code, "the core and the wire name the refusal alike");
            assert!((400..500).contains(&app.code.http_status()), "{}", app.code);
        }
    }

    #[test]
    fn body_has_the_wire_shape() {
        let body = serde_json::to_value(AppError::field("name", "can't be blank").body(422)).expect("serializes");
        assert_eq!(body["error"]["code"], "validation_failed");
        assert_eq!(body["error"]["status"], 422);
        assert_eq!(body["error"]["details"]["name"][0], "can't be blank");
    }
}
