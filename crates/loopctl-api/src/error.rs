//! Every error a caller can see: the stable code, its HTTP status and the CLI's exit class,
//! kept in one table so that the server, the client, the CLI and MCP cannot disagree.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use utoipa::ToSchema;

/// How the CLI exits for an error of this class (`loopctl … ; echo $?`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitClass {
    /// Anything else: the server failed, the answer made no sense.
    Failure,
    /// The request itself is wrong: fix the arguments or the body.
    Usage,
    /// Who you are: no key, the wrong role, an expired token, over the rate budget.
    Auth,
    /// Nothing there (or nothing ready).
    NotFound,
    /// The state does not allow it now: custody, claims, versions, dependencies.
    Conflict,
    /// The server did not answer.
    Unreachable,
}

impl ExitClass {
    /// The process exit code.
    pub const fn exit_code(self) -> u8 {
        match self {
            ExitClass::Failure => 1,
            ExitClass::Usage => 2,
            ExitClass::Auth => 3,
            ExitClass::NotFound => 4,
            ExitClass::Conflict => 5,
            ExitClass::Unreachable => 6,
        }
    }
}

macro_rules! error_codes {
    (
        [$($variant:ident = $name:literal, $status:literal, $class:ident;)*]
        same name as: [$($twin:ident = $of:ident, $twin_status:literal;)*]
    ) => {
        /// A stable error code. Adding one is fine; renaming one breaks clients.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($variant,)*
            $($twin,)*
        }

        impl ErrorCode {
            /// Every code, in the order of the table.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)* $(ErrorCode::$twin,)*];

            /// The code as it travels: `stale_claim`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)*
                    $(ErrorCode::$twin => ErrorCode::$of.as_str(),)*
                }
            }

            /// The HTTP status the server answers this code with.
            pub const fn http_status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)*
                    $(ErrorCode::$twin => $twin_status,)*
                }
            }

            /// How the CLI exits for it.
            pub const fn exit_class(self) -> ExitClass {
                match self {
                    $(ErrorCode::$variant => ExitClass::$class,)*
                    $(ErrorCode::$twin => ErrorCode::$of.exit_class(),)*
                }
            }
        }

        impl FromStr for ErrorCode {
            type Err = UnknownErrorCode;

            fn from_str(text: &str) -> Result<ErrorCode, UnknownErrorCode> {
                match text {
                    $($name => Ok(ErrorCode::$variant),)*
                    _ => Err(UnknownErrorCode(text.to_string())),
                }
            }
        }
    };
}

error_codes! {
    [
    Unauthorized = "unauthorized", 401, Auth;
    Forbidden = "forbidden", 403, Auth;
    ScopeViolation = "scope_violation", 403, Auth;
    TokenExpired = "token_expired", 401, Auth;
    TokenRevoked = "token_revoked", 401, Auth;
    NotFound = "not_found", 404, NotFound;
    NothingReady = "nothing_ready", 404, NotFound;
    ValidationFailed = "validation_failed", 422, Usage;
    InvalidJson = "invalid_json", 400, Usage;
    PayloadTooLarge = "payload_too_large", 413, Failure;
    RateLimited = "rate_limited", 429, Auth;
    IdempotencyInProgress = "idempotency_in_progress", 409, Conflict;
    SecretNotReplayed = "secret_not_replayed", 409, Conflict;
    InvalidTransition = "invalid_transition", 409, Conflict;
    MustContractFirst = "must_contract_first", 409, Conflict;
    MustClaimFirst = "must_claim_first", 409, Conflict;
    ContractMismatch = "contract_mismatch", 422, Conflict;
    DependenciesNotMet = "dependencies_not_met", 409, Conflict;
    ConcurrencyLimit = "concurrency_limit", 409, Conflict;
    EscalationLocked = "escalation_locked", 409, Conflict;
    StaleClaim = "stale_claim", 409, Conflict;
    SelfReportBlocked = "self_report_blocked", 409, Conflict;
    SelfReviewBlocked = "self_review_blocked", 409, Conflict;
    SelfVerifyBlocked = "self_verify_blocked", 409, Conflict;
    ReviewNotConducted = "review_not_conducted", 422, Conflict;
    AcceptanceIncomplete = "acceptance_incomplete", 422, Conflict;
    CommitMismatch = "commit_mismatch", 409, Conflict;
    CycleDetected = "cycle_detected", 422, Conflict;
    DuplicateNumber = "duplicate_number", 409, Conflict;
    Conflict = "conflict", 409, Conflict;
    VersionConflict = "version_conflict", 409, Conflict;
    Unavailable = "unavailable", 503, Failure;
    Internal = "internal", 500, Failure;
    ]
    // A code that travels under another's name with its own status: the reference answers
    // a number repeated inside one request body with 422, one that exists already with 409.
    same name as: [
    DuplicateNumberInRequest = DuplicateNumber, 422;
    ]
}

impl ErrorCode {
    /// A code from the wire; one this build does not know (a newer server's) reads as
    /// `internal`, so an old client still fails safely.
    pub fn from_wire(text: &str) -> ErrorCode {
        text.parse().unwrap_or(ErrorCode::Internal)
    }
}

/// In the OpenAPI document: a string, one of the wire names.
impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let mut names: Vec<&str> = Vec::new();
        for code in ErrorCode::ALL {
            if !names.contains(&code.as_str()) {
                names.push(code.as_str());
            }
        }
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(names))
            .description(Some("A stable error code; `message` says what to do, `context` carries the facts."))
            .into()
    }
}

impl ToSchema for ErrorCode {}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ErrorCode, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Ok(ErrorCode::from_wire(&text))
    }
}

/// A code that is not in [`ErrorCode::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a loopctl error code")]
pub struct UnknownErrorCode(pub String);

/// The body of every refusal: `{"error":{"status","code","message","context"?,"details"?}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The HTTP status, repeated for clients that only see the body (MCP).
    pub status: u16,
    pub code: ErrorCode,
    /// What went wrong and what to do next.
    pub message: String,
    /// Transition and contract refusals: the current statuses, expected vs given counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
    /// Field validation (which fields, what is wrong with each); bulk refusals (each story's result).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_as_itself() {
        for &code in ErrorCode::ALL {
            let parsed = code.as_str().parse::<ErrorCode>().expect("parses");
            assert_eq!(parsed.as_str(), code.as_str());
            assert_eq!(parsed.exit_class(), code.exit_class());
            let json = serde_json::to_value(code).expect("serializes");
            assert_eq!(json, code.as_str());
            assert_eq!(serde_json::from_value::<ErrorCode>(json).expect("deserializes"), parsed);
            assert!((400..600).contains(&code.http_status()), "{code}");
        }
    }

    #[test]
    fn codes_are_unique_and_snake_case() {
        let mut names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len() - 1, "only the one twin shares a name");
    }

    #[test]
    fn a_newer_servers_code_reads_as_internal() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"status":409,"code":"brand_new_code","message":"m"}"#).expect("decodes");
        assert_eq!(body.code, ErrorCode::Internal);
    }
}
